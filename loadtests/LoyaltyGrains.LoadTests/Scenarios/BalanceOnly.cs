using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.LoadTests;

/// <summary>Only GetBalance, on random members; set-up makes every member authorize once so all are active.</summary>
public sealed class BalanceOnly(Engine engine) : EngineScenario(engine)
{
    public override async Task SetupAsync(Action<string> progress)
    {
        await base.SetupAsync(progress);
        await Parallel.ForEachAsync(Enumerable.Range(0, Engine.Members), new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (member, ct) =>
        {
            // Indexes far above any arrival's, so set-up transaction ids never meet the run's.
            var index = 1_000_000_000_000 + member;
            var dice = new Dice(Options.Seed, index);
            var reply = await Engine.Processing(index).AuthorizeAsync(Authorize(index, member, dice, Engine.Purchases.Pick(dice, 1)), cancellationToken: ct);
            Engine.Expect.Apply(member, PostingRequest.KindOneofCase.Authorize, "", reply);
        });
        progress("every member authorized once (activated)");
    }

    public override Task<OpOutcome> ArrivalAsync(Arrival arrival) => BalanceAsync(arrival, new Dice(Options.Seed, arrival.Index).Below(0, Engine.Members));
}
