using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Tests.Rules;

/// <summary>
/// Every worked example of docs/RULES.md, by its id. Amounts in minor units (kopecks): 100_000 = 1 000.00 RUB.
/// Default program, standard tier, member enrolled 2026-11-10 unless the example says otherwise.
/// </summary>
public static class RuleExamples
{
    private static readonly DateTimeOffset Start = Scenario.Start;

    private static CampaignRule Campaign(string id, int rateBps = 500, long fixedMinor = 0, long budgetMinor = 0, int maxMembers = 0,
        long perMemberCapMinor = 0, int[]? mccs = null, string[]? merchants = null, long minAmountMinor = 0, string minTier = "",
        bool requiresActivation = false, int stackingOrder = 0, string partnerId = "partner-1", DateTimeOffset? startsAt = null) => new()
    {
        CampaignId = id, PartnerId = partnerId, RateBps = rateBps, FixedBonusMinor = fixedMinor, BudgetMinor = budgetMinor,
        MaxMembers = maxMembers, PerMemberCapMinor = perMemberCapMinor, Mccs = mccs ?? [], MerchantIds = merchants ?? [],
        MinAmountMinor = minAmountMinor, MinTier = minTier, RequiresActivation = requiresActivation, StackingOrder = stackingOrder,
        StartsAt = startsAt ?? Start.AddDays(-1), EndsAt = Start.AddDays(60),
    };

