using System.Collections.Concurrent;
using Grpc.Core;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.LoadTests;

/// <summary>
/// Processors misbehaving: 30% re-sends of earlier postings (must be DUPLICATE-identical), authorizations held and
/// reversed later (full or partial), reversals of authorizations that never arrive, refunds, reversals after
/// capture (must be refused with FAILED_PRECONDITION), and ordinary purchases.
/// </summary>
public sealed class RetryStorm(Engine engine) : EngineScenario(engine)
{
    private const int RingSize = 4_096;
    private readonly Sent?[] _ring = new Sent?[RingSize];
    private readonly ConcurrentQueue<(int Member, AuthorizeRequest Request)> _held = new();
    private readonly ConcurrentQueue<(int Member, CaptureRequest Request)> _captured = new();
    private long _ringNext;

    private sealed record Sent(string Method, PostingRequest Request, PostingReply Reply);

    public override async Task<OpOutcome> ArrivalAsync(Arrival arrival)
    {
        var dice = new Dice(Options.Seed, arrival.Index);
        var member = dice.Below(0, Engine.Members);
        var roll = dice.Below(5, 100);
        var written = Interlocked.Read(ref _ringNext);
        if (roll < 30 && written > 0 && Volatile.Read(ref _ring[dice.Below(30, (int)Math.Min(written, RingSize))]) is { } earlier) return await ResendAsync(arrival, earlier);
        if (roll < 40) return await HoldAsync(arrival, member, dice);
        if (roll < 50 && _held.TryDequeue(out var held)) return await LateReversalAsync(arrival, dice, held.Member, held.Request);
        if (roll < 55) return await OrphanReversalAsync(arrival, member);
        if (roll < 60 && _captured.TryDequeue(out var captured)) return await RefundAsync(arrival, dice, captured.Member, captured.Request);
        if (roll < 62 && _captured.TryDequeue(out var late)) return await ReversalAfterCaptureAsync(arrival, late.Member, late.Request);
        return await PurchaseAsync(arrival, member, dice, retryPercent: 5, Engine.Purchases.Pick(dice, 1),
            (request, reply) => Remember("Authorize", request, reply));
    }

    /// <summary>A processor re-sending an earlier posting: it must come back DUPLICATE with the original figures.</summary>
    private async Task<OpOutcome> ResendAsync(Arrival arrival, Sent earlier)
    {
        var start = arrival.IntendedTicks;
        try
        {
            var again = await Expectations.Send(Engine, earlier.Request, arrival.Cancellation);
            arrival.Rpc(earlier.Method + " (retry)", start, OpOutcome.OkStatus);
            Engine.Expect.Retried(earlier.Reply, again);
            return OpOutcome.Ok("duplicate");
        }
        catch (RpcException ex)
        {
            arrival.Rpc(earlier.Method + " (retry)", start, Arrival.StatusName(ex.StatusCode));
            return new OpOutcome("duplicate", Arrival.StatusName(ex.StatusCode));
        }
    }

    /// <summary>Held: authorized now, reversed by a later arrival (a cancelled order, a hotel deposit released).</summary>
    private async Task<OpOutcome> HoldAsync(Arrival arrival, int member, Dice dice)
    {
        var request = new PostingRequest { Authorize = Authorize(arrival.Index, member, dice, Engine.Purchases.Pick(dice, 1)) };
        var (reply, status) = await PostAsync(arrival, "Authorize", member, request, arrival.IntendedTicks);
        if (reply is null) return new OpOutcome("hold", status);
        Remember("Authorize", request, reply);
        _held.Enqueue((member, request.Authorize));
        return OpOutcome.Ok("hold");
    }

    /// <summary>Reverses a held authorization, fully or (30%) by half.</summary>
    private async Task<OpOutcome> LateReversalAsync(Arrival arrival, Dice dice, int member, AuthorizeRequest held)
    {
        var partial = dice.Below(31, 100) < 30;
        var request = new PostingRequest
        {
            Reverse = new ReverseRequest
            {
                TransactionId = Engine.TransactionId(arrival.Index, 'v'), AuthorizationId = held.TransactionId, CardId = held.CardId,
                AmountMinor = partial ? held.AmountMinor / 2 : 0, OccurredAt = Engine.OccurredAt,
            },
        };
        var (reply, status) = await PostAsync(arrival, "Reverse", member, request, arrival.IntendedTicks);
        if (reply is null) return new OpOutcome("late-reversal", status);
        Remember("Reverse", request, reply);
        return OpOutcome.Ok("late-reversal");
    }

