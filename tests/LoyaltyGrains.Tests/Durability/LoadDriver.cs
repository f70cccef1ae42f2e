using System.Collections.Concurrent;
using System.Diagnostics;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.Tests.Durability;

/// <summary>A member with one card, posted to by one worker.</summary>
public sealed record LoadMember(string MemberId, string CardId);

/// <summary>A message the engine acknowledged, with the reply a later retry must repeat and the way to send it again.</summary>
public sealed record Acknowledged(string TransactionId, string MemberId, PostingReply Reply, Func<Processing.ProcessingClient, DateTime, Task<PostingReply>> Send);

/// <summary>
/// One call as the processor saw it: when it started and ended (on <see cref="LoadDriver.Elapsed"/>), and either the
/// reply's status (acknowledged) or the gRPC status it failed with.
/// </summary>
public readonly record struct Attempt(int Worker, string TransactionId, int Try, TimeSpan StartedAt, TimeSpan EndedAt, PostingStatus? Reply, StatusCode? Failure)
{
    public bool IsAcknowledged => Reply is not null;
    public bool IsAccepted => Reply == PostingStatus.Accepted;
}

/// <summary>
/// Card processors under load: one worker per member posts authorize+capture pairs, each call with a client deadline.
/// A call whose outcome is unknown (any status but a definite refusal) is retried with the same transaction id and
/// back-off, as a real processor does, until it is acknowledged or the run ends; so a fault shows both what callers
/// were told and when writes were accepted again. Every call is recorded as an <see cref="Attempt"/>.
/// </summary>
public sealed class LoadDriver : IAsyncDisposable
{
    private static readonly TimeSpan BackoffFirst = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan BackoffMax = TimeSpan.FromSeconds(1);

    // One client per channel (e.g. one per gateway); calls go round-robin, so a retry goes to the next one.
    private readonly Processing.ProcessingClient[] _processing;
    private readonly IReadOnlyList<LoadMember> _members;
    private readonly TimeSpan _deadline;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly ConcurrentQueue<Acknowledged> _acknowledged = new();
    private readonly ConcurrentQueue<Attempt> _attempts = new();
    private readonly ConcurrentDictionary<string, byte> _unresolved = new();
    private readonly CancellationTokenSource _noNewWork = new();
    private readonly CancellationTokenSource _giveUp = new();
    private Task[] _workers = [];
    private bool _stopped;
    private int _calls;

    public LoadDriver(GrpcChannel channel, IReadOnlyList<LoadMember> members, TimeSpan deadline)
        : this([channel], members, deadline)
    {
    }

    /// <summary>Load spread over several endpoints of one engine (gateways), call by call, round-robin.</summary>
    public LoadDriver(IReadOnlyList<GrpcChannel> channels, IReadOnlyList<LoadMember> members, TimeSpan deadline)
    {
        if (channels.Count == 0) throw new ArgumentException("at least one channel", nameof(channels));
        _processing = [.. channels.Select(c => new Processing.ProcessingClient(c))];
        _members = members;
        _deadline = deadline;
    }

    /// <summary>Each worker's pause between one purchase (authorize+capture) and the next; none by default.</summary>
    public TimeSpan Pace { get; init; }

    /// <summary>The run's clock: attempts and the caller's marks (fault start and end) are on it.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    public IReadOnlyList<LoadMember> Members => _members;
    public IReadOnlyCollection<Acknowledged> Acknowledged => _acknowledged;
    public IReadOnlyList<Attempt> Attempts => [.. _attempts];

    /// <summary>Transactions tried but never acknowledged by the end of the run: their outcome is unknown.</summary>
    public IReadOnlyCollection<string> Unresolved => [.. _unresolved.Keys];

