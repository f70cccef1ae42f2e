using Npgsql;
using NpgsqlTypes;

namespace LoyaltyGrains.Analytics;

/// <summary>
/// Computes <see cref="ProgramStats"/> with SQL on the ledger (views of migration 0008): every figure is an aggregate
/// the database computes, so a run costs scans of the period's partitions, never a read of members into memory. The
/// definitions are in docs/ANALYTICS.md; each query below names the figures it serves.
/// </summary>
public static class StatsQuery
{
    /// <summary>
    /// The period's purchase money rows after the filters: captures and force posts, and refunds. Partner and campaign
    /// filters skip rows without such a line by their columns (migration 0010), then match the line with jsonb.
    /// Parameters: $1 from, $2 to, $3 tier, $4 category, $5 partner, $6 campaign.
    /// </summary>
    private const string Purchases = """
        WITH p AS (
            SELECT member_id, sequence, kind, purchase_month, category, tier_id, spend_minor, cashback_minor, breakdown, has_partner_line, has_campaign_line
              FROM loyalty.purchase_cashback_v
             WHERE recorded_at >= $1 AND recorded_at < $2
               AND ($3 = '' OR tier_id = $3)
               AND ($4 = '' OR category = $4)
               AND ($5 = '' OR (has_partner_line AND breakdown::jsonb @> jsonb_build_array(jsonb_build_object('partnerId', $5))))
               AND ($6 = '' OR (has_campaign_line AND breakdown::jsonb @> jsonb_build_array(jsonb_build_object('rule', 'campaign:' || $6)))))
        """;

    // Entry kinds by name (migration 0010's loyalty.kind, folded to constants by the planner).
    private const string Accrual = "loyalty.kind('Capture'), loyalty.kind('ForcePost')";
    private const string Refund = "loyalty.kind('Refund')";
    private const string Referral = "loyalty.kind('ReferralBonus')";
    private const string Redemption = "loyalty.kind('Redeem'), loyalty.kind('RedeemRefund')";
    private const string Expiry = "loyalty.kind('ExpireLots')";

    public static async Task<ProgramStats> RunAsync(NpgsqlDataSource source, StatsRequest request, CancellationToken cancellationToken = default)
    {
        var errors = request.Validate();
        if (errors.Count > 0) throw new ArgumentException(string.Join("; ", errors), nameof(request));
        await using var connection = await source.OpenConnectionAsync(cancellationToken);
        // One snapshot for every query of the run, so the figures and their breakdowns add up while the engine writes.
        await using var snapshot = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken);
        await using (var readOnly = new NpgsqlCommand("SET TRANSACTION READ ONLY", connection)) await readOnly.ExecuteNonQueryAsync(cancellationToken);