    public static readonly RuleExample[] All =
    [
        // Units and lifecycle
        new("R-UNIT-1", s => s.Authorize("a1", 100_000).Expect(1_000, "base 1000")),
        new("R-UNIT-2", s => s.AuthorizeIn("a1", 100_000, "USD").ExpectRejected(RejectionKind.InvalidArgument).ExpectBalance(0, 0)
            .Program(p => p with { Currencies = ["RUB", "USD"] }).AuthorizeIn("a2", 100_000, "USD").Expect(1_000, "base 1000")),
        new("R-LIFE-1", s => s.Authorize("a1", 100_000).Expect(1_000, "base 1000").ExpectBalance(0, 1_000)),
        new("R-LIFE-2", s => s.Authorize("a1", 100_000).Capture("c1", "a1", 100_000).Expect(1_000, "base 1000").ExpectBalance(1_000, 0)),
        new("R-LIFE-3", s => s.Authorize("a1", 100_000).Capture("c1", "a1", 60_000).Expect(600, "base 600").ExpectBalance(600, 0)),
        new("R-LIFE-4", s => s.Authorize("a1", 100_000).Capture("c0", "a1", 120_001).ExpectRejected(RejectionKind.FailedPrecondition)
            .Capture("c1", "a1", 120_000).Expect(1_200, "base 1200").ExpectBalance(1_200, 0)),
        new("R-LIFE-5", s => s.ForcePost("f1", 50_000).Expect(500, "base 500").ExpectBalance(500, 0)),
        new("R-LIFE-6", s => s.Authorize("a1", 100_000).Reverse("v1", "a1").Expect(-1_000, "base -1000").ExpectBalance(0, 0)),
        new("R-LIFE-7", s => s.Authorize("a1", 100_000).Reverse("v1", "a1", 40_000).Expect(-400, "base -400").ExpectBalance(0, 600)),
        new("R-LIFE-8", s => s.Purchase("a1", 100_000).Refund("r1", "a1-c", 25_000).Expect(-250, "base -250").ExpectBalance(750)),
        new("R-LIFE-9", s => s.Purchase("a1", 100_000).Refund("r1", "a1-c", 50_000).Refund("r2", "a1", 50_000).Expect(-500, "base -500")
            .Refund("r3", "a1-c", 1).ExpectRejected(RejectionKind.FailedPrecondition).ExpectBalance(0)),
        new("R-LIFE-10", s => s.Purchase("a1", 100_000).Redeem("d1", 1_000).Refund("r1", "a1-c", 100_000).Expect(-1_000, "base -1000")
            .ExpectBalance(-1_000).Purchase("a2", 200_000).ExpectBalance(1_000)),
        new("R-LIFE-11", s => s.Authorize("a1", 100_000).Advance(TimeSpan.FromDays(31)).Touch().ExpectBalance(0, 0)
            .Capture("c1", "a1", 100_000).Expect(1_000, "base 1000").ExpectBalance(1_000, 0)),

        // Idempotency and order faults
        new("R-IDEM-1", s => s.Authorize("a1", 100_000).Authorize("a1", 100_000).ExpectDuplicate().ExpectBalance(0, 1_000)),
        new("R-IDEM-2", s => s.Authorize("a1", 100_000).Authorize("a1", 100_001).ExpectRejected(RejectionKind.AlreadyExists).ExpectBalance(0, 1_000)),
        new("R-IDEM-3", s => s.Authorize("a1", 100_000).Reverse("v1", "a1").Capture("c1", "a1", 100_000).ExpectRejected(RejectionKind.FailedPrecondition)),
        new("R-IDEM-4", s => s.Purchase("a1", 100_000).Reverse("v1", "a1").ExpectRejected(RejectionKind.FailedPrecondition).ExpectBalance(1_000)),
        new("R-IDEM-5", s => s.Reverse("v1", "a1").Expect(0).Authorize("a1", 100_000).Expect(1_000, "base 1000").ExpectBalance(0, 0)),

        // Categories and exclusions
        new("R-CAT-1", s => s.Choose("supermarkets").Authorize("a1", 500_000, mcc: 6011).Expect(0)),
        new("R-CAT-2", s => s.Authorize("a1", 500_000, mcc: 4829).Expect(0)),
        new("R-CAT-3", s => s.Authorize("a1", 500_000, mcc: 9311).Expect(0)),
        new("R-CAT-4", s => s.Authorize("a1", 500_000, mcc: 7995).Expect(0)),
        new("R-CAT-5", s => s.Program(p => p with { ExcludedMccs = [5814] }).Authorize("a1", 100_000, mcc: 5814).Expect(0)),
        new("R-CAT-6", s => s.Authorize("a1", 100_000, mcc: 1).Expect(1_000, "base 1000")),

        // Rates
        new("R-RATE-1", s => s.Authorize("a1", 9_999).Expect(0).Authorize("a2", 10_000).Expect(100, "base 100")),
        new("R-RATE-2", s => s.Choose("supermarkets").Authorize("a1", 100_000).Expect(5_000, "base 1000, category:supermarkets 4000")),
        new("R-RATE-3", s => s.Choose("restaurants").Authorize("a1", 100_000, mcc: 5812).Expect(7_000, "base 1000, category:restaurants 6000")),
        new("R-RATE-4", s => s.Choose("fuel").Authorize("a1", 100_000).Expect(1_000, "base 1000")),

        // Caps
        new("R-CAP-1", s => s.Choose("supermarkets").Purchase("a1", 7_400_000).Authorize("a2", 200_000)
            .Expect(6_000, "base 2000, category:supermarkets 4000")),
        new("R-CAP-2", s => s.Choose("supermarkets").Choose(new MonthKey(202612), "supermarkets").Purchase("a1", 7_500_000)
            .Advance(TimeSpan.FromDays(21)).Authorize("a2", 100_000).Expect(7_000, "base 1500, category:supermarkets 5500")),
        new("R-CAP-3", s => s.Choose("supermarkets").Purchase("a1", 7_500_000).Refund("r1", "a1-c", 2_500_000)
            .Expect(-125_000, "base -25000, category:supermarkets -100000")
            .Authorize("a2", 100_000).Expect(5_000, "base 1000, category:supermarkets 4000")),

        new("R-CAP-4", s => s.Choose("supermarkets").Purchase("a1", 14_000_000)
            .Expect(910_000, "base 210000, category:supermarkets 700000"), Member: () => new Scenario(premium: true)),

        // Chosen categories
        new("R-CHOOSE-1", s => s.TryChoose(new MonthKey(202612), "fuel").Expect(0)
            .Advance(TimeSpan.FromDays(16)).TryChoose(new MonthKey(202612), "taxi").ExpectRejected(RejectionKind.FailedPrecondition)),
        new("R-CHOOSE-2", s => s.Choose("supermarkets").Authorize("a1", 100_000).TryChoose(new MonthKey(202611), "fuel")
            .ExpectRejected(RejectionKind.FailedPrecondition).TryChoose(new MonthKey(202610), "fuel").ExpectRejected(RejectionKind.FailedPrecondition)),

        // Rounding
        new("R-ROUND-1", s => s.Program(p => p with { Rounding = RoundingMode.FloorWholeBonus }).Authorize("a1", 123_456).Expect(1_200, "base 1234, rounding -34")),

        // Tiers
        new("R-TIER-1", s => s.Purchase("a1", 3_000_000).Advance(TimeSpan.FromDays(21)).ExpectTier("silver").Authorize("a2", 100_000).Expect(1_500, "base 1500")),
        new("R-TIER-2", s => s.Purchase("a1", 3_000_000).Advance(TimeSpan.FromDays(21)).Authorize("a2", 100_000)
            .Refund("r1", "a1-c", 3_000_000).Authorize("a3", 100_000).Expect(1_500, "base 1500").ExpectTier("silver")),
        new("R-TIER-3", s => s.Authorize("a1", 100_000).Expect(1_500, "base 1500").ExpectTier("silver"), Member: () => new Scenario(premium: true)),

        // Campaigns
        new("R-CAMP-1", s => s.Campaign(Campaign("fuel5", mccs: [5541])).Authorize("a1", 100_000, mcc: 5541).Expect(6_000, "base 1000, campaign:fuel5 5000")),
        new("R-CAMP-2", s => s.Campaign(Campaign("soon", startsAt: Start.AddDays(1))).Authorize("a1", 100_000).Expect(1_000, "base 1000")),
        new("R-CAMP-3", s => s.Campaign(Campaign("ozon", rateBps: 100, fixedMinor: 10_000, merchants: ["ozon"], minAmountMinor: 200_000))
            .Authorize("a1", 150_000, merchant: "ozon").Expect(1_500, "base 1500")
            .Authorize("a2", 250_000, merchant: "ozon").Expect(15_000, "base 2500, campaign:ozon 12500")
            .Authorize("a3", 250_000, merchant: "wb").Expect(2_500, "base 2500")),
        new("R-CAMP-4", s => s.Campaign(Campaign("x", budgetMinor: 3_000)).Authorize("a1", 100_000).Expect(4_000, "base 1000, campaign:x 3000")
            .Authorize("a2", 100_000).Expect(1_000, "base 1000").ExpectBudgetLeft("x", 0)),
        new("R-CAMP-5", s => s.Campaign(Campaign("first2", maxMembers: 2)).Taken("first2", slots: 2).Authorize("a1", 100_000).Expect(1_000, "base 1000")),
        new("R-CAMP-6", s => s.Campaign(Campaign("x", perMemberCapMinor: 7_000)).Purchase("a1", 100_000)
            .Authorize("a2", 100_000).Expect(3_000, "base 1000, campaign:x 2000")),
        new("R-CAMP-7", s => s.Campaign(Campaign("silver-only", minTier: "silver")).Authorize("a1", 100_000).Expect(1_000, "base 1000")),
        new("R-CAMP-8", s => s.Campaign(Campaign("club", requiresActivation: true)).Authorize("a1", 100_000).Expect(1_000, "base 1000")
            .Activate("club").Authorize("a2", 100_000).Expect(6_000, "base 1000, campaign:club 5000")),
        new("R-CAMP-9", s => s.Campaign(Campaign("x", budgetMinor: 10_000)).Authorize("a1", 100_000).ExpectBudgetLeft("x", 5_000)
            .Reverse("v1", "a1").Expect(-6_000, "base -1000, campaign:x -5000").ExpectBudgetLeft("x", 10_000)),
        new("R-CAMP-10", s => s.Campaign(Campaign("a", rateBps: 100, stackingOrder: 2)).Campaign(Campaign("b", rateBps: 200, stackingOrder: 1))
            .Authorize("a1", 100_000).Expect(4_000, "base 1000, campaign:b 2000, campaign:a 1000")),
        new("R-CAMP-11", s => s.Campaign(Campaign("x", budgetMinor: 100_000)).Authorize("a1", 100_000).Capture("c1", "a1", 50_000)
            .Expect(3_000, "base 500, campaign:x 2500").ExpectBudgetLeft("x", 97_500)),
        new("R-CAMP-13", s => s.Campaign(Campaign("pharma", rateBps: 1_000) with { Categories = ["pharmacy"] })
            .Authorize("a1", 100_000, mcc: 5912).Expect(11_000, "base 1000, campaign:pharma 10000")
            .Authorize("a2", 100_000, mcc: 5411).Expect(1_000, "base 1000")),
        new("R-CAMP-12", s => s.Campaign(Campaign("x", budgetMinor: 100_000)).Purchase("a1", 100_000).Refund("r1", "a1-c", 40_000)
            .Expect(-2_400, "base -400, campaign:x -2000").ExpectBudgetLeft("x", 97_000)),
        new("R-CAMP-14", s => s.Campaign(Campaign("a", rateBps: 10_000, stackingOrder: 1)).Campaign(Campaign("b", rateBps: 10_000, stackingOrder: 2))
            .Authorize("a1", 100_000).Expect(100_000, "base 1000, campaign:a 99000")),
        new("R-CAMP-15", s => s.Program(p => p with { MaxAccrualRateBps = 1_000 }).Choose("supermarkets").Campaign(Campaign("x", rateBps: 1_000))
            .Authorize("a1", 100_000).Expect(10_000, "base 1000, category:supermarkets 4000, campaign:x 5000")),

        // Expiry
        new("R-EXP-1", s => s.Purchase("a1", 100_000).Advance(TimeSpan.FromDays(200)).Purchase("a2", 100_000)
            .Advance(TimeSpan.FromDays(166)).Touch().ExpectBalance(1_000)),
        new("R-EXP-2", s => s.Purchase("a1", 100_000).Advance(TimeSpan.FromDays(200)).Purchase("a2", 100_000).Redeem("d1", 1_500)
            .Advance(TimeSpan.FromDays(166)).Touch().ExpectBalance(500)),

        // Redemption
        new("R-REDEEM-1", s => s.Purchase("a1", 100_000).Redeem("d1", 600).Expect(-600, "redeem -600").ExpectBalance(400)),
        new("R-REDEEM-2", s => s.Purchase("a1", 100_000).Redeem("d1", 1_001).ExpectRejected(RejectionKind.FailedPrecondition).ExpectBalance(1_000)),
        new("R-REDEEM-3", s => s.Purchase("a1", 100_000).Redeem("d1", 600).Refund("r1", "d1", 600).Expect(600, "redeem 600").ExpectBalance(1_000)),

        // Referral
        new("R-REF-1", s => s.Purchase("a1", 100_000).Expect(1_000, "base 1000").ExpectBalance(51_000)
            .Purchase("a2", 100_000).ExpectBalance(52_000), Member: () => new Scenario(referredBy: "m0")),
    ];
}

/// <summary>
/// One worked example: its id in docs/RULES.md, what it does and expects, and the member it starts from when that is not
/// the default scenario's (premium, referred).
/// </summary>
public sealed record RuleExample(string Id, Action<Scenario> Run, Func<Scenario>? Member = null)
{
    /// <summary>Runs the example on its own member; returns how many expectations it checked.</summary>
    public int Check()
    {
        var scenario = Member?.Invoke() ?? new Scenario();
        Run(scenario);
        return scenario.Checks;
    }
}