    /// <summary>Enrolls <paramref name="count"/> members with one card each (ids start with <paramref name="prefix"/>).</summary>
    public static async Task<IReadOnlyList<LoadMember>> EnrollAsync(GrpcChannel channel, string prefix, int count)
    {
        var admin = new Admin.AdminClient(channel);
        var members = Enumerable.Range(0, count).Select(i => new LoadMember($"{prefix}-m{i}", $"{prefix}-c{i}")).ToArray();
        foreach (var member in members)
        {
            await admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = member.MemberId }, deadline: DateTime.UtcNow.AddSeconds(30));
            await admin.IssueCardAsync(new IssueCardRequest { CardId = member.CardId, MemberId = member.MemberId }, deadline: DateTime.UtcNow.AddSeconds(30));
        }
        return members;
    }

    public void Start()
    {
        if (_workers.Length > 0) throw new InvalidOperationException("already started");
        _workers = [.. _members.Select((member, w) => Task.Run(() => WorkAsync(w, member)))];
    }

    /// <summary>
    /// Starts no new transaction; the one each worker is on is still retried for up to <paramref name="drain"/>
    /// (zero: given up at once, e.g. after kill -9), then left unresolved. Returns when every worker has stopped.
    /// </summary>
    public async Task StopAsync(TimeSpan drain)
    {
        if (_stopped) return;
        _stopped = true;
        await _noNewWork.CancelAsync();
        _giveUp.CancelAfter(drain);
        // Every call has a deadline and every back-off ends on _giveUp, so this is bounded by drain + one deadline.
        await Task.WhenAll(_workers);
        _giveUp.Dispose();
        _noNewWork.Dispose();
    }

    /// <summary>A test that failed before stopping the load does not leave workers posting to the next test's silo.</summary>
    public async ValueTask DisposeAsync() => await StopAsync(TimeSpan.Zero);

    /// <summary>Waits until <paramref name="done"/> holds or <paramref name="timeout"/> passes (checked every 100 ms).</summary>
    public async Task<bool> WaitUntilAsync(Func<LoadDriver, bool> done, TimeSpan timeout)
    {
        var until = Elapsed + timeout;
        while (!done(this))
        {
            if (Elapsed >= until) return false;
            await Task.Delay(100);
        }
        return true;
    }

    private async Task WorkAsync(int worker, LoadMember member)
    {
        var at = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-1));
        // Seeded: the same workers back off in the same pattern in every run.
        var random = new Random(worker);
        for (var n = 0; !_noNewWork.IsCancellationRequested; n++)
        {
            var authorize = new AuthorizeRequest
            {
                TransactionId = $"{member.MemberId}-t{n}", CardId = member.CardId, AmountMinor = 10_000 + n, Currency = "RUB", Mcc = 5411,
                MerchantId = "shop", OccurredAt = at,
            };
            var capture = new CaptureRequest
            {
                TransactionId = $"{authorize.TransactionId}-c", AuthorizationId = authorize.TransactionId, CardId = member.CardId, AmountMinor = authorize.AmountMinor,
                OccurredAt = at,
            };
            if (!await DeliverAsync(worker, member, authorize.TransactionId, (c, d) => c.AuthorizeAsync(authorize, deadline: d).ResponseAsync, random)) continue;
            await DeliverAsync(worker, member, capture.TransactionId, (c, d) => c.CaptureAsync(capture, deadline: d).ResponseAsync, random);
            if (Pace > TimeSpan.Zero) await PauseAsync(Pace, _noNewWork.Token);
        }
    }

    /// <summary>Sends until acknowledged (true), definitely refused (false) or given up (false, left unresolved).</summary>
    private async Task<bool> DeliverAsync(int worker, LoadMember member, string id, Func<Processing.ProcessingClient, DateTime, Task<PostingReply>> send, Random random)
    {
        _unresolved[id] = 0;
        var backoff = BackoffFirst;
        for (var attempt = 0; ; attempt++)
        {
            var started = Elapsed;
            try
            {
                var client = _processing[(int)((uint)Interlocked.Increment(ref _calls) % _processing.Length)];
                var reply = await send(client, DateTime.UtcNow + _deadline);
                _attempts.Enqueue(new Attempt(worker, id, attempt, started, Elapsed, reply.Status, null));
                _acknowledged.Enqueue(new Acknowledged(id, member.MemberId, reply, send));
                _unresolved.TryRemove(id, out _);
                return true;
            }
            catch (RpcException ex)
            {
                _attempts.Enqueue(new Attempt(worker, id, attempt, started, Elapsed, null, ex.StatusCode));
                if (IsRefusal(ex.StatusCode))
                {
                    // Not applied: the processor would not retry it. A short pause so a refusing engine is not spun on.
                    _unresolved.TryRemove(id, out _);
                    await PauseAsync(BackoffFirst);
                    return false;
                }
            }
            if (_giveUp.IsCancellationRequested) return false;
            // Full jitter: workers that failed together do not retry together.
            await PauseAsync(TimeSpan.FromMilliseconds(random.Next((int)backoff.TotalMilliseconds + 1)));
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, BackoffMax.Ticks));
            if (_giveUp.IsCancellationRequested) return false;
        }
    }

    private Task PauseAsync(TimeSpan pause) => PauseAsync(pause, _giveUp.Token);

    private static async Task PauseAsync(TimeSpan pause, CancellationToken cancel)
    {
        try
        {
            await Task.Delay(pause, cancel);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Statuses that say the message was not applied and never will be: a retry would be refused the same way.</summary>
    public static bool IsRefusal(StatusCode status) => status is StatusCode.InvalidArgument or StatusCode.NotFound or StatusCode.AlreadyExists
        or StatusCode.FailedPrecondition or StatusCode.PermissionDenied or StatusCode.Unimplemented or StatusCode.OutOfRange;
}
