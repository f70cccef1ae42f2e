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
    public const int RateBpsMax = 10_000;
    public const int TiersMax = 16;
    public const int CategoriesToChooseMax = 10;

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

    /// <summary>The program's calendar (months, caps, tiers) is kept in this fixed offset; Moscow: +180.</summary>
    public int UtcOffsetMinutes { get; init; } = 180;

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

    /// <summary>
    /// Rule "tier": the highest tier whose spend threshold the previous month's captured spend reaches; premium
    /// members are lifted to the premium minimum tier if that is higher.
    /// </summary>
    public TierRule TierForSpend(long previousMonthSpendMinor, bool premium)
    {
        var chosen = 0;
        for (var i = 0; i < Tiers.Count; i++)
        {
            if (previousMonthSpendMinor >= Tiers[i].MinMonthlySpendMinor) chosen = i;
        }
        if (premium && PremiumMinimumTierId.Length > 0)
        {
            for (var i = chosen + 1; i < Tiers.Count; i++)
            {
                if (Tiers[i].TierId == PremiumMinimumTierId) chosen = i;
            }
        }
        return Tiers[chosen];
    }

    public bool IsExcludedMcc(int mcc, MccCatalogue catalogue) =>
        MccCatalogue.IsExcludedCategory(catalogue.CategoryOf(mcc)) || ExcludedMccs.Contains(mcc);

    public bool AcceptsCurrency(string currency) => Currencies.Contains(currency);

    public MonthKey MonthOf(DateTimeOffset instant) => MonthKey.Of(instant, UtcOffsetMinutes);

    public int CategoryRateBps(TierRule tier, string category) =>
        CategoryRateOverridesBps.TryGetValue(category, out var rate) ? rate : tier.CategoryRateBps;

    /// <summary>Every reason this program is unusable, each naming its field; empty when valid.</summary>
    public IReadOnlyList<string> Validate(MccCatalogue catalogue)
    {
        var errors = new List<string>();
        if (Tiers.Count == 0 || Tiers.Count > TiersMax) errors.Add($"tiers: between 1 and {TiersMax} required");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        long previousSpend = -1;
        foreach (var tier in Tiers)
        {
            var name = $"tiers[{tier.TierId}]";
            if (string.IsNullOrWhiteSpace(tier.TierId)) errors.Add("tiers.tier_id: required");
            else if (!seen.Add(tier.TierId)) errors.Add($"{name}.tier_id: duplicate");
            if (tier.MinMonthlySpendMinor < 0) errors.Add($"{name}.min_monthly_spend_minor: must be >= 0");
            if (tier.MinMonthlySpendMinor <= previousSpend) errors.Add($"{name}.min_monthly_spend_minor: tiers must be in increasing order of spend");
            previousSpend = tier.MinMonthlySpendMinor;
            if (tier.BaseRateBps is < 0 or > RateBpsMax) errors.Add($"{name}.base_rate_bps: must be 0..{RateBpsMax}");
            if (tier.CategoryRateBps < tier.BaseRateBps || tier.CategoryRateBps > RateBpsMax) errors.Add($"{name}.category_rate_bps: must be base_rate_bps..{RateBpsMax}");
            if (tier.CategoriesToChoose is < 0 or > CategoriesToChooseMax) errors.Add($"{name}.categories_to_choose: must be 0..{CategoriesToChooseMax}");
            if (tier.PremiumExtraCategories < 0 || tier.CategoriesToChoose + tier.PremiumExtraCategories > CategoriesToChooseMax) errors.Add($"{name}.premium_extra_categories: must be >= 0 and keep the total <= {CategoriesToChooseMax}");
            if (tier.MonthlyCategoryCapMinor < 0) errors.Add($"{name}.monthly_category_cap_minor: must be >= 0");
            if (tier.PremiumMonthlyCategoryCapMinor < 0) errors.Add($"{name}.premium_monthly_category_cap_minor: must be >= 0");
            if (tier.MinPurchaseMinor < 0) errors.Add($"{name}.min_purchase_minor: must be >= 0");
        }
        if (Tiers.Count > 0 && Tiers[0].MinMonthlySpendMinor != 0) errors.Add("tiers[0].min_monthly_spend_minor: the entry tier must start at 0");
        foreach (var category in OfferedCategories)
        {
            if (!catalogue.Categories.Contains(category)) errors.Add($"offered_categories: '{category}' is not a catalogue category");
        }
        foreach (var (category, rate) in CategoryRateOverridesBps)
        {
            if (!catalogue.Categories.Contains(category)) errors.Add($"category_rate_overrides_bps: '{category}' is not a catalogue category");
            if (rate is < 0 or > RateBpsMax) errors.Add($"category_rate_overrides_bps[{category}]: must be 0..{RateBpsMax}");
        }
        foreach (var mcc in ExcludedMccs)
        {
            if (!MccCatalogue.IsValidMcc(mcc)) errors.Add($"excluded_mccs: {mcc} is not an MCC (0..9999)");
        }
        if (Currencies.Count == 0) errors.Add("currencies: at least one required");
        foreach (var currency in Currencies)
        {
            if (currency.Length != 3 || !currency.All(char.IsAsciiLetterUpper)) errors.Add($"currencies: '{currency}' is not an ISO 4217 code");
        }
        if (!Enum.IsDefined(Rounding)) errors.Add("rounding: unknown mode");
        if (AuthorizationHoldDays is < 1 or > 365) errors.Add("authorization_hold_days: must be 1..365");
        if (CaptureMarginBps is < 0 or > RateBpsMax) errors.Add($"capture_margin_bps: must be 0..{RateBpsMax}");
        if (ExpiryMonths is < 1 or > 120) errors.Add("expiry_months: must be 1..120");
        if (ReferralBonusMinor < 0) errors.Add("referral_bonus_minor: must be >= 0");
        if (ChooseNextMonthByDay is < 1 or > 31) errors.Add("choose_next_month_by_day: must be 1..31");
        if (PremiumMinimumTierId.Length > 0 && FindTier(PremiumMinimumTierId) is null) errors.Add($"premium_minimum_tier_id: '{PremiumMinimumTierId}' is not a tier");
        if (UtcOffsetMinutes is < -720 or > 840) errors.Add("utc_offset_minutes: must be -720..840");
        return errors;
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
