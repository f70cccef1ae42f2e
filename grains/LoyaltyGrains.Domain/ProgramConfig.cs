using System.Collections.Frozen;

namespace LoyaltyGrains.Domain;

public enum RoundingMode
{
    /// <summary>Exact minor units; every line truncated towards zero.</summary>
    ExactMinor = 1,

    /// <summary>T-Bank style: each purchase's accrual floored to whole bonuses (100 minor).</summary>
    FloorWholeBonus = 2,
}

/// <summary>A tier's rates and limits. Amounts in minor units, rates in basis points (100 bps = 1%).</summary>
public sealed record TierRule(
    string TierId,
    long MinMonthlySpendMinor,
    int BaseRateBps,
    int CategoryRateBps,
    int CategoriesToChoose,
    long MonthlyCategoryCapMinor,
    long MinPurchaseMinor,
    int PremiumExtraCategories,
    long PremiumMonthlyCategoryCapMinor)
{
    public int CategoriesToChooseFor(bool premium) => CategoriesToChoose + (premium ? PremiumExtraCategories : 0);

    public long CategoryCapFor(bool premium) =>
        premium && PremiumMonthlyCategoryCapMinor > 0 ? PremiumMonthlyCategoryCapMinor : MonthlyCategoryCapMinor;
}

/// <summary>
/// The loyalty program: tiers, categories, exclusions, rounding and lifecycle limits. Immutable; a change is a
/// new version. Validate() states every invariant the calculator relies on.
/// </summary>
public sealed record ProgramConfig
{
    public const int RateBpsMax = Limits.RateBpsMax;
    public const int TiersMax = Limits.TiersCountMax;
    public const int CategoriesToChooseMax = Limits.ChosenCategoriesCountMax;

    public required IReadOnlyList<TierRule> Tiers { get; init; }
    public required IReadOnlyList<string> OfferedCategories { get; init; }
    public IReadOnlyList<int> ExcludedMccs { get; init; } = [];
    public required IReadOnlyList<string> Currencies { get; init; }
    public RoundingMode Rounding { get; init; } = RoundingMode.ExactMinor;
    public int AuthorizationHoldDays { get; init; } = 30;
    public int CaptureMarginBps { get; init; } = 2_000;
    public int ExpiryMonths { get; init; } = 12;
    public long ReferralBonusMinor { get; init; }
    public long Version { get; init; } = 1;
    public DateTimeOffset EffectiveFrom { get; init; } = DateTimeOffset.UnixEpoch;
    public IReadOnlyDictionary<string, int> CategoryRateOverridesBps { get; init; } = FrozenDictionary<string, int>.Empty;

    /// <summary>Next month's categories can be chosen until this day of the current month (Spasibo: the 25th).</summary>
    public int ChooseNextMonthByDay { get; init; } = 25;

    /// <summary>Premium members are at least in this tier, whatever their spend (empty: no floor).</summary>
    public string PremiumMinimumTierId { get; init; } = "";

    /// <summary>
    /// Rule "maximum accrual": whatever stacks (base, category, campaigns), one purchase earns at most this rate of its
    /// amount; campaigns are trimmed in stacking order to what base and category leave. 10 000 = 100%.
    /// </summary>
    public int MaxAccrualRateBps { get; init; } = Limits.RateBpsMax;

    /// <summary>The program's calendar (months, caps, tiers) is kept in this fixed offset (rule "programme calendar").</summary>
    public int UtcOffsetMinutes { get; init; } = ProgramCalendar.DefaultUtcOffsetMinutes;

    public TierRule EntryTier => Tiers[0];

    public TierRule? FindTier(string tierId)
    {
        foreach (var tier in Tiers)
        {
            if (tier.TierId == tierId) return tier;
        }
        return null;
    }

    /// <summary>Position of a tier, lowest first; int.MaxValue for an unknown id (so it is never reached).</summary>
    public int TierIndex(string tierId)
    {
        for (var i = 0; i < Tiers.Count; i++)
        {
            if (Tiers[i].TierId == tierId) return i;
        }
        return int.MaxValue;
    }

