using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Tests.Domain;

/// <summary>
/// The money rules of grains/LoyaltyGrains.Domain/Rules, each alone: the month's tier, the captured campaign share, the
/// proportional clawback, reversal and expiry of pending lines, rounding, and pricing against the cap net of a
/// purchase's own reservation. Live pricing, quotes and the what-if replay all call these; the replay's agreement with
/// the live engine is ReplayPropertyTests.
/// </summary>
public sealed class MoneyRulesTests
{
    private static readonly ProgramConfig Program = ProgramConfig.Default;
    private static readonly DateTimeOffset Noon = new(2026, 11, 20, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void The_month_s_tier_is_the_frozen_one_while_the_programme_has_it_else_last_month_s_spend_decides()
    {
        Assert.Equal("gold", TierOfMonth.Resolve(Program, "gold", previousMonthCapturedSpendMinor: 0, premium: false).TierId);
        // A frozen tier the programme no longer has: the spend decides.
        Assert.Equal("silver", TierOfMonth.Resolve(Program, "platinum", 3_000_000, premium: false).TierId);
        Assert.Equal("standard", TierOfMonth.Resolve(Program, "", 2_999_999, premium: false).TierId);
        Assert.Equal("gold", TierOfMonth.Resolve(Program, "", 10_000_000, premium: false).TierId);
        // Premium: at least the premium minimum tier (silver), never lowered by it.
        Assert.Equal("silver", TierOfMonth.FromSpend(Program, 0, premium: true).TierId);
        Assert.Equal("gold", TierOfMonth.FromSpend(Program, 10_000_000, premium: true).TierId);
        Assert.Equal("standard", TierOfMonth.FromSpend(Program with { PremiumMinimumTierId = "" }, 0, premium: true).TierId);
    }

    [Fact]
    public void A_capture_keeps_the_captured_share_of_each_pending_campaign_line_never_more()
    {
        AccrualLine[] pending =
        [
            new("base", 1_000, 100), new("campaign:a", 5_000, 500, "partner-1"), new("campaign:b", 0, 300), new("category:fuel", 4_000, 400),
        ];
        var partial = CampaignGrants.AtCapture(pending, remainingAuthorizedMinor: 100_000, capturedMinor: 60_001);
        var grant = Assert.Single(partial);
        Assert.Equal(("a", 3_000L, 500, "partner-1"), (grant.Campaign.CampaignId, grant.GrantedMinor, grant.Campaign.RateBps, grant.Campaign.PartnerId));
        // Over the authorization (a tip within the margin): still only what was granted.
        Assert.Equal(5_000, Assert.Single(CampaignGrants.AtCapture(pending, 100_000, 120_000)).GrantedMinor);
        // Nothing left authorized (expired: the budget went back): no campaign bonus.
        Assert.Empty(CampaignGrants.AtCapture(pending, 0, 100_000));
        Assert.Equal([("a", 5_000L)], CampaignGrants.AsGranted(pending).Select(g => (g.Campaign.CampaignId, g.GrantedMinor)));
    }

    [Fact]
    public void Refunds_claw_back_cumulatively_so_together_they_take_exactly_the_capture_s_accrual()
    {
        AccrualLine[] captured = [new("base", 1_000, 100), new("category:supermarkets", 4_000, 400), new("campaign:x", 2_500, 250, "p")];
        var clawed = Clawback.NothingClawed(captured);
        Assert.All(clawed, line => Assert.Equal(0, line.AmountMinor));
        var refunded = 0L;
        var taken = new List<long>();
        var categoryReturned = 0L;
        foreach (var refund in new long[] { 33_333, 33_333, 33_334 })
        {
            var clawback = Clawback.Of(captured, 100_000, clawed, refunded, refund);
            taken.Add(clawback.TakenMinor);
            categoryReturned += clawback.CategoryCapReturnedMinor;
            Assert.Equal(-clawback.TakenMinor, AccrualCalculator.Sum(clawback.Breakdown));
            clawed = clawback.ClawedAfter;
            refunded += refund;
        }
        // 333 + 1 333 + 833 twice (truncated shares of the running total), then the rest.
        Assert.Equal([2_499L, 2_499L, 2_502L], taken);
        Assert.Equal(7_500, taken.Sum());
        Assert.Equal(4_000, categoryReturned);
    }

    [Fact]
    public void Partial_reversals_keep_the_authorized_share_and_expiry_releases_all_that_is_pending()
    {
        AccrualLine[] authorized = [new("base", 1_000, 100), new("category:fuel", 4_000, 400)];
        var first = PendingReversal.Of(authorized, authorizedMinor: 100_000, remainingAuthorizedAfterMinor: 66_667, categoryReservedMinor: 4_000);
        Assert.Equal([666L, 2_666L], first.PendingLines.Select(l => l.AmountMinor));
        Assert.Equal(-1_334, first.CategoryCapDeltaMinor);
        var second = PendingReversal.Of(authorized, 100_000, 0, 4_000 + first.CategoryCapDeltaMinor);
        Assert.All(second.PendingLines, l => Assert.Equal(0, l.AmountMinor));
        Assert.Equal(-2_666, second.CategoryCapDeltaMinor);
        var expired = PendingReversal.AtExpiry(first.PendingLines, 2_666);
        Assert.All(expired.PendingLines, l => Assert.Equal(0, l.AmountMinor));
        Assert.Equal(-2_666, expired.CategoryCapDeltaMinor);
    }

    [Fact]
    public void Floor_mode_cuts_the_own_cashback_to_whole_bonuses_on_its_own_line()
    {
        var lines = new List<AccrualLine> { new("base", 1_234, 100) };
        AccrualRounding.Apply(RoundingMode.FloorWholeBonus, lines);
        Assert.Equal(new AccrualLine(AccrualLine.RoundingRule, -34), lines[^1]);
        var exact = new List<AccrualLine> { new("base", 1_234, 100) };
        AccrualRounding.Apply(RoundingMode.ExactMinor, exact);
        Assert.Single(exact);
        var whole = new List<AccrualLine> { new("base", 1_200, 100) };
        AccrualRounding.Apply(RoundingMode.FloorWholeBonus, whole);
        Assert.Single(whole);
    }

    [Fact]
    public void A_capture_is_priced_against_the_month_s_cap_net_of_its_own_reservation()
    {
        var standard = Program.Tiers[0];
        var purchase = new PurchaseFacts(100_000, 5411, "shop", Noon);
        // The cap (3 000.00) is full, 40.00 of it reserved by this purchase's own authorization: the capture gets it back.
        var capture = PurchasePricing.Price(Program, MccCatalogue.Default, purchase, standard, premium: false, ["supermarkets"],
            monthCategoryCapUsedMinor: 300_000, ownReservationMinor: 4_000, grants: null);
        Assert.Equal([new AccrualLine("base", 1_000, 100), new AccrualLine("category:supermarkets", 4_000, 400)], capture.Lines);
        Assert.Equal(0, PurchasePricing.CaptureCategoryCapDelta(capture, 4_000));
        // Another purchase in the same full month gets no category cashback.
        var another = PurchasePricing.Price(Program, MccCatalogue.Default, purchase, standard, false, ["supermarkets"], 300_000, 0, null);
        Assert.Equal([new AccrualLine("base", 1_000, 100)], another.Lines);
        Assert.Equal(ProgramCalendar.DefaultUtcOffsetMinutes, Program.UtcOffsetMinutes);
    }

    [Fact]
    public void The_what_if_replay_prices_only_through_the_domain_s_rules()
    {
        // A second implementation of a money rule in the replay could price a what-if apart from live pricing silently:
        // the replay keeps state and calls the rules; the arithmetic primitives are not used there.
        var source = File.ReadAllText(Path.Combine(RepositoryRoot(), "grains", "LoyaltyGrains.Analytics", "Replay", "MemberReplay.cs"));
        foreach (var primitive in new[] { "Money.", "Proportion(", "ApplyBps(", ".Scale(", ".Difference(", "CategorySum(", "FromSpend(", "AccrualCalculator.Compute(", "new MemberFacts(" })
        {
            Assert.False(source.Contains(primitive, StringComparison.Ordinal), $"MemberReplay.cs uses {primitive}: call the rule in grains/LoyaltyGrains.Domain/Rules instead");
        }
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "docs", "RULES.md"))) return dir.FullName;
        }
        throw new DirectoryNotFoundException("the repository (docs/RULES.md) not found above " + AppContext.BaseDirectory);
    }
}
