namespace LoyaltyGrains.Domain;

/// <summary>
/// Rule "rounding" (docs/RULES.md, "Rounding"): in <see cref="RoundingMode.FloorWholeBonus"/> a purchase's own cashback
/// (base and category) is floored to whole bonuses and the cut is its own line; <see cref="RoundingMode.ExactMinor"/>
/// keeps each line truncated to the kopeck. Campaign lines are added after and never rounded (partners pay them exactly).
/// </summary>
public static class AccrualRounding
{
    /// <summary>Appends the rounding line (negative) to the purchase's own cashback lines, when there is a cut.</summary>
    public static void Apply(RoundingMode mode, List<AccrualLine> ownCashbackLines)
    {
        if (mode != RoundingMode.FloorWholeBonus) return;
        var total = AccrualCalculator.Sum(ownCashbackLines);
        var cut = checked(Money.FloorToWholeBonus(total) - total);
        if (cut != 0) ownCashbackLines.Add(new AccrualLine(AccrualLine.RoundingRule, cut));
    }
}
