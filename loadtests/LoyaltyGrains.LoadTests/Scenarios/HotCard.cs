namespace LoyaltyGrains.LoadTests;

/// <summary>One member's first card hammered: every posting serialises on one member grain (the single-grain ceiling).</summary>
public sealed class HotCard(Engine engine) : EngineScenario(engine)
{
    public override Task<OpOutcome> ArrivalAsync(Arrival arrival)
    {
        var dice = new Dice(Options.Seed, arrival.Index);
        return dice.Below(5, 100) < 90 ? PurchaseAsync(arrival, 0, dice, retryPercent: 5, Engine.Purchases.Pick(dice, 1)) : BalanceAsync(arrival, 0);
    }
}
