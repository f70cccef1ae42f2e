namespace LoyaltyGrains.Domain;

/// <summary>
/// Prices one purchase for a member in its programme month (docs/RULES.md, "Rates", "Caps"): the month's tier, the
/// member's premium standing and chosen categories, and the month's category cap as used by every other purchase — a
/// purchase already holding a reservation of the cap (a capture of its authorization) is priced against the cap net of
/// its own reservation. The member's live pricing and quotes (MemberAccount) and the what-if replay all take the member's
/// facts from <see cref="Facts"/> and price with <see cref="AccrualCalculator.Compute"/>.
/// </summary>
public static class PurchasePricing
{
    public static Accrual Price(ProgramConfig program, MccCatalogue catalogue, in PurchaseFacts purchase, TierRule monthTier, bool premium,
        IReadOnlyCollection<string> chosenCategories, long monthCategoryCapUsedMinor, long ownReservationMinor, IReadOnlyList<CampaignGrant>? grants) =>
        AccrualCalculator.Compute(program, catalogue, purchase, Facts(monthTier, premium, chosenCategories, monthCategoryCapUsedMinor, ownReservationMinor), grants);

    /// <summary>What the member brings to a purchase of the month (campaign planning reads the same facts).</summary>
    public static MemberFacts Facts(TierRule monthTier, bool premium, IReadOnlyCollection<string> chosenCategories, long monthCategoryCapUsedMinor,
        long ownReservationMinor) =>
        new(monthTier, premium, chosenCategories, checked(monthCategoryCapUsedMinor - ownReservationMinor));

    /// <summary>
    /// What a capture changes in its month's category cap: the category cashback it earned replaces what its
    /// authorization had reserved.
    /// </summary>
    public static long CaptureCategoryCapDelta(Accrual captured, long reservedMinor) => checked(captured.CategoryCapConsumedMinor - reservedMinor);
}
