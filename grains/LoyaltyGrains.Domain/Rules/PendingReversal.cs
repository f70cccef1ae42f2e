namespace LoyaltyGrains.Domain;

/// <summary>
/// Rules "reversal" and "pending expiry" (docs/RULES.md, "Lifecycle"): a (partial) reversal leaves pending the authorized lines' share of the
/// amount still authorized — cumulative, each line truncated, so partial reversals add up exactly — and the purchase's
/// reservation of its month's category cap follows the category lines that remain.
/// </summary>
/// <param name="PendingLines">The pending lines after the reversal (same lines as authorized, same order).</param>
/// <param name="CategoryCapDeltaMinor">The change of the purchase's reservation of the month's category cap (≤ 0).</param>
public readonly record struct PendingReversal(AccrualLine[] PendingLines, long CategoryCapDeltaMinor)
{
    public static PendingReversal Of(IReadOnlyList<AccrualLine> authorizedLines, long authorizedMinor, long remainingAuthorizedAfterMinor,
        long categoryReservedMinor)
    {
        var pendingAfter = AccrualCalculator.Scale(authorizedLines, remainingAuthorizedAfterMinor, authorizedMinor);
        return new PendingReversal(pendingAfter, checked(AccrualCalculator.CategorySum(pendingAfter) - categoryReservedMinor));
    }

    /// <summary>
    /// Rule "pending expiry": an authorization past the hold releases everything still pending (its lines fall to zero)
    /// and its whole reservation of the month's category cap.
    /// </summary>
    public static PendingReversal AtExpiry(IReadOnlyList<AccrualLine> pendingLines, long categoryReservedMinor) =>
        new(AccrualCalculator.Scale(pendingLines, 0, 1), checked(-categoryReservedMinor));
}
