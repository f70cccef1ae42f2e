using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.LoadTests;

/// <summary>Only Authorize, on random members: the durable unary rate compared with the echo baseline.</summary>
public sealed class AuthorizeOnly(Engine engine) : EngineScenario(engine)
{
    public override async Task<OpOutcome> ArrivalAsync(Arrival arrival)
    {
        var dice = new Dice(Options.Seed, arrival.Index);
        var member = dice.Below(0, Engine.Members);
        var request = new PostingRequest { Authorize = Authorize(arrival.Index, member, dice, Engine.Purchases.Pick(dice, 1)) };
        var (reply, status) = await PostAsync(arrival, "Authorize", member, request, arrival.IntendedTicks);
        return reply is null ? new OpOutcome("authorize", status) : OpOutcome.Ok("authorize");
    }
}
