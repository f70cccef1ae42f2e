using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using Google.Protobuf.WellKnownTypes;
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

/// <summary>One member's first card hammered: every posting serialises on one member grain (the single-grain ceiling).</summary>
public sealed class HotCard(Engine engine) : EngineScenario(engine)
{
    public override Task<OpOutcome> ArrivalAsync(Arrival arrival)
    {
        var dice = new Dice(Options.Seed, arrival.Index);
        return dice.Below(5, 100) < 90 ? PurchaseAsync(arrival, 0, dice, retryPercent: 5, Engine.Purchases.Pick(dice, 1)) : BalanceAsync(arrival, 0);
    }
}

/// <summary>
/// Every member buying at one merchant at once, where a partner campaign grants a fixed bonus to the first quarter
/// of them within a budget. The check adds up the campaign lines of the authorizations: more than the budget fails
/// the run. If the engine cannot take the campaign, the scenario still runs as plain purchases and says so.
/// </summary>
public sealed class CampaignRush(Engine engine) : EngineScenario(engine)
{
    private const long BonusMinor = 10_000;
    private long _grantedMinor;
    private bool _campaign;

    private string Merchant => $"lt-{Engine.RunId}-rush";
    private string CampaignId => $"lt-{Engine.RunId}-rush";
    private int FirstMembers => Math.Max(1, Engine.Members / 4);
    private long BudgetMinor => FirstMembers * BonusMinor;

    public long GrantedMinor => Interlocked.Read(ref _grantedMinor);

