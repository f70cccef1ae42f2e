using LoyaltyGrains.Analytics;
using LoyaltyGrains.Domain;
using Npgsql;
using Xunit.Abstractions;

namespace LoyaltyGrains.Tests.Analytics;

/// <summary>
/// Programme figures by SQL on engine-made ledgers: a small ledger whose every figure is worked out by hand below,
/// and invariants on a larger random one (groups add up to the totals, lots expiring match the engine's own lots).
/// </summary>
public sealed class StatsTests(ITestOutputHelper output)
{
    internal static DateTimeOffset At(int month, int day, int hour = 12) => new(month >= 11 ? 2026 : 2027, month, day, hour, 0, 0, TimeSpan.Zero);

    private static readonly CampaignRule FuelBonus = new()
    {
        CampaignId = "fuel-bonus", PartnerId = "fuelco", RateBps = 200, Categories = ["fuel"],
        StartsAt = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero), EndsAt = new DateTimeOffset(2027, 1, 1, 0, 0, 0, TimeSpan.Zero),
    };

    /// <summary>
    /// Default programme (standard tier: 1% base from 100.00, no categories chosen). A: enrolled 5 Nov; 1 000.00 at a
    /// supermarket (10.00) and 500.00 at a restaurant (5.00) in November, 2 000.00 at a supermarket (20.00) in December,
    /// redeems 5.00. B: enrolled 6 Nov; 300.00 of fuel in November, 3.00 base + 6.00 from the partner campaign. C:
    /// enrolled 3 Dec; 800.00 at a supermarket (8.00), half refunded (-4.00).
    /// </summary>
    internal static async Task<EngineLedger> HandLedgerAsync()
    {
        var engine = await EngineLedger.CreateAsync("stats_hand", ProgramConfig.Default);
        engine.Enroll("A", At(11, 5));
        engine.Enroll("B", At(11, 6));
        Assert.True(engine.Authorize("A", "a1", 100_000, 5411, At(11, 10)));
        Assert.True(engine.Capture("A", "a1-capture", "a1", 100_000, At(11, 10, 13)));
        Assert.True(engine.ForcePost("A", "a2", 50_000, 5812, At(11, 12)));
        Assert.True(engine.Authorize("B", "b1", 30_000, 5541, At(11, 15), [FuelBonus]));
        Assert.True(engine.Capture("B", "b1-capture", "b1", 30_000, At(11, 15, 13)));
        engine.Enroll("C", At(12, 3));
        Assert.True(engine.ForcePost("A", "a3", 200_000, 5411, At(12, 10)));
        Assert.True(engine.Redeem("A", "a-redeem", 500, At(12, 11)));
        Assert.True(engine.ForcePost("C", "c1", 80_000, 5411, At(12, 12)));
        Assert.True(engine.Refund("C", "c1-refund", "c1", 40_000, At(12, 13)));
        await engine.FlushAsync();
        return engine;
    }

    [Fact]
    public async Task Every_figure_of_a_small_ledger_is_the_one_worked_out_by_hand()
    {
        await using var engine = await HandLedgerAsync();
        await using var source = NpgsqlDataSource.Create(engine.Database.ConnectionString);
        var stats = await StatsQuery.RunAsync(source, new StatsRequest(At(11, 1, 0), At(10, 20, 0)));
        var s = stats.Summary;
        Assert.Equal((3L, 5L, 1L), (s.ActiveMembers, s.Purchases, s.RepeatMembers));
        Assert.Equal((460_000L, 420_000L, 4_800L), (s.CapturedMinor, s.NetSpendMinor, s.CashbackMinor));
        Assert.Equal((92_000L, 114L, 3_333L), (s.AverageCheckMinor, s.EffectiveRateBps, s.RepeatRateBps));
        Assert.Equal((4_800L, 500L, 0L, 1_042L), (s.AccruedMinor, s.RedeemedMinor, s.ExpiredMinor, s.RedemptionRateBps));
        Assert.Equal((4_300L, 0L, 4_300L), (s.AvailableMinor, s.PendingMinor, s.LiabilityMinor));
        // Lots expire a year and a day after they were earned (programme calendar). By 19 Nov 2027: A's November lots
        // less the 5.00 redeemed from the oldest (15.00 - 5.00) and B's 9.00; by 19 Dec 2027 also A's 20.00 and C's 4.00.
        Assert.Equal((1_900L, 4_300L, 4_300L), (s.Expiring30Minor, s.Expiring60Minor, s.Expiring90Minor));

        Assert.Equal(
            [("fuel", 1L, 1L, 30_000L, 900L), ("restaurants", 1, 1, 50_000, 500), ("supermarkets", 3, 2, 340_000, 3_400)],
            stats.ByCategory.Select(g => (g.Key, g.Purchases, g.ActiveMembers, g.NetSpendMinor, g.CashbackMinor)));
        Assert.Equal([("standard", 5L, 3L, 420_000L, 4_800L)], stats.ByTier.Select(g => (g.Key, g.Purchases, g.ActiveMembers, g.NetSpendMinor, g.CashbackMinor)));
        Assert.Equal([("fuel-bonus", 1L, 1L, 30_000L, 600L)], stats.ByCampaign.Select(g => (g.Key, g.Purchases, g.ActiveMembers, g.NetSpendMinor, g.CashbackMinor)));
        Assert.Equal([("bank", 5L, 4_200L), ("partner:fuelco", 1, 600)], stats.ByFunder.Select(g => (g.Key, g.Purchases, g.CashbackMinor)));
        Assert.Equal(
            [(202611, "fuel", 30_000L, 900L), (202611, "restaurants", 50_000, 500), (202611, "supermarkets", 100_000, 1_000), (202612, "supermarkets", 240_000, 2_400)],
            stats.CostByMonth.Select(c => (c.Month, c.Category, c.NetSpendMinor, c.CashbackMinor)));
        // November: A and B active, A again in December. December is the period's last active month: not reported.
        Assert.Equal([(202611, 2L, 1L, 5_000L)], stats.Retention.Select(r => (r.Month, r.ActiveMembers, r.RetainedNextMonth, r.RetentionBps)));
        Assert.Equal([(202611, 0, 2L, 2L), (202611, 1, 2, 1), (202612, 0, 1, 1)],
            stats.Cohorts.Select(c => (c.CohortMonth, c.MonthsSinceEnrolment, c.CohortSize, c.ActiveMembers)));
    }

    [Fact]
    public async Task Filters_narrow_the_purchase_figures_to_what_they_name()
    {
        await using var engine = await HandLedgerAsync();
        await using var source = NpgsqlDataSource.Create(engine.Database.ConnectionString);
        var period = new StatsRequest(At(11, 1, 0), At(1, 1, 0));
        var supermarkets = (await StatsQuery.RunAsync(source, period with { Category = "supermarkets" })).Summary;
        Assert.Equal((2L, 3L, 340_000L, 3_400L), (supermarkets.ActiveMembers, supermarkets.Purchases, supermarkets.NetSpendMinor, supermarkets.CashbackMinor));
        var partner = (await StatsQuery.RunAsync(source, period with { Partner = "fuelco" })).Summary;
        Assert.Equal((1L, 1L, 900L), (partner.ActiveMembers, partner.Purchases, partner.CashbackMinor));
        var campaign = (await StatsQuery.RunAsync(source, period with { Campaign = "fuel-bonus" })).Summary;
        Assert.Equal((1L, 900L), (campaign.Purchases, campaign.CashbackMinor));
        var gold = (await StatsQuery.RunAsync(source, period with { Tier = "gold" })).Summary;
        Assert.Equal((0L, 0L, 0L), (gold.ActiveMembers, gold.Purchases, gold.CashbackMinor));
        // Programme-wide figures ignore purchase filters.
        Assert.Equal(4_300L, gold.AvailableMinor);
        var december = (await StatsQuery.RunAsync(source, new StatsRequest(At(12, 1, 0), At(1, 1, 0)))).Summary;
        Assert.Equal((2L, 2L, 0L, 2_400L, 500L), (december.ActiveMembers, december.Purchases, december.RepeatMembers, december.CashbackMinor, december.RedeemedMinor));
    }

    [Fact]
    public void A_request_that_cannot_run_names_each_bad_field()
    {
        var errors = new StatsRequest(At(11, 2), At(11, 1)) { Tier = "no spaces", UtcOffsetMinutes = 100_000 }.Validate();
        Assert.Contains(errors, e => e.StartsWith("to:", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("tier:", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("utc_offset_minutes:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task On_a_random_ledger_groups_add_up_and_expiring_bonuses_are_the_engines_own_lots()
    {
        await using var engine = await EngineLedger.CreateAsync("stats_random", RandomTraffic.Program);
        RandomTraffic.Generate(engine, members: 60, steps: 3_000, seed: 31);
        await engine.FlushAsync();
        await using var source = NpgsqlDataSource.Create(engine.Database.ConnectionString);
        var asOf = new DateTimeOffset(2027, 7, 25, 0, 0, 0, TimeSpan.Zero);
        var stats = await StatsQuery.RunAsync(source, new StatsRequest(RandomTraffic.Start.AddDays(-1), asOf));
        var s = stats.Summary;
        output.WriteLine($"{s.Purchases} purchases, {s.ActiveMembers} active, cashback {s.CashbackMinor}, liability {s.LiabilityMinor}, expiring {s.Expiring30Minor}/{s.Expiring60Minor}/{s.Expiring90Minor}");
        Assert.True(s.Purchases > 500, "the random ledger has too few purchases to say anything");
        foreach (var groups in new[] { stats.ByCategory, stats.ByTier, stats.ByFunder })
        {
            Assert.Equal(s.CashbackMinor, groups.Sum(g => g.CashbackMinor));
        }
        Assert.Equal(s.Purchases, stats.ByCategory.Sum(g => g.Purchases));
        Assert.Equal(s.Purchases, stats.ByTier.Sum(g => g.Purchases));
        Assert.Equal(s.NetSpendMinor, stats.ByCategory.Sum(g => g.NetSpendMinor));
        Assert.Equal(s.CashbackMinor, stats.CostByMonth.Sum(c => c.CashbackMinor));
        Assert.True(stats.ByTier.Count >= 2, "members never changed tier");
        Assert.InRange(s.RepeatMembers, 0, s.ActiveMembers);
        Assert.InRange(s.ActiveMembers, 1, s.Purchases);
        Assert.All(stats.Retention, r => Assert.InRange(r.RetainedNextMonth, 0, r.ActiveMembers));
        Assert.All(stats.Cohorts, c => Assert.InRange(c.ActiveMembers, 0, c.CohortSize));
        Assert.Equal(60, stats.Cohorts.Where(c => c.MonthsSinceEnrolment == 0).Sum(c => c.CohortSize));

        // The engine's own view: each member's balances and its bonus lots (first in, first out) after the last message.
        var members = engine.All.Select(e => e.MemberId).Distinct().Select(engine.Member).ToList();
        Assert.Equal(members.Sum(m => m.State.AvailableMinor), s.AvailableMinor);
        Assert.Equal(members.Sum(m => m.State.PendingMinor), s.PendingMinor);
        long Lots(int days) => members.Sum(m => m.State.Lots.Where(l => l.ExpiresAt <= asOf.AddDays(days)).Sum(l => l.AmountMinor));
        Assert.Equal((Lots(30), Lots(60), Lots(90)), (s.Expiring30Minor, s.Expiring60Minor, s.Expiring90Minor));
        Assert.True(s.Expiring30Minor > 0 && s.Expiring90Minor > s.Expiring30Minor, "the as-of date does not split the lots");
    }
}
