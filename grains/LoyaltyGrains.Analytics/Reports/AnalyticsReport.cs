using System.Globalization;
using System.Text;
using LoyaltyGrains.Analytics.Replay;

namespace LoyaltyGrains.Analytics.Reports;

/// <summary>
/// Writes a report folder: one CSV per table (UTF-8, RFC 4180), report.html (self-contained: inline CSS and SVG charts)
/// and summary.md, the Markdown the command also prints. Columns are documented in docs/ANALYTICS.md.
/// </summary>
public static class AnalyticsReport
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    private static string N(long value) => value.ToString(Invariant);

    private static string Day(DateTimeOffset instant) => instant.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", Invariant);

    public static IReadOnlyList<ReportTable> StatsTables(ProgramStats stats)
    {
        var s = stats.Summary;
        var summary = new ReportTable("summary", "Summary", ["figure", "value", "unit"],
        [
            ["active_members", N(s.ActiveMembers), "members"],
            ["purchases", N(s.Purchases), "captures and force posts"],
            ["purchases_per_active_member", Ratio.Units(Ratio.Divide(s.Purchases * 100, s.ActiveMembers)), "purchases"],
            ["repeat_members", N(s.RepeatMembers), "members with 2+ purchases"],
            ["repeat_purchase_rate", Ratio.Percent(s.RepeatRateBps), "% of active members"],
            ["average_check", Ratio.Units(s.AverageCheckMinor), "currency units"],
            ["captured", Ratio.Units(s.CapturedMinor), "currency units"],
            ["net_spend", Ratio.Units(s.NetSpendMinor), "currency units (captured - refunded)"],
            ["cashback", Ratio.Units(s.CashbackMinor), "bonuses (accrued on purchases - clawed back)"],
            ["effective_cashback_rate", Ratio.Percent(s.EffectiveRateBps), "% of net spend"],
            ["accrued_all", Ratio.Units(s.AccruedMinor), "bonuses (purchases, refunds, referrals; not filtered)"],
            ["redeemed", Ratio.Units(s.RedeemedMinor), "bonuses (not filtered)"],
            ["redemption_rate", Ratio.Percent(s.RedemptionRateBps), "% of accrued_all"],
            ["breakage_expired", Ratio.Units(s.ExpiredMinor), "bonuses written off at expiry (not filtered)"],
            ["liability_available", Ratio.Units(s.AvailableMinor), "bonuses at the period's end"],
            ["liability_pending", Ratio.Units(s.PendingMinor), "bonuses at the period's end"],
            ["liability_outstanding", Ratio.Units(s.LiabilityMinor), "available + pending"],
            ["expiring_30_days", Ratio.Units(s.Expiring30Minor), "bonuses expiring by end + 30 days"],
            ["expiring_60_days", Ratio.Units(s.Expiring60Minor), "bonuses expiring by end + 60 days"],
            ["expiring_90_days", Ratio.Units(s.Expiring90Minor), "bonuses expiring by end + 90 days"],
        ]);
        string[] groupHeader = ["key", "purchases", "active_members", "net_spend_minor", "net_spend", "cashback_minor", "cashback", "effective_rate"];
        static string[] GroupRow(StatsGroup g) =>
            [g.Key, N(g.Purchases), N(g.ActiveMembers), N(g.NetSpendMinor), Ratio.Units(g.NetSpendMinor), N(g.CashbackMinor), Ratio.Units(g.CashbackMinor), Ratio.Percent(g.EffectiveRateBps)];
        return
        [
            summary,
            new ReportTable("by_category", "Spend and cashback by category", groupHeader, [.. stats.ByCategory.Select(GroupRow)]),
            new ReportTable("by_tier", "Spend and cashback by tier (the member's tier in the purchase month)", groupHeader, [.. stats.ByTier.Select(GroupRow)]),
            new ReportTable("by_campaign", "Campaign bonuses (spend: purchases that earned the campaign)", groupHeader, [.. stats.ByCampaign.Select(GroupRow)]),
            new ReportTable("by_funder", "Cashback by funder (bank: all but partner-funded campaign lines)", groupHeader, [.. stats.ByFunder.Select(GroupRow)]),
            new ReportTable("cost_by_month", "Cashback by category and purchase month",
                ["month", "category", "net_spend_minor", "cashback_minor", "cashback"],
                [.. stats.CostByMonth.Select(c => new[] { Charts.Month(c.Month), c.Category, N(c.NetSpendMinor), N(c.CashbackMinor), Ratio.Units(c.CashbackMinor) })]),
            new ReportTable("retention", "Month-to-month retention (active in M and in M+1)",
                ["month", "active_members", "active_next_month", "retention"],
                [.. stats.Retention.Select(r => new[] { Charts.Month(r.Month), N(r.ActiveMembers), N(r.RetainedNextMonth), Ratio.Percent(r.RetentionBps) })]),
            new ReportTable("cohorts", "Cohort retention (enrolment month, months since enrolment)",
                ["cohort", "months_since_enrolment", "cohort_size", "active_members", "active_share"],
                [.. stats.Cohorts.Select(c => new[] { Charts.Month(c.CohortMonth), N(c.MonthsSinceEnrolment), N(c.CohortSize), N(c.ActiveMembers), Ratio.Percent(c.ActiveBps) })]),
        ];
    }

    public static IReadOnlyList<ReportTable> WhatIfTables(WhatIfResult result)
    {
        var b = result.Behaviour;
        var run = result.Run;
        var summary = new ReportTable("whatif_summary", "What-if summary", ["figure", "actual", "candidate", "delta"],
        [
            ["purchases", N(result.Purchases), N(result.Purchases), "0"],
            ["net_spend", Ratio.Units(result.SpendMinor), Ratio.Units(result.SpendMinor), "0.00"],
            ["cashback", Ratio.Units(result.ActualMinor), Ratio.Units(result.CandidateMinor), Ratio.Units(result.DeltaMinor)],
            ["cashback_minor", N(result.ActualMinor), N(result.CandidateMinor), N(result.DeltaMinor)],
            ["cashback_change", "", "", Ratio.Percent(result.DeltaBps)],
            ["effective_rate", Ratio.Percent(result.ActualRateBps), Ratio.Percent(result.CandidateRateBps), Ratio.Percent(result.CandidateRateBps - result.ActualRateBps)],
            ["purchases_earning_category_cashback", N(b.ActualCategoryPurchases), N(b.CandidateCategoryPurchases), N(b.CandidateCategoryPurchases - b.ActualCategoryPurchases)],
            ["purchases_earning_more", "", N(b.PurchasesEarningMore), ""],
            ["purchases_earning_less", "", N(b.PurchasesEarningLess), ""],
            ["purchases_unchanged", "", N(b.PurchasesUnchanged), ""],
            ["members_earning_more", "", N(b.MembersEarningMore), ""],
            ["members_earning_less", "", N(b.MembersEarningLess), ""],
            ["members_unchanged", "", N(b.MembersUnchanged), ""],
            ["member_months_in_another_tier", "", N(b.TierMonthsChanged), ""],
            ["accrual_rows_carried_at_actual", N(run.CarriedRows), Ratio.Units(run.CarriedMinor), ""],
        ]);
        string[] header = ["key", "purchases", "actual_minor", "candidate_minor", "delta_minor", "actual", "candidate", "delta", "delta_change"];
        static string[] Row(DeltaGroup g) =>
            [g.Key, N(g.Purchases), N(g.ActualMinor), N(g.CandidateMinor), N(g.DeltaMinor), Ratio.Units(g.ActualMinor), Ratio.Units(g.CandidateMinor),
                Ratio.Units(g.DeltaMinor), Ratio.Percent(g.DeltaBps)];
        var run_ = new ReportTable("whatif_run", "Replay run", ["figure", "value"],
        [
            ["window", $"{Day(result.From)} .. {Day(result.To)}"],
            ["replayed_from", Day(result.ReplayedFrom)],
            ["rows_read", N(run.RowsRead)],
            ["members", N(run.Members)],
            ["accrual_rows", N(run.AccrualRows)],
            ["elapsed_seconds", run.Elapsed.TotalSeconds.ToString("0.0", Invariant)],
            ["rows_per_second", N(run.RowsPerSecond)],
            ["peak_working_set_mib", N(run.PeakWorkingSetBytes / (1024 * 1024))],
        ]);
        return
        [
            summary,
            new ReportTable("whatif_by_category", "Cashback by category: actual vs candidate", header, [.. result.ByCategory.Select(Row)]),
            new ReportTable("whatif_by_tier", "Cashback by tier (the member's actual tier of the purchase month)", header, [.. result.ByTier.Select(Row)]),
            new ReportTable("whatif_by_funder", "Cashback by funder (bank, partner:<id>)", header, [.. result.ByFunder.Select(Row)]),
            new ReportTable("whatif_by_campaign", "Campaign lines", header, [.. result.ByCampaign.Select(Row)]),
            new ReportTable("whatif_by_rule", "Cashback by rule (base, category, rounding, campaign)", header, [.. result.ByRule.Select(Row)]),
            new ReportTable("whatif_by_month", "Cashback by purchase month and category", header, [.. result.ByMonth.Select(Row)]),
            new ReportTable("whatif_members", "Members most affected (largest |delta|)",
                ["member_id", "purchases", "actual_minor", "candidate_minor", "delta_minor", "delta"],
                [.. result.MostAffected.Select(m => new[] { m.MemberId, N(m.Purchases), N(m.ActualMinor), N(m.CandidateMinor), N(m.DeltaMinor), Ratio.Units(m.DeltaMinor) })]),
            run_,
        ];
    }

    public static IReadOnlyList<(string Title, string Svg)> StatsCharts(ProgramStats stats)
    {
        var months = stats.CostByMonth.Select(c => c.Month).Distinct().Order().ToArray();
        var categories = stats.CostByMonth.GroupBy(c => c.Category, StringComparer.Ordinal)
            .OrderByDescending(g => g.Sum(c => c.CashbackMinor)).ThenBy(g => g.Key, StringComparer.Ordinal).Take(10)
            .Select(g => (g.Key, months.Select(m => g.Where(c => c.Month == m).Sum(c => c.CashbackMinor)).ToArray())).ToList();
        return
        [
            ("Cohort retention", Charts.CohortHeatMap(stats.Cohorts)),
            ("Cashback cost by category over time (ten largest categories)", Charts.MonthLines([.. months.Select(Charts.Month)], categories, "cashback, currency units")),
        ];
    }

    public static IReadOnlyList<(string Title, string Svg)> WhatIfCharts(WhatIfResult result)
    {
        var months = result.ByMonth.Select(g => g.Key.Split('|')[0]).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        long[] Series(Func<DeltaGroup, long> value) =>
            [.. months.Select(m => result.ByMonth.Where(g => g.Key.StartsWith(m + "|", StringComparison.Ordinal)).Sum(value))];
        return
        [
            ("What-if: cashback delta by category", Charts.DeltaBars([.. result.ByCategory.Select(g => (g.Key, g.DeltaMinor))], "candidate − actual, currency units (red: costs more)")),
            ("What-if: cashback delta by tier", Charts.DeltaBars([.. result.ByTier.Select(g => (g.Key, g.DeltaMinor))], "candidate − actual, currency units")),
            ("What-if: cashback over time", Charts.MonthLines(months, [("actual", Series(g => g.ActualMinor)), ("candidate", Series(g => g.CandidateMinor))], "cashback, currency units")),
        ];
    }

    /// <summary>Writes the folder and returns the Markdown summary.</summary>
    public static async Task<string> WriteAsync(string folder, string title, string intro, IReadOnlyList<ReportTable> tables,
        IReadOnlyList<(string Title, string Svg)> charts)
    {
        Directory.CreateDirectory(folder);
        foreach (var table in tables) await table.WriteCsvAsync(folder);
        var md = new StringBuilder();
        md.Append("## ").AppendLine(title).AppendLine().AppendLine(intro).AppendLine();
        foreach (var table in tables) md.AppendLine(table.ToMarkdown()).AppendLine();
        md.AppendLine(FormattableString.Invariant($"Files: report.html, summary.md and {tables.Count} CSV tables in {folder}"));
        var markdown = md.ToString();
        await File.WriteAllTextAsync(Path.Combine(folder, "summary.md"), markdown, Utf8);

        var html = new StringBuilder();
        html.Append("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>").Append(Html.Escape(title)).Append("</title><style>")
            .Append("body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222;line-height:1.4}h2{margin-top:28px;border-bottom:1px solid #ddd}")
            .Append("table{border-collapse:collapse;margin:8px 0 18px;font-size:13px}th,td{border:1px solid #ddd;padding:3px 8px}th{background:#f4f4f4;text-align:left}")
            .Append("td.n{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#666}small{font-weight:normal}")
            .Append("</style></head><body>");
        html.Append("<h1>").Append(Html.Escape(title)).Append("</h1><p class=\"muted\">").Append(Html.Escape(intro)).Append("</p>");
        html.Append("<h2>Charts</h2>");
        foreach (var (chartTitle, svg) in charts) html.Append("<h3>").Append(Html.Escape(chartTitle)).Append("</h3>").Append(svg);
        html.Append("<h2>Tables</h2>");
        foreach (var table in tables) html.Append(table.ToHtml());
        html.Append("<p class=\"muted\">Definitions of every figure: docs/ANALYTICS.md.</p></body></html>");
        await File.WriteAllTextAsync(Path.Combine(folder, "report.html"), html.ToString(), Utf8);
        return markdown;
    }
}