    public TierRule TierOrEntry(string? tierId) => tierId is null ? EntryTier : FindTier(tierId) ?? EntryTier;

    public bool IsExcludedMcc(int mcc, MccCatalogue catalogue) =>
        MccCatalogue.IsExcludedCategory(catalogue.CategoryOf(mcc)) || ExcludedMccs.Contains(mcc);

    public bool AcceptsCurrency(string currency) => Currencies.Contains(currency);

    public MonthKey MonthOf(DateTimeOffset instant) => MonthKey.Of(instant, UtcOffsetMinutes);

    public int CategoryRateBps(TierRule tier, string category) =>
        CategoryRateOverridesBps.TryGetValue(category, out var rate) ? rate : tier.CategoryRateBps;

    /// <summary>Every reason this program is unusable, each naming its field; empty when valid. Time-relative checks
    /// (how far ahead effective_from may be) are the gateway's: the domain has no clock.</summary>
    public IReadOnlyList<string> Validate(MccCatalogue catalogue)
    {
        var errors = new List<string>();
        if (Tiers.Count == 0 || Tiers.Count > TiersMax) errors.Add($"tiers: between 1 and {TiersMax} required, got {Tiers.Count}");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        long previousSpend = -1;
        for (var i = 0; i < Tiers.Count && i < TiersMax; i++)
        {
            var tier = Tiers[i];
            var name = $"tiers[{i}]";
            if (!Limits.IsId(tier.TierId)) errors.Add($"{name}.tier_id: {Echo.Quote(tier.TierId)} is not an id (1-{Limits.IdLengthMax} of A-Z a-z 0-9 _ . -)");
            else if (!seen.Add(tier.TierId)) errors.Add($"{name}.tier_id: {Echo.Quote(tier.TierId)} is a duplicate");
            CheckMinor(errors, $"{name}.min_monthly_spend_minor", tier.MinMonthlySpendMinor, Limits.BudgetMinorMax);
            if (tier.MinMonthlySpendMinor <= previousSpend) errors.Add($"{name}.min_monthly_spend_minor: tiers must be in increasing order of spend");
            previousSpend = tier.MinMonthlySpendMinor;
            if (tier.BaseRateBps is < 0 or > RateBpsMax) errors.Add($"{name}.base_rate_bps: must be 0..{RateBpsMax}, got {tier.BaseRateBps}");
            if (tier.CategoryRateBps < tier.BaseRateBps || tier.CategoryRateBps > RateBpsMax) errors.Add($"{name}.category_rate_bps: must be base_rate_bps..{RateBpsMax}, got {tier.CategoryRateBps}");
            else if (tier.CategoryRateBps > MaxAccrualRateBps) errors.Add($"{name}.category_rate_bps: {tier.CategoryRateBps} exceeds max_accrual_rate_bps {MaxAccrualRateBps}");
            if (tier.CategoriesToChoose is < 0 or > CategoriesToChooseMax) errors.Add($"{name}.categories_to_choose: must be 0..{CategoriesToChooseMax}, got {tier.CategoriesToChoose}");
            // Added only once both are in range: the domain's arithmetic is checked, and two unbounded ints can overflow.
            if (tier.PremiumExtraCategories is < 0 or > CategoriesToChooseMax
                || (tier.CategoriesToChoose is >= 0 and <= CategoriesToChooseMax && tier.CategoriesToChoose + tier.PremiumExtraCategories > CategoriesToChooseMax))
            {
                errors.Add($"{name}.premium_extra_categories: must be >= 0 and keep the total <= {CategoriesToChooseMax}");
            }
            CheckMinor(errors, $"{name}.monthly_category_cap_minor", tier.MonthlyCategoryCapMinor, Limits.BonusMinorMax);
            CheckMinor(errors, $"{name}.premium_monthly_category_cap_minor", tier.PremiumMonthlyCategoryCapMinor, Limits.BonusMinorMax);
            CheckMinor(errors, $"{name}.min_purchase_minor", tier.MinPurchaseMinor, Limits.PurchaseAmountMinorMax);
        }
        if (Tiers.Count > 0 && Tiers[0].MinMonthlySpendMinor != 0) errors.Add("tiers[0].min_monthly_spend_minor: the entry tier must start at 0");
        CheckCategories(errors, "offered_categories", OfferedCategories, catalogue);
        if (CategoryRateOverridesBps.Count > Limits.CategoriesCountMax)
        {
            errors.Add($"category_rate_overrides_bps: at most {Limits.CategoriesCountMax} entries, got {CategoryRateOverridesBps.Count}");
        }
        else
        {
            foreach (var (category, rate) in CategoryRateOverridesBps)
            {
                if (!catalogue.Categories.Contains(category)) errors.Add($"category_rate_overrides_bps: {Echo.Quote(category)} is not a catalogue category");
                else if (rate is < 0 or > RateBpsMax) errors.Add($"category_rate_overrides_bps[{category}]: must be 0..{RateBpsMax}, got {rate}");
                else if (rate > MaxAccrualRateBps) errors.Add($"category_rate_overrides_bps[{category}]: {rate} exceeds max_accrual_rate_bps {MaxAccrualRateBps}");
            }
        }
        CheckMccs(errors, "excluded_mccs", ExcludedMccs);
        if (Currencies.Count is 0 or > Limits.CurrenciesCountMax) errors.Add($"currencies: between 1 and {Limits.CurrenciesCountMax} required, got {Currencies.Count}");
        else
        {
            var currencies = new HashSet<string>(StringComparer.Ordinal);
            foreach (var currency in Currencies)
            {
                if (!Limits.IsCurrency(currency)) errors.Add($"currencies: {Echo.Quote(currency)} is not an ISO 4217 code like RUB");
                else if (!currencies.Add(currency)) errors.Add($"currencies: {Echo.Quote(currency)} is given twice");
            }
        }
        if (!Enum.IsDefined(Rounding)) errors.Add($"rounding: must be EXACT_MINOR or FLOOR_WHOLE_BONUS, got {(int)Rounding}");
        if (AuthorizationHoldDays is < 1 or > Limits.AuthorizationHoldDaysMax) errors.Add($"authorization_hold_days: must be 1..{Limits.AuthorizationHoldDaysMax}, got {AuthorizationHoldDays}");
        if (CaptureMarginBps is < 0 or > RateBpsMax) errors.Add($"capture_margin_bps: must be 0..{RateBpsMax}, got {CaptureMarginBps}");
        if (ExpiryMonths is < 1 or > Limits.ExpiryMonthsMax) errors.Add($"expiry_months: must be 1..{Limits.ExpiryMonthsMax}, got {ExpiryMonths}");
        CheckMinor(errors, "referral_bonus_minor", ReferralBonusMinor, Limits.BonusMinorMax);
        if (MaxAccrualRateBps is < 1 or > RateBpsMax) errors.Add($"max_accrual_rate_bps: must be 1..{RateBpsMax} (0 = {RateBpsMax}), got {MaxAccrualRateBps}");
        if (ChooseNextMonthByDay is < 1 or > 31) errors.Add($"choose_next_month_by_day: must be 1..31, got {ChooseNextMonthByDay}");
        if (PremiumMinimumTierId.Length > 0 && FindTier(PremiumMinimumTierId) is null) errors.Add($"premium_minimum_tier_id: {Echo.Quote(PremiumMinimumTierId)} is not a tier");
        if (UtcOffsetMinutes is < Limits.UtcOffsetMinutesMin or > Limits.UtcOffsetMinutesMax)
        {
            errors.Add($"utc_offset_minutes: must be {Limits.UtcOffsetMinutesMin}..{Limits.UtcOffsetMinutesMax}, got {UtcOffsetMinutes}");
        }
        if (EffectiveFrom < Limits.TimeMin || EffectiveFrom >= Limits.TimeMax) errors.Add($"effective_from: must be {Limits.TimeMin:yyyy-MM-dd}..{Limits.TimeMax:yyyy-MM-dd}, got {EffectiveFrom:O}");
        return errors;
    }

