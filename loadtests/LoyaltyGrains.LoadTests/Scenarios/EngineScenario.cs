using System.Collections.Concurrent;
using System.Diagnostics;
using Grpc.Core;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.LoadTests;

/// <summary>Shared building blocks: postings with expectation tracking, retries checked for DUPLICATE, balance and eligibility reads.</summary>
public abstract class EngineScenario(Engine engine) : IScenario
{
    private readonly ConcurrentQueue<string> _notes = new();

    protected Engine Engine { get; } = engine;
    protected LoadOptions Options => Engine.Options;

    /// <summary>What the report should say about how this scenario ran (e.g. a feature the engine lacks).</summary>
    public IReadOnlyCollection<string> Notes => _notes;

    public virtual Task SetupAsync(Action<string> progress) => Engine.SeedAsync(progress, CancellationToken.None);

    public abstract Task<OpOutcome> ArrivalAsync(Arrival arrival);

    protected void Note(string text) => _notes.Enqueue(text);

    protected AuthorizeRequest Authorize(long i, int member, Dice dice, PurchaseShape shape, char suffix = 'a') => new()
    {
        TransactionId = Engine.TransactionId(i, suffix), CardId = Engine.CardId(member, dice.Below(9, Options.CardsPerMember)), AmountMinor = shape.AuthorizeMinor,
        Currency = "RUB", Mcc = shape.Mcc, MerchantId = shape.MerchantId, OccurredAt = Engine.OccurredAt,
    };

    protected CaptureRequest CaptureOf(AuthorizeRequest authorize, long amountMinor) => new()
    {
        TransactionId = authorize.TransactionId + "c", AuthorizationId = authorize.TransactionId, CardId = authorize.CardId, AmountMinor = amountMinor,
        OccurredAt = Engine.OccurredAt,
    };

    /// <summary>
    /// Sends one posting, records its latency from <paramref name="startTicks"/> and applies the reply to the
    /// expected balances. An error whose outcome is unknown is queued for resolution after the run.
    /// </summary>
    protected async Task<(PostingReply? Reply, string Status)> PostAsync(Arrival arrival, string method, int member, PostingRequest request, long startTicks)
    {
        try
        {
            var reply = await Expectations.Send(Engine, request, arrival.Cancellation);
            arrival.Rpc(method, startTicks, OpOutcome.OkStatus);
            Engine.Expect.Apply(member, request.KindCase, Expectations.AuthorizationOf(request), reply);
            if (reply.Status != PostingStatus.Accepted) Engine.Expect.Problem($"first send of {Expectations.TransactionOf(request)} answered {reply.Status}, expected ACCEPTED");
            return (reply, OpOutcome.OkStatus);
        }
        catch (RpcException ex)
        {
            var status = Arrival.StatusName(ex.StatusCode);
            arrival.Rpc(method, startTicks, status);
            if (Engine.OutcomeUnknown(ex.StatusCode)) Engine.Expect.Unknown(member, request);
            return (null, status);
        }
    }

    /// <summary>Sends a posting again, as a processor retrying would: it must come back DUPLICATE with the original figures.</summary>
    protected async Task RetryAsync(Arrival arrival, string method, PostingRequest request, PostingReply original)
    {
        var start = Stopwatch.GetTimestamp();
        try
        {
            var again = await Expectations.Send(Engine, request, arrival.Cancellation);
            arrival.Rpc(method + " (retry)", start, OpOutcome.OkStatus);
            Engine.Expect.Retried(original, again);
        }
        catch (RpcException ex)
        {
            // The original was applied (we hold its reply), so a failed retry changes nothing we expect.
            arrival.Rpc(method + " (retry)", start, Arrival.StatusName(ex.StatusCode));
        }
    }

    /// <summary>Authorize, then capture the same transaction (fuel captures less, a restaurant sometimes a tip more); each posting retried with <paramref name="retryPercent"/>.</summary>
    protected async Task<OpOutcome> PurchaseAsync(Arrival arrival, int member, Dice dice, int retryPercent, PurchaseShape shape, Action<PostingRequest, PostingReply>? onAuthorized = null)
    {
        const string flow = "purchase";
        var authorize = new PostingRequest { Authorize = Authorize(arrival.Index, member, dice, shape) };
        var (authorized, status) = await PostAsync(arrival, "Authorize", member, authorize, arrival.IntendedTicks);
        if (authorized is null) return new OpOutcome(flow, status);
        onAuthorized?.Invoke(authorize, authorized);
        if (dice.Below(20, 100) < retryPercent) await RetryAsync(arrival, "Authorize", authorize, authorized);
        var capture = new PostingRequest { Capture = CaptureOf(authorize.Authorize, shape.CaptureMinor) };
        var (captured, captureStatus) = await PostAsync(arrival, "Capture", member, capture, Stopwatch.GetTimestamp());
        if (captured is null) return new OpOutcome(flow, captureStatus);
        if (dice.Below(21, 100) < retryPercent) await RetryAsync(arrival, "Capture", capture, captured);
        Captured(member, capture.Capture, captured);
        return OpOutcome.Ok(flow);
    }

    /// <summary>Called after an accepted capture (retry-storm keeps some to refund later).</summary>
    protected virtual void Captured(int member, CaptureRequest capture, PostingReply reply)
    {
    }

    protected async Task<OpOutcome> BalanceAsync(Arrival arrival, int member)
    {
        try
        {
            await Engine.Balances(arrival.Index).GetBalanceAsync(new GetBalanceRequest { MemberId = Engine.MemberId(member) }, deadline: arrival.Deadline, cancellationToken: arrival.Cancellation);
            arrival.Rpc("GetBalance", arrival.IntendedTicks, OpOutcome.OkStatus);
            return OpOutcome.Ok("balance");
        }
        catch (RpcException ex)
        {
            arrival.Rpc("GetBalance", arrival.IntendedTicks, Arrival.StatusName(ex.StatusCode));
            return new OpOutcome("balance", Arrival.StatusName(ex.StatusCode));
        }
    }

    protected async Task<OpOutcome> EligibilityAsync(Arrival arrival, int member, Dice dice)
    {
        var shape = Engine.Purchases.Pick(dice, 1);
        try
        {
            await Engine.Offers(arrival.Index).CheckEligibilityAsync(new CheckEligibilityRequest
            {
                CardId = Engine.CardId(member, dice.Below(9, Options.CardsPerMember)), MerchantId = shape.MerchantId, Mcc = shape.Mcc, AmountMinor = shape.AuthorizeMinor,
            }, deadline: arrival.Deadline, cancellationToken: arrival.Cancellation);
            arrival.Rpc("CheckEligibility", arrival.IntendedTicks, OpOutcome.OkStatus);
            return OpOutcome.Ok("eligibility");
        }
        catch (RpcException ex)
        {
            // UNIMPLEMENTED (an engine without offers yet) is one more counted error class, not a crash.
            arrival.Rpc("CheckEligibility", arrival.IntendedTicks, Arrival.StatusName(ex.StatusCode));
            return new OpOutcome("eligibility", Arrival.StatusName(ex.StatusCode));
        }
    }
}
