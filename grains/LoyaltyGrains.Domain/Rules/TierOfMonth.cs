namespace LoyaltyGrains.Domain;

/// <summary>
/// Rule "tier" (docs/RULES.md, "Tiers"): a member's tier for a programme month. Written once; the member's live pricing,
/// quotes and the what-if replay all ask here.
/// </summary>
public static class TierOfMonth
{
    /// <summary>
    /// The month's tier: the tier frozen for it on the member's first event of the month (a ledger entry records it) when
    /// the programme still has that tier; otherwise the tier the previous month's captured spend reaches.
    /// </summary>
    /// <param name="frozenTierId">The tier frozen for the month, empty when none has been.</param>
    public static TierRule Resolve(ProgramConfig program, string frozenTierId, long previousMonthCapturedSpendMinor, bool premium) =>
        frozenTierId.Length > 0 && program.FindTier(frozenTierId) is { } frozen ? frozen : FromSpend(program, previousMonthCapturedSpendMinor, premium);

    /// <summary>
    /// The highest tier whose threshold the previous month's captured spend (refunds deducted) reaches; a premium member
    /// is lifted to the programme's premium minimum tier when that is higher.
    /// </summary>
    public static TierRule FromSpend(ProgramConfig program, long previousMonthCapturedSpendMinor, bool premium)
    {
        var tiers = program.Tiers;
        var chosen = 0;
        for (var i = 0; i < tiers.Count; i++)
        {
            if (previousMonthCapturedSpendMinor >= tiers[i].MinMonthlySpendMinor) chosen = i;
        }
        if (premium && program.PremiumMinimumTierId.Length > 0)
        {
            for (var i = chosen + 1; i < tiers.Count; i++)
            {
                if (tiers[i].TierId == program.PremiumMinimumTierId) chosen = i;
            }
        }
        return tiers[chosen];
    }
}
