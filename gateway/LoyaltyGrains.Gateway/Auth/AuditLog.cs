using System.Threading.Channels;
using Grpc.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LoyaltyGrains.Gateway.Auth;

/// <summary>One audited call: who (subject, roles), what (method, key ids, outcome) and when.</summary>
public sealed record AuditRecord(
    DateTimeOffset At,
    string Subject,
    string Roles,
    string Method,
    string Outcome,
    string MemberId,
    string CardId,
    string PartnerId,
    string CampaignId,
    string TransactionId,
    long? AmountMinor,
    string Detail,
    string Peer)
{
    public static readonly string Node = Environment.MachineName;

    public static AuditRecord Refused(DateTimeOffset at, Caller caller, string method, StatusCode code, string detail, string peer) =>
        new(at, caller.Subject, LoyaltyClaims.Format(caller.Roles), RpcAccess.ShortName(method), StatusName(code), "", "", "", "", "", null, detail, peer);

    /// <summary>"PermissionDenied" → "PERMISSION_DENIED", as gRPC names its codes.</summary>
    public static string StatusName(StatusCode code) => code switch
    {
        StatusCode.OK => "OK",
        StatusCode.Cancelled => "CANCELLED",
        StatusCode.Unknown => "UNKNOWN",
        StatusCode.InvalidArgument => "INVALID_ARGUMENT",
        StatusCode.DeadlineExceeded => "DEADLINE_EXCEEDED",
        StatusCode.NotFound => "NOT_FOUND",
        StatusCode.AlreadyExists => "ALREADY_EXISTS",
        StatusCode.PermissionDenied => "PERMISSION_DENIED",
        StatusCode.ResourceExhausted => "RESOURCE_EXHAUSTED",
        StatusCode.FailedPrecondition => "FAILED_PRECONDITION",
        StatusCode.Aborted => "ABORTED",
        StatusCode.OutOfRange => "OUT_OF_RANGE",
        StatusCode.Unimplemented => "UNIMPLEMENTED",
        StatusCode.Internal => "INTERNAL",
        StatusCode.Unavailable => "UNAVAILABLE",
        StatusCode.DataLoss => "DATA_LOSS",
        StatusCode.Unauthenticated => "UNAUTHENTICATED",
        _ => code.ToString(),
    };
}

/// <summary>Where audit records are kept beyond the log (PostgreSQL mode: the loyalty.audit table).</summary>
public interface IAuditStore
{
    /// <summary>Writes the batch durably (one transaction), or throws; the log retries the same batch.</summary>
    Task WriteAsync(IReadOnlyList<AuditRecord> records, CancellationToken cancellationToken);
}

/// <summary>
/// Every audit record is logged (category LoyaltyGrains.Audit) and, when a store is configured, written to it in
/// batches by one background writer. The queue is bounded by reservation: an audited call takes a slot before it runs
/// and is refused UNAVAILABLE, having changed nothing, when none is free — so a record is never dropped for want of
/// room. An audited call's reply waits for its batch to commit (at most <see cref="DurableWait"/>); a store that
/// fails is retried with the records kept, and records still unwritten at shutdown are logged in full as errors.
/// </summary>
public sealed class AuditLog : BackgroundService
{
    public const string Section = "Loyalty:Audit";
    public const int CapacityDefault = 10_000;
    public const int BatchMax = 500;
    public static readonly TimeSpan DurableWaitDefault = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ShutdownFlushMax = TimeSpan.FromSeconds(10);

    private readonly IAuditStore? _store;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _slots;
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private long _written;
    private long _refusedNoRoom;

    public AuditLog(ILoggerFactory loggers, IEnumerable<IAuditStore> stores, IConfiguration configuration)
    {
        _store = stores.LastOrDefault();
        _logger = loggers.CreateLogger("LoyaltyGrains.Audit");
        Capacity = Math.Max(1, configuration.GetValue($"{Section}:QueueCapacity", CapacityDefault));
        DurableWait = configuration.GetValue($"{Section}:DurableWait", DurableWaitDefault);
        _slots = new SemaphoreSlim(Capacity, Capacity);
    }

    /// <summary>Records queued or being written at most; beyond it audited calls are refused before they run.</summary>
    public int Capacity { get; }
    /// <summary>How long an audited call's reply waits for its record to be stored.</summary>
    public TimeSpan DurableWait { get; }
    public bool Durable => _store is not null;
    public long Written => Interlocked.Read(ref _written);
    public int Queued => Capacity - _slots.CurrentCount;

