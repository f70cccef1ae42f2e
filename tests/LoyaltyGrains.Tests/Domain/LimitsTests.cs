using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Tests.Domain;

/// <summary>
/// The documented maxima in the domain: programme and campaign validation at every limit, the maximum accrual rate
/// with stacked campaigns (planning and pricing), checked money arithmetic, and refusals that quote values briefly.
/// </summary>
public sealed class LimitsTests
{
    private static readonly MccCatalogue Catalogue = MccCatalogue.Default;
    private static readonly ProgramConfig Program = ProgramConfig.Default;
    private static readonly DateTimeOffset Noon = new(2026, 11, 20, 12, 0, 0, TimeSpan.Zero);
    private static readonly MemberFacts Standard = new(Program.Tiers[0], false, [], 0);

    private static CampaignRule Campaign(string id = "c", int rateBps = 100, long fixedBonus = 0, int order = 0) => new()
    {
        CampaignId = id, RateBps = rateBps, FixedBonusMinor = fixedBonus, StackingOrder = order, StartsAt = Noon.AddDays(-1), EndsAt = Noon.AddDays(30),
    };

    private static void Refused(IReadOnlyList<string> errors, string field)
    {
        Assert.Contains(errors, e => e.StartsWith(field + ":", StringComparison.Ordinal) || e.StartsWith(field + "[", StringComparison.Ordinal));
        Assert.All(errors, e => Assert.True(e.Length <= 300, $"error of {e.Length} characters"));
    }

    // ------------------------------------------------------------------ campaign validation

    [Fact]
    public void A_valid_campaign_at_every_maximum_passes()
    {
        var campaign = Campaign(rateBps: Limits.RateBpsMax, fixedBonus: Limits.BonusMinorMax) with
        {
            Name = new string('n', Limits.NameLengthMax), PartnerId = new string('p', Limits.IdLengthMax), MinAmountMinor = Limits.PurchaseAmountMinorMax,
            BudgetMinor = Limits.BudgetMinorMax, MaxMembers = Limits.CampaignMembersCountMax, PerMemberCapMinor = Limits.BonusMinorMax,
            StackingOrder = -Limits.StackingOrderMax, Mccs = [.. Enumerable.Range(0, Limits.MccsCountMax)],
            MerchantIds = [.. Enumerable.Range(0, Limits.MerchantIdsCountMax).Select(i => $"m{i}")], Categories = [.. Catalogue.Categories],
            StartsAt = Limits.TimeMin, EndsAt = Limits.TimeMax, MinTier = "gold",
        };
        Assert.Empty(campaign.Validate(Catalogue));
    }

    [Theory]
    [InlineData(4_611_686_018_427_387_904L)]
    [InlineData(long.MaxValue)]
    [InlineData(Limits.BonusMinorMax + 1)]
    [InlineData(-1L)]
    [InlineData(long.MinValue)]
    public void A_fixed_bonus_outside_0_to_the_maximum_is_refused(long fixedBonus) =>
        Refused(Campaign(fixedBonus: fixedBonus).Validate(Catalogue), "fixed_bonus_minor");

    [Fact]
    public void Every_campaign_amount_rate_and_count_past_its_maximum_is_refused_naming_its_field()
    {
        Refused(Campaign(rateBps: Limits.RateBpsMax + 1).Validate(Catalogue), "rate_bps");
        Refused(Campaign(rateBps: -1).Validate(Catalogue), "rate_bps");
        Refused((Campaign() with { MinAmountMinor = Limits.PurchaseAmountMinorMax + 1 }).Validate(Catalogue), "min_amount_minor");
        Refused((Campaign() with { BudgetMinor = Limits.BudgetMinorMax + 1 }).Validate(Catalogue), "budget_minor");
        Refused((Campaign() with { BudgetMinor = -1 }).Validate(Catalogue), "budget_minor");
        Refused((Campaign() with { PerMemberCapMinor = Limits.BonusMinorMax + 1 }).Validate(Catalogue), "per_member_cap_minor");
        Refused((Campaign() with { MaxMembers = Limits.CampaignMembersCountMax + 1 }).Validate(Catalogue), "max_members");
        Refused((Campaign() with { MaxMembers = int.MinValue }).Validate(Catalogue), "max_members");
        Refused((Campaign() with { StackingOrder = int.MaxValue }).Validate(Catalogue), "stacking_order");
        Refused((Campaign() with { StackingOrder = int.MinValue }).Validate(Catalogue), "stacking_order");
    }

