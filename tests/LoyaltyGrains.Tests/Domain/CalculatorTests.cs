using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Tests.Domain;

public sealed class CalculatorTests
{
    private static readonly ProgramConfig Program = ProgramConfig.Default;
    private static readonly MccCatalogue Catalogue = MccCatalogue.Default;
    private static readonly TierRule Standard = Program.Tiers[0];
    private static readonly DateTimeOffset Noon = new(2026, 11, 20, 12, 0, 0, TimeSpan.Zero);

    private static Accrual Price(long amountMinor, int mcc, string[]? chosen = null, long capUsed = 0, ProgramConfig? program = null) =>
        AccrualCalculator.Compute(program ?? Program, Catalogue, new PurchaseFacts(amountMinor, mcc, "m1", Noon),
            new MemberFacts(Standard, false, chosen ?? [], capUsed));

    [Fact]
    public void Base_rate_on_an_eligible_purchase()
    {
        var accrual = Price(100_000, 5411);
        Assert.Equal(1_000, accrual.TotalMinor);
        Assert.Equal([new AccrualLine("base", 1_000, 100)], accrual.Lines);
        Assert.Equal("supermarkets", accrual.Category);
    }

    [Theory]
    [InlineData(6010)] [InlineData(6011)] [InlineData(6050)] [InlineData(6051)]
    [InlineData(4829)] [InlineData(6012)] [InlineData(6538)] [InlineData(6540)]
    [InlineData(9211)] [InlineData(9222)] [InlineData(9311)] [InlineData(9399)] [InlineData(7995)]
    public void Excluded_mccs_earn_nothing(int mcc)
    {
        var accrual = Price(1_000_000, mcc, chosen: ["supermarkets"]);
        Assert.True(accrual.Excluded, $"MCC {mcc} should be excluded, category {accrual.Category}");
        Assert.Equal(0, accrual.TotalMinor);
        Assert.Empty(accrual.Lines);
    }

    [Fact]
    public void Program_excluded_mcc_earns_nothing()
    {
        var accrual = Price(100_000, 5411, program: Program with { ExcludedMccs = [5411] });
        Assert.True(accrual.Excluded);
        Assert.Equal(0, accrual.TotalMinor);
    }

    [Fact]
    public void Below_minimum_purchase_earns_nothing()
    {
        Assert.Equal(0, Price(9_999, 5411).TotalMinor);
        Assert.Equal(100, Price(10_000, 5411).TotalMinor);
    }

    [Fact]
    public void Chosen_category_earns_its_rate_with_the_excess_over_base_as_a_category_line()
    {
        var accrual = Price(100_000, 5411, chosen: ["supermarkets"]);
        Assert.Equal(5_000, accrual.TotalMinor);
        Assert.Equal([new AccrualLine("base", 1_000, 100), new AccrualLine("category:supermarkets", 4_000, 400)], accrual.Lines);
        Assert.Equal(4_000, accrual.CategoryCapConsumedMinor);
    }

    [Fact]
    public void Category_override_rate_applies()
    {
        var accrual = Price(100_000, 5812, chosen: ["restaurants"]);
        Assert.Equal(7_000, accrual.TotalMinor);
    }

    [Fact]
    public void Monthly_category_cap_limits_the_category_line_only()
    {
        var accrual = Price(100_000, 5411, chosen: ["supermarkets"], capUsed: 300_000 - 1_500);
        Assert.Equal([new AccrualLine("base", 1_000, 100), new AccrualLine("category:supermarkets", 1_500, 400)], accrual.Lines);
        Assert.Equal(0, Price(100_000, 5411, chosen: ["supermarkets"], capUsed: 300_000).CategoryCapConsumedMinor);
    }

    [Fact]
    public void Floor_rounding_cuts_to_whole_bonuses_in_its_own_line()
    {
        var accrual = Price(123_456, 5411, program: Program with { Rounding = RoundingMode.FloorWholeBonus });
        Assert.Equal(1_200, accrual.TotalMinor);
        Assert.Equal([new AccrualLine("base", 1_234, 100), new AccrualLine("rounding", -34)], accrual.Lines);
    }

    [Fact]
    public void Catalogue_maps_every_mcc_and_knows_its_categories()
    {
        for (var mcc = 0; mcc <= 9999; mcc++) Assert.False(string.IsNullOrEmpty(Catalogue.CategoryOf(mcc)));
        Assert.Equal("fuel", Catalogue.CategoryOf(5541));
        Assert.Equal("travel", Catalogue.CategoryOf(3005));
        Assert.Equal("taxi", Catalogue.CategoryOf(4121));
        Assert.Equal(MccCatalogue.OtherCategory, Catalogue.CategoryOf(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Catalogue.CategoryOf(10_000));
    }

    [Fact]
    public void Default_program_is_valid_and_bad_programs_name_their_fields()
    {
        Assert.Empty(Program.Validate(Catalogue));
        var bad = Program with { Currencies = ["rub"], AuthorizationHoldDays = 0, OfferedCategories = ["nonsense"] };
        var errors = bad.Validate(Catalogue);
        Assert.Contains(errors, e => e.StartsWith("currencies:", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("authorization_hold_days:", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("offered_categories:", StringComparison.Ordinal));
    }

    [Fact]
    public void Program_history_prices_by_the_version_in_force()
    {
        var v1 = Program;
        var v2 = Program with { Version = 2, EffectiveFrom = Noon };
        var history = new ProgramHistory([v2, v1]);
        Assert.Same(v1, history.At(Noon.AddTicks(-1)));
        Assert.Same(v2, history.At(Noon));
        Assert.Same(v2, history.Current);
    }

    [Fact]
    public void Program_round_trips_through_json()
    {
        var json = DomainJson.Serialize(Program);
        var back = DomainJson.Deserialize<ProgramConfig>(json);
        Assert.Equal(json, DomainJson.Serialize(back));
        Assert.Empty(back.Validate(Catalogue));
    }
}
