namespace LoyaltyGrains.Domain;

/// <summary>
/// A time-limited campaign or partner offer (docs/RULES.md, "Campaigns and partner offers"). It adds on top of base and category cashback when
/// all its conditions hold; its budget and first-N slots are drawn from leases outside the domain and handed in as
/// grants, so the rules here stay pure.
/// </summary>
public sealed record CampaignRule
{
    public const string RulePrefix = "campaign:";

    public required string CampaignId { get; init; }
    public string Name { get; init; } = "";
    /// <summary>Empty: bank-funded. Otherwise the partner that pays for the bonus.</summary>
    public string PartnerId { get; init; } = "";
    public IReadOnlyList<int> Mccs { get; init; } = [];
    public IReadOnlyList<string> Categories { get; init; } = [];
    public IReadOnlyList<string> MerchantIds { get; init; } = [];
    public int RateBps { get; init; }
    public long FixedBonusMinor { get; init; }
    public long MinAmountMinor { get; init; }
    public DateTimeOffset StartsAt { get; init; }
    public DateTimeOffset EndsAt { get; init; }
    /// <summary>0 = no total budget.</summary>
    public long BudgetMinor { get; init; }
    /// <summary>0 = any number of members ("first N members" otherwise).</summary>
    public int MaxMembers { get; init; }
    /// <summary>0 = no per-member cap.</summary>
    public long PerMemberCapMinor { get; init; }
    public string MinTier { get; init; } = "";
    public bool RequiresActivation { get; init; }
    /// <summary>Lower first: when budgets or caps run short, earlier campaigns are served first.</summary>
    public int StackingOrder { get; init; }

    public string Rule => RulePrefix + CampaignId;

    public bool IsActiveAt(DateTimeOffset instant) => instant >= StartsAt && instant < EndsAt;

    /// <summary>Whether this campaign's conditions hold for a purchase and member (budget and slots aside).</summary>
    public bool Matches(in PurchaseFacts purchase, string category, ProgramConfig program, TierRule tier, bool activated)
    {
        if (!IsActiveAt(purchase.OccurredAt)) return false;
        if (RequiresActivation && !activated) return false;
        if (purchase.AmountMinor < MinAmountMinor) return false;
        if (Mccs.Count > 0 && !Mccs.Contains(purchase.Mcc)) return false;
        if (Categories.Count > 0 && !Categories.Contains(category)) return false;
        if (MerchantIds.Count > 0 && !MerchantIds.Contains(purchase.MerchantId)) return false;
        if (!QualifiesTier(program, tier.TierId)) return false;
        return true;
    }

    /// <summary>The bonus before caps and budget: the rate on the amount plus the fixed bonus.</summary>
    public long Bonus(long amountMinor) => Money.ApplyBps(amountMinor, RateBps) + FixedBonusMinor;

    public IReadOnlyList<string> Validate(MccCatalogue catalogue)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(CampaignId)) errors.Add("campaign_id: required");
        if (RateBps is < 0 or > ProgramConfig.RateBpsMax) errors.Add($"rate_bps: must be 0..{ProgramConfig.RateBpsMax}");
        if (FixedBonusMinor < 0) errors.Add("fixed_bonus_minor: must be >= 0");
        if (RateBps == 0 && FixedBonusMinor == 0) errors.Add("rate_bps: a campaign needs a rate or a fixed bonus");
        if (MinAmountMinor < 0) errors.Add("min_amount_minor: must be >= 0");
        if (EndsAt <= StartsAt) errors.Add("ends_at: must be after starts_at");
        if (BudgetMinor < 0) errors.Add("budget_minor: must be >= 0 (0 = unlimited)");
        if (MaxMembers < 0) errors.Add("max_members: must be >= 0 (0 = unlimited)");
        if (PerMemberCapMinor < 0) errors.Add("per_member_cap_minor: must be >= 0 (0 = unlimited)");
        foreach (var mcc in Mccs)
        {
            if (!MccCatalogue.IsValidMcc(mcc)) errors.Add($"mccs: {mcc} is not an MCC");
        }
        foreach (var category in Categories)
        {
            if (!catalogue.Categories.Contains(category)) errors.Add($"categories: '{category}' is not a catalogue category");
        }
        return errors;
    }

    public bool QualifiesTier(ProgramConfig program, string tierId) => MinTier.Length == 0 || program.TierIndex(tierId) >= program.TierIndex(MinTier);
}

/// <summary>What a campaign would pay for a purchase (Desired), and what its budget lease granted (Granted).</summary>
public readonly record struct CampaignClaim(CampaignRule Campaign, long DesiredMinor, bool NeedsMemberSlot);

public readonly record struct CampaignGrant(CampaignRule Campaign, long GrantedMinor, bool TookMemberSlot = false);