    [Fact]
    public void Campaign_strings_lists_and_windows_are_bounded_and_free_of_duplicates()
    {
        Refused((Campaign() with { Name = new string('n', 900_000) }).Validate(Catalogue), "name");
        Refused((Campaign() with { Name = "tab\there" }).Validate(Catalogue), "name");
        Refused((Campaign() with { CampaignId = new string('c', 65) }).Validate(Catalogue), "campaign_id");
        Refused((Campaign() with { PartnerId = "no spaces" }).Validate(Catalogue), "partner_id");
        Refused((Campaign() with { MinTier = new string('t', 100_000) }).Validate(Catalogue), "min_tier");
        Refused((Campaign() with { Mccs = [.. Enumerable.Repeat(5411, 200_000)] }).Validate(Catalogue), "mccs");
        Refused((Campaign() with { Mccs = [5411, 5411] }).Validate(Catalogue), "mccs");
        Refused((Campaign() with { Mccs = [10_000] }).Validate(Catalogue), "mccs");
        Refused((Campaign() with { Categories = ["fuel", "fuel"] }).Validate(Catalogue), "categories");
        Refused((Campaign() with { Categories = [new string('c', 100_000)] }).Validate(Catalogue), "categories");
        Refused((Campaign() with { MerchantIds = ["shop", "shop"] }).Validate(Catalogue), "merchant_ids");
        Refused((Campaign() with { MerchantIds = ["bad merchant"] }).Validate(Catalogue), "merchant_ids");
        Refused((Campaign() with { MerchantIds = [.. Enumerable.Range(0, Limits.MerchantIdsCountMax + 1).Select(i => $"m{i}")] }).Validate(Catalogue), "merchant_ids");
        Refused((Campaign() with { StartsAt = DateTimeOffset.MinValue }).Validate(Catalogue), "starts_at");
        Refused((Campaign() with { EndsAt = new DateTimeOffset(9999, 12, 31, 0, 0, 0, TimeSpan.Zero) }).Validate(Catalogue), "ends_at");
        Refused((Campaign() with { EndsAt = Noon.AddDays(-1) }).Validate(Catalogue), "ends_at");
    }

    // ------------------------------------------------------------------ programme validation

    [Fact]
    public void The_default_programme_and_one_at_every_maximum_are_valid()
    {
        Assert.Empty(Program.Validate(Catalogue));
        var tiers = Enumerable.Range(0, Limits.TiersCountMax).Select(i => new TierRule($"t{i}", i * (Limits.BudgetMinorMax / Limits.TiersCountMax), 0,
            Limits.RateBpsMax, Limits.ChosenCategoriesCountMax, Limits.BonusMinorMax, Limits.PurchaseAmountMinorMax, 0, Limits.BonusMinorMax)).ToArray();
        var widest = Program with
        {
            Tiers = tiers, OfferedCategories = [.. Catalogue.Categories], ExcludedMccs = [.. Enumerable.Range(0, Limits.MccsCountMax)],
            Currencies = [.. Enumerable.Range(0, Limits.CurrenciesCountMax).Select(i => "RU" + (char)('A' + i))],
            AuthorizationHoldDays = Limits.AuthorizationHoldDaysMax, CaptureMarginBps = Limits.RateBpsMax, ExpiryMonths = Limits.ExpiryMonthsMax,
            ReferralBonusMinor = Limits.BonusMinorMax, UtcOffsetMinutes = Limits.UtcOffsetMinutesMax, EffectiveFrom = Limits.TimeMax.AddTicks(-1),
            MaxAccrualRateBps = Limits.RateBpsMax, PremiumMinimumTierId = "t15",
        };
        Assert.Empty(widest.Validate(Catalogue));
    }