    /// <summary>A slot for the record of a call about to run; false when the queue is full (refuse the call).</summary>
    public bool TryReserve()
    {
        if (_store is null || _slots.Wait(0)) return true;
        Interlocked.Increment(ref _refusedNoRoom);
        return false;
    }

    /// <summary>Logs the record and queues it in its reserved slot; completes when the store has it (at once without a store).</summary>
    public Task RecordAsync(AuditRecord record)
    {
        Log(record);
        if (_store is null) return Task.CompletedTask;
        var pending = new Pending(record, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        if (!_queue.Writer.TryWrite(pending))
        {
            // Only after shutdown began: the log line above is then the record's only copy; say so.
            _logger.LogError("audit record not stored (shutting down): {Record}", record);
            _slots.Release();
            return Task.CompletedTask;
        }
        return pending.Done.Task;
    }

    /// <summary>A refusal by authentication/authorization (no call ran): logged, and stored when there is room.</summary>
    public void RecordRefusal(AuditRecord record)
    {
        if (_store is not null && !_slots.Wait(0))
        {
            // Refused calls must not be able to crowd out the records of real ones: the log line is its copy.
            _logger.LogWarning("audit queue full: refusal logged only, not stored: {Record}", record);
            return;
        }
        _ = RecordAsync(record);
    }

    private void Log(AuditRecord r) =>
        _logger.LogInformation("audit {Method} {Outcome} by {Subject} ({Roles}) member={MemberId} card={CardId} partner={PartnerId} campaign={CampaignId} tx={TransactionId} amount={AmountMinor} peer={Peer} {Detail}",
            r.Method, r.Outcome, r.Subject, r.Roles, r.MemberId, r.CardId, r.PartnerId, r.CampaignId, r.TransactionId, r.AmountMinor, r.Peer, r.Detail);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_store is null) return;
        var batch = new List<Pending>(BatchMax);
        try
        {
            while (await _queue.Reader.WaitToReadAsync(stoppingToken))
            {
                while (batch.Count < BatchMax && _queue.Reader.TryRead(out var next)) batch.Add(next);
                await WriteWithRetriesAsync(batch, stoppingToken);
                batch.Clear();
            }
        }
        catch (Exception) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping: what is still queued (and the batch in hand) is flushed once more below.
        }
        await FlushAtShutdownAsync(batch);
    }

    private async Task WriteWithRetriesAsync(List<Pending> batch, CancellationToken stoppingToken)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        var failures = 0;
        while (true)
        {
            try
            {
                await _store!.WriteAsync([.. batch.Select(p => p.Record)], stoppingToken);
                Interlocked.Add(ref _written, batch.Count);
                foreach (var pending in batch) pending.Done.TrySetResult();
                _slots.Release(batch.Count);
                if (failures > 0) _logger.LogInformation("audit store writes again after {Failures} failed attempts", failures);
                return;
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                // Kept and retried: the slots stay taken, so a store that stays down fills the queue and audited calls
                // are refused before they run instead of running unaudited. One line when the failure starts (with the
                // stack only when it is not the database being away), the rest at debug: an outage does not flood the log.
                if (failures++ == 0)
                {
                    if (Contracts.Faults.IsUnavailable(ex))
                        _logger.LogWarning("audit store unavailable ({Reason}); {Count} records kept and retried with back-off", ex.GetBaseException().Message, batch.Count);
                    else
                        _logger.LogError(ex, "audit store failed for {Count} records; kept and retried with back-off", batch.Count);
                }
                else
                {
                    _logger.LogDebug("audit store still failing (attempt {Attempt}): {Reason}", failures, ex.GetBaseException().Message);
                }
                await Task.Delay(delay, stoppingToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
        }
    }

    private async Task FlushAtShutdownAsync(List<Pending> batch)
    {
        _queue.Writer.TryComplete();
        while (_queue.Reader.TryRead(out var next)) batch.Add(next);
        if (batch.Count == 0) return;
        using var deadline = new CancellationTokenSource(ShutdownFlushMax);
        try
        {
            await _store!.WriteAsync([.. batch.Select(p => p.Record)], deadline.Token);
            foreach (var pending in batch) pending.Done.TrySetResult();
            return;
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "audit store unavailable at shutdown: {Count} records follow in full", batch.Count);
        }
        foreach (var pending in batch)
        {
            _logger.LogError("audit record not stored: {Record}", pending.Record);
            pending.Done.TrySetResult();
        }
    }

    private sealed record Pending(AuditRecord Record, TaskCompletionSource Done);
}
