using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using Grpc.Core;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.LoadTests;

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
    internal sealed class PostStream : IAsyncDisposable
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