    [Fact]
    public void Programme_money_rates_and_settings_past_their_maxima_are_refused()
    {
        Refused((Program with { ReferralBonusMinor = 9_000_000_000_000_000_000 }).Validate(Catalogue), "referral_bonus_minor");
        Refused((Program with { ReferralBonusMinor = Limits.BonusMinorMax + 1 }).Validate(Catalogue), "referral_bonus_minor");
        Refused((Program with { ReferralBonusMinor = -1 }).Validate(Catalogue), "referral_bonus_minor");
        Refused((Program with { MaxAccrualRateBps = 0 }).Validate(Catalogue), "max_accrual_rate_bps");
        Refused((Program with { MaxAccrualRateBps = Limits.RateBpsMax + 1 }).Validate(Catalogue), "max_accrual_rate_bps");
        // The bank's own rates must fit under the maximum, or a plain purchase would already break it.
        Refused((Program with { MaxAccrualRateBps = 600 }).Validate(Catalogue), "tiers[1].category_rate_bps");
        Refused((Program with { MaxAccrualRateBps = 600 }).Validate(Catalogue), "category_rate_overrides_bps[restaurants]");
        var tier = Program.Tiers[0];
        Refused((Program with { Tiers = [tier with { MonthlyCategoryCapMinor = Limits.BonusMinorMax + 1 }], PremiumMinimumTierId = "" }).Validate(Catalogue), "tiers[0].monthly_category_cap_minor");
        Refused((Program with { Tiers = [tier with { PremiumMonthlyCategoryCapMinor = long.MaxValue }], PremiumMinimumTierId = "" }).Validate(Catalogue), "tiers[0].premium_monthly_category_cap_minor");
        Refused((Program with { Tiers = [tier with { MinPurchaseMinor = long.MaxValue }], PremiumMinimumTierId = "" }).Validate(Catalogue), "tiers[0].min_purchase_minor");
        Refused((Program with { Tiers = [tier, Program.Tiers[1] with { MinMonthlySpendMinor = Limits.BudgetMinorMax + 1 }], PremiumMinimumTierId = "" }).Validate(Catalogue), "tiers[1].min_monthly_spend_minor");
        Refused((Program with { Tiers = [tier with { TierId = new string('x', 100_000) }], PremiumMinimumTierId = "" }).Validate(Catalogue), "tiers[0].tier_id");
        Refused((Program with { Tiers = [.. Enumerable.Repeat(tier, Limits.TiersCountMax + 1)] }).Validate(Catalogue), "tiers");
        // Refused, not an OverflowException from adding the two.
        Refused((Program with { Tiers = [tier with { CategoriesToChoose = int.MaxValue, PremiumExtraCategories = 1 }], PremiumMinimumTierId = "" }).Validate(Catalogue), "tiers[0].categories_to_choose");
        Refused((Program with { Tiers = [tier with { CategoriesToChoose = 1, PremiumExtraCategories = int.MaxValue }], PremiumMinimumTierId = "" }).Validate(Catalogue), "tiers[0].premium_extra_categories");
        Refused((Program with { CategoryRateOverridesBps = new Dictionary<string, int> { ["fuel"] = Limits.RateBpsMax + 1 } }).Validate(Catalogue), "category_rate_overrides_bps[fuel]");
    }

    [Fact]
    public void A_programme_that_would_freeze_is_refused()
    {
        Refused((Program with { EffectiveFrom = new DateTimeOffset(9999, 12, 31, 0, 0, 0, TimeSpan.Zero) }).Validate(Catalogue), "effective_from");
        Refused((Program with { EffectiveFrom = DateTimeOffset.MinValue }).Validate(Catalogue), "effective_from");
        Refused((Program with { Rounding = 0 }).Validate(Catalogue), "rounding");
        Refused((Program with { Rounding = (RoundingMode)99 }).Validate(Catalogue), "rounding");
        Refused((Program with { ExcludedMccs = [.. Enumerable.Range(0, 200_000).Select(i => i % 10_000)] }).Validate(Catalogue), "excluded_mccs");
        Refused((Program with { ExcludedMccs = [5814, 5814] }).Validate(Catalogue), "excluded_mccs");
        Refused((Program with { ExcludedMccs = [-1] }).Validate(Catalogue), "excluded_mccs");
        Refused((Program with { OfferedCategories = ["fuel", "fuel"] }).Validate(Catalogue), "offered_categories");
        Refused((Program with { OfferedCategories = [.. Enumerable.Repeat("fuel", Limits.CategoriesCountMax + 1)] }).Validate(Catalogue), "offered_categories");
        Refused((Program with { Currencies = ["RUB", "RUB"] }).Validate(Catalogue), "currencies");
        Refused((Program with { Currencies = [new string('Y', 500_000)] }).Validate(Catalogue), "currencies");
        Refused((Program with { Currencies = [.. Enumerable.Range(0, Limits.CurrenciesCountMax + 1).Select(i => "RU" + (char)('A' + i))] }).Validate(Catalogue), "currencies");
        Refused((Program with { PremiumMinimumTierId = new string('p', 100_000) }).Validate(Catalogue), "premium_minimum_tier_id");
    }

    // ------------------------------------------------------------------ maximum accrual rate

