using Grpc.Core;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.LoadTests;

/// <summary>
/// A clearing file: a day's captures sorted by card, each a force post (the processor's clearing record, no
/// authorization id), a run of <see cref="CapturesPerCard"/> consecutive captures per card, cards in member order. As
/// <c>clearing</c> they go through Processing.Post streams, as <c>clearing-unary</c> the same items go as unary
/// Capture calls, so the two runs compare bulk with unary on the same file. One arrival = one capture.
/// </summary>
public sealed class Clearing(Engine engine, bool unary) : EngineScenario(engine), IAsyncDisposable
{
    /// <summary>Captures of one card in a row: a busy card's day in the file.</summary>
    public const int CapturesPerCard = 8;

    private readonly List<Bulk.PostStream> _streams = [];

    public override async Task SetupAsync(Action<string> progress)
    {
        await base.SetupAsync(progress);
        if (unary) return;
        for (var s = 0; s < Options.StreamCount; s++) _streams.Add(new Bulk.PostStream(Engine.Processing(s).Post()));
        progress($"{_streams.Count} Processing.Post streams open; {CapturesPerCard} captures per card in a row");
    }

    public override async Task<OpOutcome> ArrivalAsync(Arrival arrival)
    {
        const string flow = "clearing-capture";
        var dice = new Dice(Options.Seed, arrival.Index);
        var member = (int)(arrival.Index / CapturesPerCard % Engine.Members);
        var shape = Engine.Purchases.Pick(dice, 1);
        var capture = new CaptureRequest
        {
            TransactionId = Engine.TransactionId(arrival.Index, 'f'), AuthorizationId = "", CardId = Engine.CardId(member, 0), AmountMinor = shape.CaptureMinor,
            Mcc = shape.Mcc, MerchantId = shape.MerchantId, Currency = "RUB", OccurredAt = Engine.OccurredAt,
        };
        var request = new PostingRequest { Capture = capture };
        if (unary)
        {
            var (reply, status) = await PostAsync(arrival, "Capture", member, request, arrival.IntendedTicks);
            return reply is null ? new OpOutcome(flow, status) : OpOutcome.Ok(flow);
        }
        // One stream per run of a card, so a card's captures stay in file order on one stream (as a file import would).
        var stream = _streams[(int)(arrival.Index / CapturesPerCard % _streams.Count)];
        var streamed = await stream.SendAsync(request, Options.RequestTimeout);
        if (streamed.Error is { } error)
        {
            arrival.Rpc("Post.capture", arrival.IntendedTicks, error.Code);
            if (System.Enum.TryParse<StatusCode>(error.Code.Replace("_", "", StringComparison.Ordinal), ignoreCase: true, out var code) ? Engine.OutcomeUnknown(code) : true)
            {
                Engine.Expect.Unknown(member, request);
            }
            return new OpOutcome(flow, error.Code);
        }
        arrival.Rpc("Post.capture", arrival.IntendedTicks, OpOutcome.OkStatus);
        Engine.Expect.Apply(member, PostingRequest.KindOneofCase.Capture, "", streamed);
        if (streamed.Status != PostingStatus.Accepted) Engine.Expect.Problem($"first send of {streamed.TransactionId} on a stream answered {streamed.Status}, expected ACCEPTED");
        return OpOutcome.Ok(flow);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var stream in _streams) await stream.DisposeAsync();
    }
}