    /// <summary>A reversal whose authorization never comes: the engine parks it; it must change nothing now.</summary>
    private async Task<OpOutcome> OrphanReversalAsync(Arrival arrival, int member)
    {
        var request = new PostingRequest
        {
            Reverse = new ReverseRequest
            {
                TransactionId = Engine.TransactionId(arrival.Index, 'o'), AuthorizationId = Engine.TransactionId(arrival.Index, 'n'),
                CardId = Engine.CardId(member, 0), OccurredAt = Engine.OccurredAt,
            },
        };
        var (reply, status) = await PostAsync(arrival, "Reverse (unknown authorization)", member, request, arrival.IntendedTicks);
        if (reply is null) return new OpOutcome("orphan-reversal", status);
        if (reply.AccruedMinor != 0) Engine.Expect.Problem($"reversal {request.Reverse.TransactionId} of an unknown authorization changed the balance by {reply.AccruedMinor}");
        return OpOutcome.Ok("orphan-reversal");
    }

    /// <summary>Refunds a captured purchase, in full or by a third.</summary>
    private async Task<OpOutcome> RefundAsync(Arrival arrival, Dice dice, int member, CaptureRequest captured)
    {
        var request = new PostingRequest
        {
            Refund = new RefundRequest
            {
                TransactionId = Engine.TransactionId(arrival.Index, 'r'), OriginalTransactionId = captured.TransactionId, CardId = captured.CardId,
                AmountMinor = dice.Below(32, 100) < 50 ? captured.AmountMinor : captured.AmountMinor / 3, OccurredAt = Engine.OccurredAt,
            },
        };
        var (reply, status) = await PostAsync(arrival, "Refund", member, request, arrival.IntendedTicks);
        if (reply is null) return new OpOutcome("refund", status);
        Remember("Refund", request, reply);
        return OpOutcome.Ok("refund");
    }

    /// <summary>A reversal after clearing: the engine must refuse it (the processor should refund instead).</summary>
    private async Task<OpOutcome> ReversalAfterCaptureAsync(Arrival arrival, int member, CaptureRequest captured)
    {
        var request = new ReverseRequest
        {
            TransactionId = Engine.TransactionId(arrival.Index, 'x'), AuthorizationId = captured.AuthorizationId, CardId = captured.CardId, OccurredAt = Engine.OccurredAt,
        };
        try
        {
            var reply = await Engine.Processing(arrival.Index).ReverseAsync(request, deadline: arrival.Deadline, cancellationToken: arrival.Cancellation);
            arrival.Rpc("Reverse (after capture)", arrival.IntendedTicks, OpOutcome.OkStatus);
            Engine.Expect.Apply(member, PostingRequest.KindOneofCase.Reverse, request.AuthorizationId, reply);
            Engine.Expect.Problem($"reversal {request.TransactionId} after capture was accepted ({reply.Status}, accrued {reply.AccruedMinor}); expected FAILED_PRECONDITION");
            return OpOutcome.Ok("reversal-after-capture");
        }
        catch (RpcException ex)
        {
            arrival.Rpc("Reverse (after capture)", arrival.IntendedTicks, Arrival.StatusName(ex.StatusCode));
            if (Engine.OutcomeUnknown(ex.StatusCode)) Engine.Expect.Unknown(member, new PostingRequest { Reverse = request });
            return new OpOutcome("reversal-after-capture", ex.StatusCode == StatusCode.FailedPrecondition ? OpOutcome.OkStatus : Arrival.StatusName(ex.StatusCode));
        }
    }

    protected override void Captured(int member, CaptureRequest capture, PostingReply reply)
    {
        Remember("Capture", new PostingRequest { Capture = capture }, reply);
        if (_captured.Count < 50_000) _captured.Enqueue((member, capture));
    }

    private void Remember(string method, PostingRequest request, PostingReply reply)
    {
        var slot = Interlocked.Increment(ref _ringNext) - 1;
        Volatile.Write(ref _ring[slot % RingSize], new Sent(method, request, reply));
    }
}