    [Fact]
    public void Five_stacked_campaigns_at_100_percent_are_trimmed_at_planning_to_what_base_leaves()
    {
        var campaigns = Enumerable.Range(0, 5).Select(i => Campaign($"c{i}", rateBps: 10_000, order: 5 - i)).ToArray();
        var purchase = new PurchaseFacts(100_000, 5411, "shop", Noon);
        var claims = AccrualCalculator.PlanCampaigns(Program, Catalogue, purchase, Standard, campaigns, MemberCampaignFacts.None);
        // Stacking order first: c4 (order 1) takes 100% minus the 1% base; nothing is left for the others.
        var claim = Assert.Single(claims);
        Assert.Equal(("c4", 99_000L), (claim.Campaign.CampaignId, claim.DesiredMinor));
        var accrual = AccrualCalculator.Compute(Program, Catalogue, purchase, Standard, [.. claims.Select(c => new CampaignGrant(c.Campaign, c.DesiredMinor))]);
        Assert.Equal(100_000, accrual.TotalMinor);
    }

    [Fact]
    public void A_lower_maximum_rate_trims_campaigns_in_stacking_order_after_category_cashback()
    {
        var program = Program with { MaxAccrualRateBps = 1_000 };
        var member = Standard with { ChosenCategories = ["supermarkets"] };
        CampaignRule[] campaigns = [Campaign("late", rateBps: 300, order: 2), Campaign("early", rateBps: 300, order: 1), Campaign("fixed", fixedBonus: 50_000, order: 3)];
        var purchase = new PurchaseFacts(100_000, 5411, "shop", Noon);
        var claims = AccrualCalculator.PlanCampaigns(program, Catalogue, purchase, member, campaigns, MemberCampaignFacts.None);
        // 10% of 100 000 = 10 000; base 1 000 + category 4 000 leave 5 000: early 3 000, late 2 000, fixed nothing.
        Assert.Equal([("early", 3_000L), ("late", 2_000L)], claims.Select(c => (c.Campaign.CampaignId, c.DesiredMinor)));
        var accrual = AccrualCalculator.Compute(program, Catalogue, purchase, member, [.. claims.Select(c => new CampaignGrant(c.Campaign, c.DesiredMinor))]);
        Assert.Equal(10_000, accrual.TotalMinor);
    }

    [Fact]
    public void Compute_clamps_whatever_grants_it_is_handed()
    {
        var purchase = new PurchaseFacts(100_000, 5411, "shop", Noon);
        CampaignGrant[] grants = [new(Campaign("a"), Limits.BonusMinorMax), new(Campaign("b"), Limits.BonusMinorMax)];
        var accrual = AccrualCalculator.Compute(Program, Catalogue, purchase, Standard, grants);
        Assert.Equal(100_000, accrual.TotalMinor);
        Assert.Equal([("base", 1_000L), ("campaign:a", 99_000L)], accrual.Lines.Select(l => (l.Rule, l.AmountMinor)));
        var floor = AccrualCalculator.Compute(Program with { MaxAccrualRateBps = 100 }, Catalogue, purchase, Standard, grants);
        Assert.Equal([("base", 1_000L)], floor.Lines.Select(l => (l.Rule, l.AmountMinor)));
    }

    [Fact]
    public void The_maximum_rate_holds_for_random_stacks_and_purchases()
    {
        var random = new Random(20261120);
        for (var i = 0; i < 2_000; i++)
        {
            var program = Program with { MaxAccrualRateBps = random.Next(1_000, Limits.RateBpsMax + 1), Rounding = random.Next(2) == 0 ? RoundingMode.ExactMinor : RoundingMode.FloorWholeBonus };
            var campaigns = Enumerable.Range(0, random.Next(0, 8))
                .Select(c => Campaign($"c{c}", rateBps: random.Next(0, Limits.RateBpsMax + 1), fixedBonus: random.Next(2) == 0 ? 0 : random.NextInt64(1, Limits.BonusMinorMax + 1), order: random.Next(-3, 3)))
                .ToArray();
            var amount = random.Next(3) == 0 ? Limits.PurchaseAmountMinorMax : random.NextInt64(1, 10_000_000);
            var purchase = new PurchaseFacts(amount, random.Next(2) == 0 ? 5411 : 5812, "shop", Noon);
            var member = Standard with { ChosenCategories = random.Next(2) == 0 ? ["supermarkets"] : [] };
            var claims = AccrualCalculator.PlanCampaigns(program, Catalogue, purchase, member, campaigns, MemberCampaignFacts.None);
            var accrual = AccrualCalculator.Compute(program, Catalogue, purchase, member, [.. claims.Select(c => new CampaignGrant(c.Campaign, c.DesiredMinor))]);
            Assert.InRange(accrual.TotalMinor, 0, Money.ApplyBps(amount, program.MaxAccrualRateBps));
            Assert.Equal(accrual.TotalMinor, accrual.Lines.Sum(l => l.AmountMinor));
            // Planning reserves exactly what pricing pays: no lease holds budget that cannot be paid.
            Assert.Equal(claims.Sum(c => c.DesiredMinor), accrual.Lines.Where(l => l.Rule.StartsWith(CampaignRule.RulePrefix, StringComparison.Ordinal)).Sum(l => l.AmountMinor));
        }
    }

