using System.Collections.Frozen;
using System.Text.Json;
using LoyaltyGrains.Analytics.Replay;
using LoyaltyGrains.Domain;
using Npgsql;
using Xunit.Abstractions;

namespace LoyaltyGrains.Tests.Analytics;

/// <summary>
/// The what-if replay against ledgers the engine made: the programme in force replays to exactly what was accrued (row
/// by row, member by member, in total), a window replays only its own rows, a rate change costs what the rates say,
/// and the same inputs give the same report.
/// </summary>
public sealed class ReplayTests(ITestOutputHelper output)
{
    private static readonly DateTimeOffset Far = new(2027, 6, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Each_accrual_row_replayed_under_the_programme_in_force_equals_the_engines_to_the_kopeck()
    {
        // In memory, row by row: the replay's mirror of the member's pricing state must agree with every decision.
        var ledger = new List<LedgerEntry>();
        foreach (var seed in new[] { 11, 12, 13 })
        {
            var engine = InMemory(seed, members: 25, steps: 2_500);
            ledger.AddRange(engine);
        }
        var rows = 0;
        var differences = new List<string>();
        foreach (var member in ledger.GroupBy(e => e.MemberId))
        {
            var replay = new MemberReplay(RandomTraffic.Program, MccCatalogue.Default, firstCompleteMonth: 0);
            foreach (var entry in member.OrderBy(e => e.Sequence))
            {
                if (replay.Apply(EngineLedger.Row(entry)) is not { } accrual) continue;
                rows++;
                Assert.False(accrual.Carried, $"{entry.MessageId} was carried");
                if (accrual.CandidateMinor != entry.AvailableDeltaMinor)
                {
                    differences.Add($"{entry.MemberId} #{entry.Sequence} {entry.Kind} {entry.MessageId}: engine {entry.AvailableDeltaMinor} replay {accrual.CandidateMinor}");
                }
                else
                {
                    Assert.Equal(entry.Breakdown.Where(l => l.AmountMinor != 0).Select(l => (l.Rule, l.AmountMinor)),
                        accrual.CandidateLines.Where(l => l.AmountMinor != 0).Select(l => (l.Rule, l.AmountMinor)));
                }
            }
        }
        output.WriteLine($"{rows} accrual rows of {ledger.Count} entries replayed");
        Assert.True(rows > 1_000, $"only {rows} accrual rows: the traffic does not exercise the replay");
        Assert.Contains(ledger, e => e.Kind == EntryKind.Refund);
        Assert.Contains(ledger, e => e.Kind == EntryKind.ExpirePending);
        Assert.Contains(ledger, e => e.Breakdown.Any(l => l.IsCategoryLine));
        Assert.Contains(ledger, e => e.Breakdown.Any(l => l.PartnerId.Length > 0));
        Assert.Empty(differences);
    }

    [Fact]
    public async Task The_database_replay_of_the_programme_in_force_equals_the_ledger_per_member_and_in_total()
    {
        await using var engine = await EngineLedger.CreateAsync("replay", RandomTraffic.Program);
        RandomTraffic.Generate(engine, members: 40, steps: 3_000, seed: 21);
        await engine.FlushAsync();
        var window = new WhatIfRequest(RandomTraffic.Program, RandomTraffic.Start.AddDays(-1), Far) { TopMembers = 1_000 };
        var first = await WhatIfReplay.RunAsync(Source(engine), window, MccCatalogue.Default);
        output.WriteLine($"{first.Run.RowsRead} rows, {first.Run.AccrualRows} accrual rows, {first.Run.Elapsed.TotalMilliseconds:0} ms");

        var (accrued, spend, purchases) = await ScalarsAsync(engine, """
            SELECT sum(available_delta_minor)::bigint, sum(spend_delta_minor)::bigint, count(*) FILTER (WHERE kind IN (3, 4))
              FROM loyalty.ledger WHERE kind IN (3, 4, 8)
            """);
        Assert.Equal(accrued, first.ActualMinor);
        Assert.Equal(accrued, first.CandidateMinor);
        Assert.Equal(spend, first.SpendMinor);
        Assert.Equal(purchases, first.Purchases);
        Assert.Equal(0, first.Run.CarriedRows);
        Assert.All(first.MostAffected, m => Assert.Equal(0, m.DeltaMinor));
        Assert.All(first.ByCategory.Concat(first.ByTier).Concat(first.ByFunder).Concat(first.ByCampaign).Concat(first.ByRule).Concat(first.ByMonth),
            g => Assert.True(g.DeltaMinor == 0, $"{g.Key}: {g.ActualMinor} vs {g.CandidateMinor}"));
        Assert.Equal(0, first.Behaviour.PurchasesEarningMore + first.Behaviour.PurchasesEarningLess);
        Assert.Equal(first.Behaviour.ActualCategoryPurchases, first.Behaviour.CandidateCategoryPurchases);
        Assert.Equal(first.ActualMinor, first.ByCategory.Sum(g => g.ActualMinor));
        Assert.Equal(first.ActualMinor, first.ByFunder.Sum(g => g.ActualMinor));
        Assert.Equal(first.ActualMinor, first.ByRule.Sum(g => g.ActualMinor));
        Assert.Contains(first.ByFunder, g => g.Key == "partner:cafe-partner" && g.ActualMinor > 0);

        // Deterministic: the same rows and candidate give the same report (run figures aside).
        var second = await WhatIfReplay.RunAsync(Source(engine), window, MccCatalogue.Default);
        Assert.Equal(Comparable(first), Comparable(second));
    }

    [Fact]
    public async Task A_window_counts_only_its_own_rows_and_replays_them_exactly_from_the_month_before()
    {
        await using var engine = await EngineLedger.CreateAsync("replay_window", RandomTraffic.Program);
        RandomTraffic.Generate(engine, members: 40, steps: 3_000, seed: 22);
        await engine.FlushAsync();
        var from = new DateTimeOffset(2026, 9, 20, 0, 0, 0, TimeSpan.Zero);
        var to = new DateTimeOffset(2026, 10, 10, 0, 0, 0, TimeSpan.Zero);
        var result = await WhatIfReplay.RunAsync(Source(engine), new WhatIfRequest(RandomTraffic.Program, from, to) { TopMembers = 1_000 }, MccCatalogue.Default);
        var (accrued, _, purchases) = await ScalarsAsync(engine, $"""
            SELECT sum(available_delta_minor)::bigint, 0::bigint, count(*) FILTER (WHERE kind IN (3, 4))
              FROM loyalty.ledger WHERE kind IN (3, 4, 8) AND recorded_at >= '{from:O}' AND recorded_at < '{to:O}'
            """);
        output.WriteLine($"window: {result.Purchases} purchases, {result.Run.CarriedRows} carried, replayed from {result.ReplayedFrom:O}");
        Assert.Equal(new DateTimeOffset(2026, 8, 1, 0, 0, 0, TimeSpan.FromHours(3)), result.ReplayedFrom);
        Assert.Equal(purchases, result.Purchases);
        Assert.Equal(accrued, result.ActualMinor);
        Assert.Equal(accrued, result.CandidateMinor);
        Assert.All(result.MostAffected, m => Assert.Equal(0, m.DeltaMinor));
    }

    [Fact]
    public async Task Supermarkets_from_five_to_three_percent_cost_exactly_what_the_rates_say()
    {
        var program = ProgramConfig.Default;
        await using var engine = await EngineLedger.CreateAsync("replay_rates", program);
        var at = new DateTimeOffset(2026, 11, 10, 9, 0, 0, TimeSpan.Zero);
        engine.Enroll("shopper", at);
        engine.Choose("shopper", program.MonthOf(at), at, "supermarkets", "restaurants");
        // 1 000.00 at a supermarket: base 1% = 10.00, chosen supermarkets 5% in total = +40.00 → 50.00.
        Assert.True(engine.Authorize("shopper", "a1", 100_000, 5411, at.AddMinutes(1)));
        Assert.True(engine.Capture("shopper", "c1", "a1", 100_000, at.AddMinutes(2)));
        // 2 000.00 of fuel, not chosen: base only, 20.00, under either programme.
        Assert.True(engine.ForcePost("shopper", "f1", 200_000, 5541, at.AddMinutes(3)));
        // 500.00 at a restaurant: 7% (override) = 35.00, unchanged by the candidate.
        Assert.True(engine.ForcePost("shopper", "r1", 50_000, 5812, at.AddMinutes(4)));
        // Half of the supermarket purchase back: the clawback follows the candidate's accrual (25.00 actual, 15.00 candidate).
        Assert.True(engine.Refund("shopper", "rf1", "a1", 50_000, at.AddMinutes(5)));
        await engine.FlushAsync();

        var candidate = program with
        {
            CategoryRateOverridesBps = new Dictionary<string, int> { ["restaurants"] = 700, ["taxi"] = 700, ["supermarkets"] = 300 }.ToFrozenDictionary(),
        };
        var result = await WhatIfReplay.RunAsync(Source(engine), new WhatIfRequest(candidate, at.AddDays(-1), at.AddDays(1)), MccCatalogue.Default);
        Assert.Equal(5_000 + 2_000 + 3_500 - 2_500, result.ActualMinor);
        Assert.Equal(3_000 + 2_000 + 3_500 - 1_500, result.CandidateMinor);
        Assert.Equal(-1_000, result.DeltaMinor);
        var supermarkets = Assert.Single(result.ByCategory, g => g.Key == "supermarkets");
        Assert.Equal((1L, 2_500L, 1_500L), (supermarkets.Purchases, supermarkets.ActualMinor, supermarkets.CandidateMinor));
        Assert.All(result.ByCategory.Where(g => g.Key != "supermarkets"), g => Assert.Equal(0, g.DeltaMinor));
        Assert.Equal((1L, 0L, 2L), (result.Behaviour.PurchasesEarningLess, result.Behaviour.PurchasesEarningMore, result.Behaviour.PurchasesUnchanged));
        var member = Assert.Single(result.MostAffected);
        Assert.Equal(("shopper", -1_000L), (member.MemberId, member.DeltaMinor));
        var category = Assert.Single(result.ByRule, g => g.Key == "category");
        Assert.Equal(4_000 + 3_000 - 2_000, category.ActualMinor);
        Assert.Equal(2_000 + 3_000 - 1_000, category.CandidateMinor);
    }

    [Fact]
    public void A_candidate_that_is_not_a_valid_programme_is_refused_naming_the_field()
    {
        var request = new WhatIfRequest(ProgramConfig.Default with { Tiers = [] }, RandomTraffic.Start, RandomTraffic.Start.AddDays(1)) { TopMembers = 5_000 };
        var errors = request.Validate(MccCatalogue.Default);
        Assert.Contains(errors, e => e.StartsWith("program.tiers:", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("top_members:", StringComparison.Ordinal));
        Assert.Contains(new WhatIfRequest(ProgramConfig.Default, RandomTraffic.Start, RandomTraffic.Start).Validate(MccCatalogue.Default),
            e => e.StartsWith("to:", StringComparison.Ordinal));
    }

    private static List<LedgerEntry> InMemory(int seed, int members, int steps)
    {
        var ledger = EngineLedger.InMemory(RandomTraffic.Program);
        RandomTraffic.Generate(ledger, members, steps, seed);
        return [.. ledger.All.Select(e => e with { MemberId = $"s{seed}-{e.MemberId}" })];
    }

    private static NpgsqlDataSource Source(EngineLedger engine) => NpgsqlDataSource.Create(engine.Database.ConnectionString);

    private static string Comparable(WhatIfResult result) => JsonSerializer.Serialize(result with { Run = result.Run with { Elapsed = TimeSpan.Zero, PeakWorkingSetBytes = 0 } });

    private static async Task<(long, long, long)> ScalarsAsync(EngineLedger engine, string sql)
    {
        await using var connection = new NpgsqlConnection(engine.Database.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        return (reader.IsDBNull(0) ? 0 : reader.GetInt64(0), reader.IsDBNull(1) ? 0 : reader.GetInt64(1), reader.GetInt64(2));
    }
}