    public override async Task SetupAsync(Action<string> progress)
    {
        await base.SetupAsync(progress);
        try
        {
            await Engine.Admin.UpsertPartnerAsync(new Partner { PartnerId = $"lt-{Engine.RunId}-partner", Name = "Load test partner" }, deadline: DateTime.UtcNow.AddSeconds(30));
            await Engine.Admin.UpsertCampaignAsync(new Campaign
            {
                CampaignId = CampaignId, Name = "Campaign rush", PartnerId = $"lt-{Engine.RunId}-partner", FixedBonusMinor = BonusMinor, MerchantIds = { Merchant },
                MinAmountMinor = 10_000, MaxMembers = FirstMembers, BudgetMinor = BudgetMinor, PerMemberCapMinor = BonusMinor,
                StartsAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(-1)), EndsAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(1)),
            }, deadline: DateTime.UtcNow.AddSeconds(30));
            _campaign = true;
            Note($"campaign {CampaignId}: first {FirstMembers:N0} members get {BonusMinor} minor, budget {BudgetMinor:N0} minor");
            progress($"campaign {CampaignId} upserted; waiting 2.5 s for it to reach every silo");
            await Task.Delay(TimeSpan.FromSeconds(2.5));
        }
        catch (RpcException ex)
        {
            Note($"campaigns not available ({Arrival.StatusName(ex.StatusCode)}: {ex.Status.Detail}); ran as plain purchases at one merchant");
            progress($"campaign could not be created ({Arrival.StatusName(ex.StatusCode)}); running as plain purchases");
        }
    }

    public override Task<OpOutcome> ArrivalAsync(Arrival arrival)
    {
        var dice = new Dice(Options.Seed, arrival.Index);
        var member = dice.Below(0, Engine.Members);
        var shape = Engine.Purchases.Pick(dice, 1) with { Mcc = 5411, MerchantId = Merchant };
        if (shape.AuthorizeMinor < 10_000) shape = shape with { AuthorizeMinor = shape.AuthorizeMinor + 10_000, CaptureMinor = shape.CaptureMinor + 10_000 };
        shape = shape with { CaptureMinor = shape.AuthorizeMinor };
        return PurchaseAsync(arrival, member, dice, retryPercent: 2, shape, (_, reply) =>
        {
            if (!_campaign) return;
            var granted = 0L;
            foreach (var line in reply.Breakdown)
            {
                if (line.Rule == "campaign:" + CampaignId) granted += line.AmountMinor;
            }
            if (granted != 0 && Interlocked.Add(ref _grantedMinor, granted) > BudgetMinor) Engine.Expect.Problem($"campaign {CampaignId} granted {GrantedMinor} minor > budget {BudgetMinor}");
        });
    }
}

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
        if (roll < 30 && written > 0 && Volatile.Read(ref _ring[dice.Below(30, (int)Math.Min(written, RingSize))]) is { } earlier)
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
        if (roll < 40)
        {
            // Held: authorized now, reversed by a later arrival (a cancelled order, a hotel deposit released).
            var request = new PostingRequest { Authorize = Authorize(arrival.Index, member, dice, Engine.Purchases.Pick(dice, 1)) };
            var (reply, status) = await PostAsync(arrival, "Authorize", member, request, arrival.IntendedTicks);
            if (reply is null) return new OpOutcome("hold", status);
            Remember("Authorize", request, reply);
            _held.Enqueue((member, request.Authorize));
            return OpOutcome.Ok("hold");
        }
        if (roll < 50 && _held.TryDequeue(out var held))
        {
            var partial = dice.Below(31, 100) < 30;
            var request = new PostingRequest
            {
                Reverse = new ReverseRequest
                {
                    TransactionId = Engine.TransactionId(arrival.Index, 'v'), AuthorizationId = held.Request.TransactionId, CardId = held.Request.CardId,
                    AmountMinor = partial ? held.Request.AmountMinor / 2 : 0, OccurredAt = Engine.OccurredAt,
                },
            };
            var (reply, status) = await PostAsync(arrival, "Reverse", held.Member, request, arrival.IntendedTicks);
            if (reply is null) return new OpOutcome("late-reversal", status);
            Remember("Reverse", request, reply);
            return OpOutcome.Ok("late-reversal");
        }
        if (roll < 55)
        {
            // A reversal whose authorization never comes: the engine parks it; it must change nothing now.
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
        if (roll < 60 && _captured.TryDequeue(out var captured))
        {
            var request = new PostingRequest
            {
                Refund = new RefundRequest
                {
                    TransactionId = Engine.TransactionId(arrival.Index, 'r'), OriginalTransactionId = captured.Request.TransactionId, CardId = captured.Request.CardId,
                    AmountMinor = dice.Below(32, 100) < 50 ? captured.Request.AmountMinor : captured.Request.AmountMinor / 3, OccurredAt = Engine.OccurredAt,
                },
            };
            var (reply, status) = await PostAsync(arrival, "Refund", captured.Member, request, arrival.IntendedTicks);
            if (reply is null) return new OpOutcome("refund", status);
            Remember("Refund", request, reply);
            return OpOutcome.Ok("refund");
        }
        if (roll < 62 && _captured.TryDequeue(out var late))
        {
            // A reversal after clearing: the engine must refuse it (the processor should refund instead).
            var request = new ReverseRequest
            {
                TransactionId = Engine.TransactionId(arrival.Index, 'x'), AuthorizationId = late.Request.AuthorizationId, CardId = late.Request.CardId, OccurredAt = Engine.OccurredAt,
            };
            try
            {
                var reply = await Engine.Processing(arrival.Index).ReverseAsync(request, deadline: arrival.Deadline, cancellationToken: arrival.Cancellation);
                arrival.Rpc("Reverse (after capture)", arrival.IntendedTicks, OpOutcome.OkStatus);
                Engine.Expect.Apply(late.Member, PostingRequest.KindOneofCase.Reverse, request.AuthorizationId, reply);
                Engine.Expect.Problem($"reversal {request.TransactionId} after capture was accepted ({reply.Status}, accrued {reply.AccruedMinor}); expected FAILED_PRECONDITION");
                return OpOutcome.Ok("reversal-after-capture");
            }
            catch (RpcException ex)
            {
                arrival.Rpc("Reverse (after capture)", arrival.IntendedTicks, Arrival.StatusName(ex.StatusCode));
                if (Engine.OutcomeUnknown(ex.StatusCode)) Engine.Expect.Unknown(late.Member, new PostingRequest { Reverse = request });
                return new OpOutcome("reversal-after-capture", ex.StatusCode == StatusCode.FailedPrecondition ? OpOutcome.OkStatus : Arrival.StatusName(ex.StatusCode));
            }
        }
        return await PurchaseAsync(arrival, member, dice, retryPercent: 5, Engine.Purchases.Pick(dice, 1),
            (request, reply) => Remember("Authorize", request, reply));
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

/// <summary>
/// Purchases through Processing.Post bidi streams: several streams, each with many items in flight; every item's
/// latency counts from its scheduled time (authorize) or its send (capture). An item's error is a counted status;
/// a broken stream fails its waiting items as UNAVAILABLE (outcome unknown, resolved after the run).
/// </summary>
public sealed class Bulk(Engine engine) : EngineScenario(engine), IAsyncDisposable
{
    private readonly List<PostStream> _streams = [];

    public override async Task SetupAsync(Action<string> progress)
    {
        await base.SetupAsync(progress);
        for (var s = 0; s < Options.StreamCount; s++) _streams.Add(new PostStream(Engine.Processing(s).Post()));
        progress($"{_streams.Count} Processing.Post streams open");
    }

    public override async Task<OpOutcome> ArrivalAsync(Arrival arrival)
    {
        const string flow = "bulk-purchase";
        var dice = new Dice(Options.Seed, arrival.Index);
        var member = dice.Below(0, Engine.Members);
        var shape = Engine.Purchases.Pick(dice, 1);
        var stream = _streams[(int)(arrival.Index % _streams.Count)];
        var authorize = new PostingRequest { Authorize = Authorize(arrival.Index, member, dice, shape) };
        var (authorized, status) = await ItemAsync(arrival, stream, "Post.authorize", member, authorize, arrival.IntendedTicks);
        if (authorized is null) return new OpOutcome(flow, status);
        var capture = new PostingRequest { Capture = CaptureOf(authorize.Authorize, shape.CaptureMinor) };
        var (captured, captureStatus) = await ItemAsync(arrival, stream, "Post.capture", member, capture, Stopwatch.GetTimestamp());
        return captured is null ? new OpOutcome(flow, captureStatus) : OpOutcome.Ok(flow);
    }

    private async Task<(PostingReply? Reply, string Status)> ItemAsync(Arrival arrival, PostStream stream, string method, int member, PostingRequest request, long startTicks)
    {
        var reply = await stream.SendAsync(request, Options.RequestTimeout);
        if (reply.Error is { } error)
        {
            arrival.Rpc(method, startTicks, error.Code);
            if (System.Enum.TryParse<StatusCode>(error.Code.Replace("_", "", StringComparison.Ordinal), ignoreCase: true, out var code) ? Engine.OutcomeUnknown(code) : true)
            {
                Engine.Expect.Unknown(member, request);
            }
            return (null, error.Code);
        }
        arrival.Rpc(method, startTicks, OpOutcome.OkStatus);
        Engine.Expect.Apply(member, request.KindCase, Expectations.AuthorizationOf(request), reply);
        if (reply.Status != PostingStatus.Accepted) Engine.Expect.Problem($"first send of {reply.TransactionId} on a stream answered {reply.Status}, expected ACCEPTED");
        return (reply, OpOutcome.OkStatus);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var stream in _streams) await stream.DisposeAsync();
    }

    /// <summary>One bidi call: a single writer drains an outbox (gRPC allows one write at a time); a reader completes waiters by transaction id.</summary>
    private sealed class PostStream : IAsyncDisposable
    {
        private readonly AsyncDuplexStreamingCall<PostingRequest, PostingReply> _call;
        private readonly Channel<PostingRequest> _outbox = Channel.CreateUnbounded<PostingRequest>(new UnboundedChannelOptions { SingleReader = true });
        private readonly ConcurrentDictionary<string, TaskCompletionSource<PostingReply>> _waiting = new(StringComparer.Ordinal);
        private readonly Task _writer;
        private readonly Task _reader;
        private volatile string? _broken;

        public PostStream(AsyncDuplexStreamingCall<PostingRequest, PostingReply> call)
        {
            _call = call;
            _writer = Task.Run(WriteAsync);
            _reader = Task.Run(ReadAsync);
        }

        public async Task<PostingReply> SendAsync(PostingRequest request, TimeSpan timeout)
        {
            var id = Expectations.TransactionOf(request);
            if (_broken is { } why) return Failed(id, "UNAVAILABLE", why);
            var waiter = new TaskCompletionSource<PostingReply>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiting[id] = waiter;
            await _outbox.Writer.WriteAsync(request);
            try
            {
                return await waiter.Task.WaitAsync(timeout);
            }
            catch (TimeoutException)
            {
                _waiting.TryRemove(id, out _);
                return Failed(id, "DEADLINE_EXCEEDED", "no reply on the stream in time");
            }
        }

        private static PostingReply Failed(string id, string code, string message) => new() { TransactionId = id, Error = new PostingError { Code = code, Message = message } };

        private async Task WriteAsync()
        {
            try
            {
                // Requests already queued go out buffered and the last of a run flushes them: one DATA write for many.
                var buffered = new WriteOptions(WriteFlags.BufferHint);
                var flushed = new WriteOptions();
                var outbox = _outbox.Reader;
                while (await outbox.WaitToReadAsync())
                {
                    if (!outbox.TryRead(out var request)) continue;
                    while (true)
                    {
                        var more = outbox.TryRead(out var next); // one ahead: a single-reader channel cannot count
                        _call.RequestStream.WriteOptions = more ? buffered : flushed;
                        await _call.RequestStream.WriteAsync(request);
                        if (!more) break;
                        request = next!;
                    }
                }
                await _call.RequestStream.CompleteAsync();
            }
            catch (Exception ex) when (ex is RpcException or InvalidOperationException or IOException)
            {
                Break($"write failed: {ex.Message}");
            }
        }

        private async Task ReadAsync()
        {
            try
            {
                await foreach (var reply in _call.ResponseStream.ReadAllAsync())
                {
                    if (_waiting.TryRemove(reply.TransactionId, out var waiter)) waiter.TrySetResult(reply);
                }
                Break("the server ended the stream");
            }
            catch (Exception ex) when (ex is RpcException or InvalidOperationException or IOException)
            {
                Break($"stream failed: {ex.Message}");
            }
        }

        private void Break(string why)
        {
            _broken ??= why;
            foreach (var id in _waiting.Keys)
            {
                if (_waiting.TryRemove(id, out var waiter)) waiter.TrySetResult(Failed(id, "UNAVAILABLE", why));
            }
        }

        public async ValueTask DisposeAsync()
        {
            _outbox.Writer.TryComplete();
            await Task.WhenAny(_writer, Task.Delay(TimeSpan.FromSeconds(10)));
            await Task.WhenAny(_reader, Task.Delay(TimeSpan.FromSeconds(10)));
            _call.Dispose();
        }
    }
}