    /// <summary>An amount in minor units: 0..max.</summary>
    internal static void CheckMinor(List<string> errors, string field, long value, long max)
    {
        if (value < 0 || value > max) errors.Add($"{field}: must be 0..{max}, got {value}");
    }

    /// <summary>A list of catalogue categories: bounded, each known, none twice.</summary>
    internal static void CheckCategories(List<string> errors, string field, IReadOnlyList<string> categories, MccCatalogue catalogue)
    {
        if (categories.Count > Limits.CategoriesCountMax)
        {
            errors.Add($"{field}: at most {Limits.CategoriesCountMax} categories, got {categories.Count}");
            return;
        }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var category in categories)
        {
            if (!catalogue.Categories.Contains(category)) errors.Add($"{field}: {Echo.Quote(category)} is not a catalogue category");
            else if (!seen.Add(category)) errors.Add($"{field}: {Echo.Quote(category)} is given twice");
        }
    }

    /// <summary>A list of MCCs: bounded, each 0..9999, none twice.</summary>
    internal static void CheckMccs(List<string> errors, string field, IReadOnlyList<int> mccs)
    {
        if (mccs.Count > Limits.MccsCountMax)
        {
            errors.Add($"{field}: at most {Limits.MccsCountMax} MCCs, got {mccs.Count}");
            return;
        }
        var seen = new HashSet<int>();
        foreach (var mcc in mccs)
        {
            if (!MccCatalogue.IsValidMcc(mcc)) errors.Add($"{field}: {mcc} is not an MCC (0..{MccCatalogue.MccMax})");
            else if (!seen.Add(mcc)) errors.Add($"{field}: {mcc} is given twice");
        }
    }

    /// <summary>The demo/default program: T-Bank-like rates, Spasibo-like caps (docs/RULES.md, "Default program").</summary>
    public static ProgramConfig Default { get; } = new()
    {
        Tiers =
        [
            new TierRule("standard", 0, BaseRateBps: 100, CategoryRateBps: 500, CategoriesToChoose: 3,
                MonthlyCategoryCapMinor: 300_000, MinPurchaseMinor: 10_000, PremiumExtraCategories: 1, PremiumMonthlyCategoryCapMinor: 500_000),
            new TierRule("silver", 3_000_000, BaseRateBps: 150, CategoryRateBps: 700, CategoriesToChoose: 4,
                MonthlyCategoryCapMinor: 500_000, MinPurchaseMinor: 10_000, PremiumExtraCategories: 1, PremiumMonthlyCategoryCapMinor: 700_000),
            new TierRule("gold", 10_000_000, BaseRateBps: 200, CategoryRateBps: 1_000, CategoriesToChoose: 4,
                MonthlyCategoryCapMinor: 700_000, MinPurchaseMinor: 10_000, PremiumExtraCategories: 2, PremiumMonthlyCategoryCapMinor: 1_000_000),
        ],
        OfferedCategories =
        [
            "supermarkets", "restaurants", "fast_food", "fuel", "transport", "taxi", "pharmacy", "clothes",
            "electronics", "travel", "entertainment", "beauty", "sports", "home", "pets", "kids", "health", "auto", "books", "digital",
        ],
        CategoryRateOverridesBps = new Dictionary<string, int> { ["restaurants"] = 700, ["taxi"] = 700 }.ToFrozenDictionary(),
        Currencies = ["RUB"],
        ReferralBonusMinor = 50_000,
        PremiumMinimumTierId = "silver",
    };
}
