namespace LoyaltyGrains.LoadTests;

/// <summary>85% purchases (authorize + capture; 5% of postings re-sent and checked DUPLICATE), 10% balance reads, 5% eligibility checks.</summary>
public sealed class PeakDay(Engine engine) : EngineScenario(engine)
{
    public override Task<OpOutcome> ArrivalAsync(Arrival arrival)
    {
        var dice = new Dice(Options.Seed, arrival.Index);
        var member = dice.Below(0, Engine.Members);
        var roll = dice.Below(5, 100);
        return roll < 85 ? PurchaseAsync(arrival, member, dice, retryPercent: 5, Engine.Purchases.Pick(dice, 1))
            : roll < 95 ? BalanceAsync(arrival, member)
            : EligibilityAsync(arrival, member, dice);
    }
}