/// <summary>The bare gRPC echo: the same message sizes as Authorize/PostingReply, no engine behind it. Requests are built once and reused.</summary>
public sealed class EchoScenario : IScenario, IDisposable
{
    private readonly Grpc.Net.Client.GrpcChannel[] _channels;
    private readonly Echo.Echo.EchoClient[] _clients;
    private readonly Echo.EchoRequest[] _requests;
    private readonly TimeSpan _timeout;

    public EchoScenario(string address, int connections, TimeSpan timeout)
    {
        _channels = [.. Enumerable.Range(0, connections).Select(_ => Engine.CreateChannel(address))];
        _clients = [.. _channels.Select(c => new Echo.Echo.EchoClient(c))];
        _requests = [.. Enumerable.Range(0, 1024).Select(i => new Echo.EchoRequest
        {
            TransactionId = $"lt-echo000000-t{1_000_000 + i}a", CardId = $"lt-echo000000-m{i}-c0", AmountMinor = 123_456 + i, Currency = "RUB", Mcc = 5411,
            MerchantId = $"mer-5411-{i % 200}", OccurredAtSeconds = 1_795_000_000 + i, OccurredAtNanos = 123_000_000,
        })];
        _timeout = timeout;
    }

    public Task SetupAsync(Action<string> progress) => Task.CompletedTask;

    public async Task<OpOutcome> ArrivalAsync(Arrival arrival)
    {
        try
        {
            await _clients[arrival.Index % _clients.Length].PingAsync(_requests[arrival.Index % _requests.Length], deadline: DateTime.UtcNow + _timeout, cancellationToken: arrival.Cancellation);
            arrival.Rpc("Echo.Ping", arrival.IntendedTicks, OpOutcome.OkStatus);
            return OpOutcome.Ok("echo");
        }
        catch (RpcException ex)
        {
            arrival.Rpc("Echo.Ping", arrival.IntendedTicks, Arrival.StatusName(ex.StatusCode));
            return new OpOutcome("echo", Arrival.StatusName(ex.StatusCode));
        }
    }

    public void Dispose()
    {
        foreach (var channel in _channels) channel.Dispose();
    }
}