        // Active members, purchases, repeat members, captured amount, net spend and cashback of the filtered purchases.
        var (active, purchases, repeat, captured, netSpend, cashback) = await SingleAsync(connection, request, Purchases + $"""
            , m AS (SELECT member_id, count(*) FILTER (WHERE kind IN ({Accrual})) AS n FROM p GROUP BY member_id)
            SELECT (SELECT count(*) FROM m WHERE n > 0), count(*) FILTER (WHERE kind IN ({Accrual})), (SELECT count(*) FROM m WHERE n >= 2),
                   coalesce(sum(spend_minor) FILTER (WHERE kind IN ({Accrual})), 0)::bigint, coalesce(sum(spend_minor), 0)::bigint,
                   coalesce(sum(cashback_minor), 0)::bigint
              FROM p
            """, r => (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5)), cancellationToken);

        // Programme-wide movements of the period (not filtered: they are not purchases): accrued (captures, force posts,
        // refunds, referrals), redeemed net of redemption refunds, expired (breakage).
        var (accrued, redeemed, expired) = await SingleAsync(connection, request, $"""
            SELECT coalesce(sum(available_delta_minor) FILTER (WHERE kind IN ({Accrual}, {Refund}, {Referral})), 0)::bigint,
                   coalesce(-sum(available_delta_minor) FILTER (WHERE kind IN ({Redemption})), 0)::bigint,
                   coalesce(-sum(available_delta_minor) FILTER (WHERE kind = {Expiry}), 0)::bigint
              FROM loyalty.ledger
             WHERE recorded_at >= $1 AND recorded_at < $2 AND kind IN ({Accrual}, {Refund}, {Redemption}, {Expiry}, {Referral})
            """, r => (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2)), cancellationToken);

        // Liability at the end of the period: every row before it, summed (the balances are the sums of the rows).
        var (available, pending) = await SingleAsync(connection, request, """
            SELECT coalesce(sum(available_delta_minor), 0)::bigint, coalesce(sum(pending_delta_minor), 0)::bigint
              FROM loyalty.ledger WHERE recorded_at < $2
            """, r => (r.GetInt64(0), r.GetInt64(1)), cancellationToken);

        // Bonuses expiring within 30/60/90 days of the period's end. A member's lots are first in, first out, so what
        // remains of its available balance is its newest gains: walk them newest first until they cover the balance.
        var (in30, in60, in90) = await SingleAsync(connection, request, """
            WITH bal AS (
                SELECT member_id, sum(available_delta_minor) AS available FROM loyalty.ledger WHERE recorded_at < $2 GROUP BY member_id),
            gains AS (
                SELECT member_id, lot_expires_at, available_delta_minor AS gain,
                       sum(available_delta_minor) OVER (PARTITION BY member_id ORDER BY sequence DESC) AS newer_and_this
                  FROM loyalty.ledger WHERE recorded_at < $2 AND available_delta_minor > 0),
            lots AS (
                SELECT g.lot_expires_at, least(g.gain, greatest(0, b.available - (g.newer_and_this - g.gain))) AS remaining
                  FROM gains g JOIN bal b ON b.member_id = g.member_id
                 WHERE b.available > 0)
            SELECT coalesce(sum(remaining) FILTER (WHERE lot_expires_at <= $2 + interval '30 days'), 0)::bigint,
                   coalesce(sum(remaining) FILTER (WHERE lot_expires_at <= $2 + interval '60 days'), 0)::bigint,
                   coalesce(sum(remaining) FILTER (WHERE lot_expires_at <= $2 + interval '90 days'), 0)::bigint
              FROM lots
            """, r => (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2)), cancellationToken);

        var summary = new StatsSummary(active, purchases, repeat, captured, netSpend, cashback, accrued, redeemed, expired,
            available, pending, in30, in60, in90);

        var byCategory = await GroupsAsync(connection, request, "category", cancellationToken);
        var byTier = await GroupsAsync(connection, request, "tier_id", cancellationToken);

        // Campaign lines (and their funders) need the breakdown: only rows naming a campaign are parsed.
        var campaignLines = await ListAsync(connection, request, Purchases + $"""
            SELECT substr(line->>'rule', 10), line->>'partnerId',
                   count(*) FILTER (WHERE p.kind IN ({Accrual})), count(DISTINCT p.member_id) FILTER (WHERE p.kind IN ({Accrual})),
                   coalesce(sum(p.spend_minor), 0)::bigint, coalesce(sum((line->>'amountMinor')::bigint), 0)::bigint
              FROM p CROSS JOIN LATERAL jsonb_array_elements(p.breakdown::jsonb) AS line
             WHERE p.has_campaign_line AND line->>'rule' LIKE 'campaign:%'
             GROUP BY 1, 2 ORDER BY 1, 2
            """, r => (Campaign: r.GetString(0), Partner: r.GetString(1), Purchases: r.GetInt64(2), Members: r.GetInt64(3),
                Spend: r.GetInt64(4), Cashback: r.GetInt64(5)), cancellationToken);
        var byCampaign = campaignLines
            .GroupBy(l => l.Campaign, StringComparer.Ordinal)
            .Select(g => new StatsGroup(g.Key, g.Sum(l => l.Purchases), g.Max(l => l.Members), g.Sum(l => l.Spend), g.Sum(l => l.Cashback)))
            .ToList();
        var partnerFunded = campaignLines.Where(l => l.Partner.Length > 0)
            .GroupBy(l => l.Partner, StringComparer.Ordinal)
            .Select(g => new StatsGroup("partner:" + g.Key, g.Sum(l => l.Purchases), g.Max(l => l.Members), g.Sum(l => l.Spend), g.Sum(l => l.Cashback)))
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToList();
        var byFunder = new List<StatsGroup>
        {
            new("bank", purchases, active, netSpend, checked(cashback - partnerFunded.Sum(g => g.CashbackMinor))),
        };
        byFunder.AddRange(partnerFunded);

        var costByMonth = await ListAsync(connection, request, Purchases + """
            SELECT purchase_month, category, coalesce(sum(spend_minor), 0)::bigint, coalesce(sum(cashback_minor), 0)::bigint
              FROM p GROUP BY 1, 2 ORDER BY 1, 2
            """, r => new MonthCategoryCost(r.GetInt32(0), r.GetString(1), r.GetInt64(2), r.GetInt64(3)), cancellationToken);

        // Retention: members with a captured purchase in month M, and those of them with one in M + 1 too. The period's
        // last month has no next month inside the period, so it is not reported.
        var retention = await ListAsync(connection, request, Purchases + $"""
            , a AS (SELECT DISTINCT member_id, purchase_month FROM p WHERE kind IN ({Accrual}))
            SELECT a.purchase_month, count(*), count(n.member_id)
              FROM a LEFT JOIN a n ON n.member_id = a.member_id
               AND n.purchase_month = CASE WHEN a.purchase_month % 100 = 12 THEN a.purchase_month + 89 ELSE a.purchase_month + 1 END
             GROUP BY 1 ORDER BY 1
            """, r => new MonthRetention(r.GetInt32(0), r.GetInt64(1), r.GetInt64(2)), cancellationToken);
        if (retention.Count > 0) retention.RemoveAt(retention.Count - 1);

        // Cohorts: members enrolled in the period, by enrolment month (programme calendar), and how many of each were
        // active (a captured purchase matching the filters) k months after their enrolment month.
        var cohorts = await ListAsync(connection, request, Purchases + $"""
            , c AS (SELECT member_id, to_char((recorded_at AT TIME ZONE 'UTC') + make_interval(mins => $7), 'YYYYMM')::int AS cohort
                      FROM loyalty.ledger WHERE kind = loyalty.kind('Enroll') AND recorded_at >= $1 AND recorded_at < $2),
            size AS (SELECT cohort, count(*) AS n FROM c GROUP BY cohort),
            act AS (SELECT DISTINCT c.cohort, p.member_id,
                           (p.purchase_month / 100 - c.cohort / 100) * 12 + p.purchase_month % 100 - c.cohort % 100 AS k
                      FROM p JOIN c ON c.member_id = p.member_id WHERE p.kind IN ({Accrual}))
            SELECT s.cohort, coalesce(a.k, 0), s.n, count(a.member_id)
              FROM size s LEFT JOIN act a ON a.cohort = s.cohort AND a.k BETWEEN 0 AND $8
             GROUP BY 1, 2, 3 ORDER BY 1 DESC, 2
            """, r => new CohortCell(r.GetInt32(0), r.GetInt32(1), r.GetInt64(2), r.GetInt64(3)), cancellationToken,
            extra: [Param(request.UtcOffsetMinutes), Param(StatsRequest.CohortMonthsMax)]);
        var newestCohorts = cohorts.Select(c => c.CohortMonth).Distinct().Take(StatsRequest.CohortMonthsMax).ToHashSet();
        var cohortCells = cohorts.Where(c => newestCohorts.Contains(c.CohortMonth))
            .OrderBy(c => c.CohortMonth).ThenBy(c => c.MonthsSinceEnrolment).ToList();

        return new ProgramStats(request, summary, byCategory, byTier, byCampaign, byFunder, costByMonth, retention, cohortCells);
    }

    private static Task<List<StatsGroup>> GroupsAsync(NpgsqlConnection connection, StatsRequest request, string column, CancellationToken cancellationToken) =>
        ListAsync(connection, request, Purchases + $"""
            SELECT {column}, count(*) FILTER (WHERE kind IN ({Accrual})), count(DISTINCT member_id) FILTER (WHERE kind IN ({Accrual})),
                   coalesce(sum(spend_minor), 0)::bigint, coalesce(sum(cashback_minor), 0)::bigint
              FROM p GROUP BY 1 ORDER BY 1
            """, r => new StatsGroup(r.GetString(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4)), cancellationToken);

    private static NpgsqlParameter Param(int value) => new() { Value = value, NpgsqlDbType = NpgsqlDbType.Integer };

    private static NpgsqlCommand Command(NpgsqlConnection connection, StatsRequest request, string sql, NpgsqlParameter[]? extra)
    {
        var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        command.Parameters.Add(new NpgsqlParameter { Value = request.From.UtcDateTime, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter { Value = request.To.UtcDateTime, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter { Value = request.Tier, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter { Value = request.Category, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter { Value = request.Partner, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter { Value = request.Campaign, NpgsqlDbType = NpgsqlDbType.Text });
        foreach (var parameter in extra ?? []) command.Parameters.Add(parameter);
        return command;
    }

    private static async Task<T> SingleAsync<T>(NpgsqlConnection connection, StatsRequest request, string sql, Func<NpgsqlDataReader, T> read,
        CancellationToken cancellationToken)
    {
        await using var command = Command(connection, request, sql, null);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken)) throw new InvalidOperationException("an aggregate returned no row");
        return read(reader);
    }

    private static async Task<List<T>> ListAsync<T>(NpgsqlConnection connection, StatsRequest request, string sql, Func<NpgsqlDataReader, T> read,
        CancellationToken cancellationToken, NpgsqlParameter[]? extra = null)
    {
        await using var command = Command(connection, request, sql, extra);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<T>();
        while (await reader.ReadAsync(cancellationToken)) rows.Add(read(reader));
        return rows;
    }
}
