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

    /// <summary>The bonus before caps and budget: the rate on the amount plus the fixed bonus (checked: never wraps).</summary>
    public long Bonus(long amountMinor) => checked(Money.ApplyBps(amountMinor, RateBps) + FixedBonusMinor);

    /// <summary>
    /// Every reason this campaign is unusable, each naming its field; empty when valid. Whether min_tier is a tier of
    /// the programme and how far ahead ends_at may be are the gateway's checks (they need the programme and a clock).
    /// </summary>
    public IReadOnlyList<string> Validate(MccCatalogue catalogue)
    {
        var errors = new List<string>();
        if (!Limits.IsId(CampaignId)) errors.Add($"campaign_id: {Echo.Quote(CampaignId)} is not an id (1-{Limits.IdLengthMax} of A-Z a-z 0-9 _ . -)");
        if (Name.Length > Limits.NameLengthMax || Name.Any(char.IsControl)) errors.Add($"name: at most {Limits.NameLengthMax} characters, no control characters; got {Name.Length}");
        if (PartnerId.Length > 0 && !Limits.IsId(PartnerId)) errors.Add($"partner_id: {Echo.Quote(PartnerId)} is not an id");
        if (RateBps is < 0 or > Limits.RateBpsMax) errors.Add($"rate_bps: must be 0..{Limits.RateBpsMax}, got {RateBps}");
        ProgramConfig.CheckMinor(errors, "fixed_bonus_minor", FixedBonusMinor, Limits.BonusMinorMax);
        if (RateBps == 0 && FixedBonusMinor == 0) errors.Add("rate_bps: a campaign needs a rate or a fixed bonus");
        ProgramConfig.CheckMinor(errors, "min_amount_minor", MinAmountMinor, Limits.PurchaseAmountMinorMax);
        if (StartsAt < Limits.TimeMin || StartsAt >= Limits.TimeMax) errors.Add($"starts_at: must be {Limits.TimeMin:yyyy-MM-dd}..{Limits.TimeMax:yyyy-MM-dd}, got {StartsAt:O}");
        if (EndsAt < Limits.TimeMin || EndsAt > Limits.TimeMax) errors.Add($"ends_at: must be {Limits.TimeMin:yyyy-MM-dd}..{Limits.TimeMax:yyyy-MM-dd}, got {EndsAt:O}");
        else if (EndsAt <= StartsAt) errors.Add("ends_at: must be after starts_at");
        ProgramConfig.CheckMinor(errors, "budget_minor", BudgetMinor, Limits.BudgetMinorMax);
        if (MaxMembers is < 0 or > Limits.CampaignMembersCountMax) errors.Add($"max_members: must be 0 (unlimited)..{Limits.CampaignMembersCountMax}, got {MaxMembers}");
        ProgramConfig.CheckMinor(errors, "per_member_cap_minor", PerMemberCapMinor, Limits.BonusMinorMax);
        if (MinTier.Length > 0 && !Limits.IsId(MinTier)) errors.Add($"min_tier: {Echo.Quote(MinTier)} is not a tier id");
        if (StackingOrder is < -Limits.StackingOrderMax or > Limits.StackingOrderMax)
        {
            errors.Add($"stacking_order: must be -{Limits.StackingOrderMax}..{Limits.StackingOrderMax}, got {StackingOrder}");
        }
        ProgramConfig.CheckMccs(errors, "mccs", Mccs);
        ProgramConfig.CheckCategories(errors, "categories", Categories, catalogue);
        if (MerchantIds.Count > Limits.MerchantIdsCountMax) errors.Add($"merchant_ids: at most {Limits.MerchantIdsCountMax}, got {MerchantIds.Count}");
        else
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var merchant in MerchantIds)
            {
                if (!Limits.IsId(merchant)) errors.Add($"merchant_ids: {Echo.Quote(merchant)} is not an id");
                else if (!seen.Add(merchant)) errors.Add($"merchant_ids: {Echo.Quote(merchant)} is given twice");
            }
        }
        return errors;
    }

    public bool QualifiesTier(ProgramConfig program, string tierId) => MinTier.Length == 0 || program.TierIndex(tierId) >= program.TierIndex(MinTier);
}

/// <summary>What a campaign would pay for a purchase (Desired), and what its budget lease granted (Granted).</summary>
public readonly record struct CampaignClaim(CampaignRule Campaign, long DesiredMinor, bool NeedsMemberSlot);

public readonly record struct CampaignGrant(CampaignRule Campaign, long GrantedMinor, bool TookMemberSlot = false);
