namespace LoyaltyGrains.Domain;

/// <summary>
/// Rule "proportional clawback" (docs/RULES.md, "Lifecycle"): a refund of a captured purchase takes its share of every
/// line the capture earned, computed cumulatively — all refunds so far over the captured amount, each line truncated,
/// less what earlier refunds took — so refunds adding up to the capture claw back exactly its accrual, never more.
/// </summary>
/// <param name="ClawedAfter">Per captured line, what all refunds including this one have taken (same lines, same order).</param>
/// <param name="Taken">What this refund takes, line by line (positive amounts, zero lines dropped).</param>
public readonly record struct Clawback(AccrualLine[] ClawedAfter, AccrualLine[] Taken)
{
    /// <summary>The clawback of one refund of <paramref name="refundMinor"/> after <paramref name="refundedBeforeMinor"/> was refunded.</summary>
    public static Clawback Of(IReadOnlyList<AccrualLine> capturedLines, long capturedMinor, IReadOnlyList<AccrualLine> clawedBefore,
        long refundedBeforeMinor, long refundMinor)
    {
        var clawedAfter = AccrualCalculator.Scale(capturedLines, checked(refundedBeforeMinor + refundMinor), capturedMinor);
        return new Clawback(clawedAfter, AccrualCalculator.Difference(clawedAfter, clawedBefore));
    }

    /// <summary>What a capture has had clawed back before any refund: its lines, each at zero.</summary>
    public static AccrualLine[] NothingClawed(IReadOnlyList<AccrualLine> capturedLines) => AccrualCalculator.Scale(capturedLines, 0, 1);

    /// <summary>The bonuses this refund takes back (positive).</summary>
    public long TakenMinor => AccrualCalculator.Sum(Taken);

    /// <summary>The category cashback this refund gives back to its month's cap (rule "refunds give headroom back").</summary>
    public long CategoryCapReturnedMinor => AccrualCalculator.CategorySum(Taken);

    /// <summary>The refund's breakdown as written to the ledger: the lines taken, negated.</summary>
    public AccrualLine[] Breakdown
    {
        get
        {
            var negated = new AccrualLine[Taken.Length];
            for (var i = 0; i < Taken.Length; i++) negated[i] = Taken[i] with { AmountMinor = -Taken[i].AmountMinor };
            return negated;
        }
    }
}