    // ------------------------------------------------------------------ checked arithmetic

    [Fact]
    public void Money_arithmetic_throws_instead_of_wrapping()
    {
        Assert.Equal(long.MaxValue, Money.ApplyBps(long.MaxValue, 10_000));
        Assert.Throws<OverflowException>(() => Money.ApplyBps(long.MaxValue, 20_000));
        Assert.Throws<OverflowException>(() => Money.Proportion(long.MaxValue, 2, 1));
        Assert.Throws<OverflowException>(() => Campaign(rateBps: 1, fixedBonus: long.MaxValue).Bonus(10_000));
        Assert.Throws<OverflowException>(() => AccrualCalculator.Sum([new AccrualLine("a", long.MaxValue), new AccrualLine("b", 1)]));
        Assert.Throws<OverflowException>(() => AccrualCalculator.Difference([new AccrualLine("a", long.MinValue)], [new AccrualLine("a", 1)]));
    }

    [Fact]
    public void The_largest_purchase_at_every_maximum_prices_without_overflow()
    {
        var program = Program with { Tiers = [Program.Tiers[0] with { BaseRateBps = Limits.RateBpsMax, CategoryRateBps = Limits.RateBpsMax }], PremiumMinimumTierId = "" };
        var member = new MemberFacts(program.Tiers[0], false, ["supermarkets"], 0);
        var purchase = new PurchaseFacts(Limits.PurchaseAmountMinorMax, 5411, "shop", Noon);
        CampaignRule[] campaigns = [.. Enumerable.Range(0, 10).Select(i => Campaign($"c{i}", rateBps: Limits.RateBpsMax, fixedBonus: Limits.BonusMinorMax))];
        var claims = AccrualCalculator.PlanCampaigns(program, Catalogue, purchase, member, campaigns, MemberCampaignFacts.None);
        Assert.Empty(claims);
        var accrual = AccrualCalculator.Compute(program, Catalogue, purchase, member);
        Assert.Equal(Limits.PurchaseAmountMinorMax, accrual.TotalMinor);
    }

    // ------------------------------------------------------------------ quoting refused values

    [Fact]
    public void A_quoted_value_is_at_most_100_characters_with_its_length()
    {
        Assert.Equal("'RUB'", Echo.Quote("RUB"));
        var quoted = Echo.Quote(new string('X', 500_000));
        Assert.StartsWith("'" + new string('X', Limits.EchoedValueLengthMax) + "'", quoted, StringComparison.Ordinal);
        Assert.EndsWith("(500000 characters)", quoted, StringComparison.Ordinal);
        Assert.True(quoted.Length < Limits.EchoedValueLengthMax + 40);
        Assert.Equal("'a\uFFFDb'", Echo.Quote("a\nb"));
        // A surrogate pair is never cut in half, and a lone surrogate is shown as U+FFFD.
        var emoji = new string('x', Limits.EchoedValueLengthMax - 1) + "\U0001F600" + "tail";
        Assert.DoesNotContain('\uD83D', Echo.Quote(emoji));
        Assert.Equal("'\uFFFD'", Echo.Quote("\uDC00"));
    }

    [Fact]
    public void Many_problems_join_into_one_bounded_message()
    {
        var errors = (Program with { ExcludedMccs = [.. Enumerable.Repeat(-1, 1_000)] }).Validate(Catalogue);
        var message = Echo.Join(errors);
        Assert.True(message.Length <= Limits.ErrorMessageLengthMax, $"{message.Length} characters");
        Assert.StartsWith("excluded_mccs: -1 is not an MCC", message, StringComparison.Ordinal);
        Assert.Contains("more problems", message, StringComparison.Ordinal);
        Assert.Equal("a; b", Echo.Join(["a", "b"]));
        Assert.Equal("", Echo.Join([]));
    }
}
