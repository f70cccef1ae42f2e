using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Threading.Channels;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains.Ledger;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace LoyaltyGrains.Persistence;

public sealed record PostgresLedgerOptions
{
    /// <summary>Entries in one commit at most. Large enough to amortise the fsync, small enough to bound latency.</summary>
    public int BatchEntriesMax { get; init; } = 2_000;

    /// <summary>How long a writer waits for more entries before committing a small batch (0: commit at once).</summary>
    public TimeSpan BatchDelayMax { get; init; } = TimeSpan.Zero;

    /// <summary>Writers committing at the same time: while one waits for its fsync, the next batch forms and goes.</summary>
    public int Writers { get; init; } = 2;

    /// <summary>Appends waiting for a writer at most; further appends wait (back-pressure on the grains).</summary>
    public int QueueAppendsMax { get; init; } = 20_000;

    /// <summary>
    /// How long an append waits for its commit at most, queue included; past it the caller answers UNAVAILABLE (the outcome
    /// may be unknown) instead of holding a processor for as long as the database is stuck. A caller's shorter deadline wins.
    /// </summary>
    public TimeSpan CommitTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>First pause before reaching the database again after a failure; it doubles up to <see cref="RetryDelayMax"/>.</summary>
    public TimeSpan RetryDelayMin { get; init; } = TimeSpan.FromMilliseconds(100);

    public TimeSpan RetryDelayMax { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// The options from configuration section <c>Loyalty:Ledger</c> (<c>CommitTimeout</c>, <c>BatchDelayMax</c>,
    /// <c>Writers</c>, <c>BatchEntriesMax</c>); a setting left out keeps its default.
    /// </summary>
    public static PostgresLedgerOptions From(IConfiguration configuration)
    {
        var section = configuration.GetSection("Loyalty:Ledger");
        var defaults = new PostgresLedgerOptions();
        var options = defaults with
        {
            CommitTimeout = section.GetValue("CommitTimeout", defaults.CommitTimeout),
            BatchDelayMax = section.GetValue("BatchDelayMax", defaults.BatchDelayMax),
            Writers = section.GetValue("Writers", defaults.Writers),
            BatchEntriesMax = section.GetValue("BatchEntriesMax", defaults.BatchEntriesMax),
        };
        if (options.CommitTimeout <= TimeSpan.Zero) throw new InvalidOperationException("Loyalty:Ledger:CommitTimeout must be positive");
        if (options.BatchDelayMax < TimeSpan.Zero || options.BatchDelayMax >= options.CommitTimeout)
            throw new InvalidOperationException("Loyalty:Ledger:BatchDelayMax must be zero or more and below CommitTimeout");
        if (options.Writers is < 1 or > 16) throw new InvalidOperationException("Loyalty:Ledger:Writers must be 1..16");
        if (options.BatchEntriesMax is < 1 or > 100_000) throw new InvalidOperationException("Loyalty:Ledger:BatchEntriesMax must be 1..100000");
        return options;
    }
}

/// <summary>
/// The ledger on PostgreSQL with a silo-wide group commit: appends from many member grains queue here, a few
/// writers each take what is queued (up to <see cref="PostgresLedgerOptions.BatchEntriesMax"/>) and write it with one
/// prepared statement (keys and rows together, its own transaction), and every caller's task completes only after the commit.
/// One append (one member change) is all-or-nothing. A unique violation in a batch makes the writer redo that batch
/// one append per transaction, so only the offending caller gets its <see cref="LedgerConflictException"/>.
/// <para>
/// Faults: when the connection breaks (server restart, terminated backend, network) the writer does not know whether
/// its batch committed. It reconnects with back-off on a fresh connection and a freshly prepared statement, asks the
/// ledger which of the batch's appends are there (one statement commits all or none), completes those, and writes the
/// rest again — unless their callers have given up (see <see cref="PostgresLedgerOptions.CommitTimeout"/>), in which case
/// they answered UNAVAILABLE and the processor's retry decides again. One warning per outage, one line on recovery.
/// </para>
/// </summary>
public sealed class PostgresLedger : ILedger, IAsyncDisposable
{
    private static readonly Meter Meter = new(LoyaltyGrains.Grains.LoyaltyMetrics.MeterName, "1.0");
    private static readonly Histogram<double> BatchWriteSeconds = LoyaltyGrains.Grains.LoyaltyMetrics.Seconds(Meter, "loyalty.ledger.batch.write.duration",
        "Time a writer took to write and commit one batch (one INSERT of keys and rows, committed with its fsync)");
    private static readonly Histogram<double> QueueWaitSeconds = LoyaltyGrains.Grains.LoyaltyMetrics.Seconds(Meter, "loyalty.ledger.queue.wait",
        "Time the oldest append of a batch waited in the queue before a writer took it");
    private static readonly Histogram<long> BatchEntries = Meter.CreateHistogram<long>("loyalty.ledger.batch.entries", "{entry}",
        "Entries in one committed batch (the achieved group size)");

    private static readonly TimeSpan PartitionCheckInterval = TimeSpan.FromHours(6);
    private const int PartitionMonthsAhead = 3;

    private readonly NpgsqlDataSource _source;
    // The health probe's own single connection: it asks whether PostgreSQL answers, and must not queue behind a busy pool
    // (a node replaying members after a restart would otherwise call itself unready exactly while it catches up).
    private readonly NpgsqlDataSource _probeSource;
    private readonly PostgresLedgerOptions _options;
    private readonly ILogger _logger;
    private readonly PostgresAvailability _availability;
    private int _disposed;
    private readonly Channel<PendingAppend> _queue;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task[] _writers;
    private readonly Task _partitions;
    private long _batches;
    private long _entries;

    public PostgresLedger(string connectionString, PostgresLedgerOptions options, ILogger<PostgresLedger> logger, PostgresAvailability? availability = null)
    {
        _options = options;
        _logger = logger;
        _availability = availability ?? new PostgresAvailability(logger);
        _source = NpgsqlDataSource.Create(PostgresHosting.Tune(connectionString));
        _probeSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(PostgresHosting.Tune(connectionString))
        {
            MaxPoolSize = 1, MinPoolSize = 0, ApplicationName = "loyalty-health",
        }.ConnectionString);
        _queue = Channel.CreateBounded<PendingAppend>(new BoundedChannelOptions(options.QueueAppendsMax)
        {
            FullMode = BoundedChannelFullMode.Wait, SingleReader = false, SingleWriter = false,
        });
        _writers = [.. Enumerable.Range(0, options.Writers).Select(i => Task.Run(() => WriterLoopAsync(i)))];
        _partitions = Task.Run(KeepPartitionsAheadAsync);
    }

    /// <summary>Batches committed and entries in them since start: the achieved group size is entries / batches.</summary>
    public (long Batches, long Entries) Committed => (Interlocked.Read(ref _batches), Interlocked.Read(ref _entries));

    /// <summary>Whether the database answered the last time anyone here asked (writers, reads, <see cref="PingAsync"/>).</summary>
    public PostgresAvailability Availability => _availability;

    public async Task AppendAsync(IReadOnlyList<LedgerEntry> entries, CancellationToken cancellationToken = default)
    {
        if (entries.Count == 0) return;
        var append = new PendingAppend(entries);
        try
        {
            // Fast path: room in the queue. Otherwise wait for room, but never past the commit bound.
            if (!_queue.Writer.TryWrite(append))
            {
                using var room = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                room.CancelAfter(_options.CommitTimeout);
                await _queue.Writer.WriteAsync(append, room.Token).ConfigureAwait(false);
            }
            var waitMax = _options.CommitTimeout - Stopwatch.GetElapsedTime(append.EnqueuedAt);
            await append.Done.Task.WaitAsync(waitMax > TimeSpan.Zero ? waitMax : TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException or ChannelClosedException)
        {
            // Still queued: it will never be written, so the caller knows it did not commit. Taken by a writer: unknown.
            var notCommitted = append.Abandon();
            throw new LedgerUnavailableException(notCommitted, notCommitted
                ? "the ledger could not take the message in time (database unreachable or slow); it was not recorded"
                : "the ledger did not confirm the commit in time (database unreachable or slow); the outcome is unknown", ex);
        }
    }

    /// <summary>
    /// A cheap round trip for health checks; false when the database does not answer within the time given. A failure
    /// on a pooled connection that died (terminated backend, restarted server) empties the pool of its idle connections
    /// and asks once more on a fresh one, so one dead connection does not read as an outage.
    /// </summary>
    public async Task<bool> PingAsync(TimeSpan timeout)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var command = _probeSource.CreateCommand("SELECT 1");
                await command.ExecuteScalarAsync().WaitAsync(timeout).ConfigureAwait(false);
                _availability.ReportSuccess();
                return true;
            }
            catch (Exception ex) when (attempt == 1 && PostgresFaults.IsUnavailable(ex) && ex is not TimeoutException)
            {
                // The probe's idle connection died with the outage, and the ledger's idle ones most likely did too
                // (ClearAllPools does not reach data sources): one fresh try before saying "unreachable".
                _probeSource.Clear();
                _source.Clear();
            }
            catch (Exception ex) when (PostgresFaults.IsUnavailable(ex) || ex is TimeoutException)
            {
                _availability.ReportFailure("health probe", ex);
                return false;
            }
        }
    }

    public Task<IReadOnlyList<LedgerEntry>> ReadMemberAsync(string memberId, long afterSequence, CancellationToken cancellationToken = default) =>
        ReadWhereAsync("member_id = $1 AND sequence > $2 ORDER BY sequence", cancellationToken, memberId, afterSequence);

    public Task<IReadOnlyList<LedgerEntry>> ReadMemberPageAsync(string memberId, long beforeSequence, int limit, CancellationToken cancellationToken = default) =>
        ReadWhereAsync("member_id = $1 AND sequence < $2 ORDER BY sequence DESC LIMIT $3", cancellationToken, memberId, beforeSequence, limit);

    // The primary key's (member_id, sequence) prefix bounds the scan to the member's rows from the purchase's first one
    // (its authorization, or the row its reference named); no index on purchase_id is needed for this rare read.
    public Task<IReadOnlyList<LedgerEntry>> ReadPurchaseAsync(string memberId, string purchaseId, long fromSequence, CancellationToken cancellationToken = default) =>
        ReadWhereAsync("member_id = $1 AND sequence >= $2 AND purchase_id = $3 ORDER BY sequence", cancellationToken, memberId, fromSequence, purchaseId);

    /// <summary>The ledger rows matching a condition on positional parameters, with every column.</summary>
    private async Task<IReadOnlyList<LedgerEntry>> ReadWhereAsync(string condition, CancellationToken cancellationToken, params object[] values)
    {
        await using var command = _source.CreateCommand($"SELECT {LedgerColumns.Names()} FROM loyalty.ledger WHERE {condition}");
        foreach (var value in values) command.Parameters.Add(new NpgsqlParameter { Value = value });
        return await ReadEntriesAsync(command, cancellationToken);
    }

    public async Task<LedgerEntry?> FindAsync(string messageId, CancellationToken cancellationToken = default)
    {
        await using var command = _source.CreateCommand(
            $"""
            SELECT {LedgerColumns.Names("l")}
              FROM loyalty.ledger_keys k
              JOIN loyalty.ledger l ON l.member_id = k.member_id AND l.sequence = k.sequence AND l.recorded_at = k.recorded_at
             WHERE k.message_id = $1
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = messageId });
        var found = await ReadEntriesAsync(command, cancellationToken);
        return found.Count == 0 ? null : found[0];
    }

    /// <summary>Stops taking appends, lets the writers finish what is queued (bounded), then closes. Safe to call twice.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _queue.Writer.TryComplete();
        try
        {
            await Task.WhenAll(_writers).WaitAsync(_options.CommitTimeout + _options.RetryDelayMax).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _logger.LogWarning("Ledger writers did not drain within {Timeout}; their callers already answered UNAVAILABLE", _options.CommitTimeout);
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll([.. _writers, _partitions]).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or TimeoutException)
        {
        }
        await _source.DisposeAsync().ConfigureAwait(false);
        await _probeSource.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    // ------------------------------------------------------------------ writers

    private async Task WriterLoopAsync(int writer)
    {
        var batch = new List<PendingAppend>();
        using var rows = new RowBuffer();
        NpgsqlConnection? connection = null;
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                batch.Clear();
                var entries = await TakeBatchAsync(reader, batch).ConfigureAwait(false);
                if (batch.Count == 0) continue;
                QueueWaitSeconds.Record(Stopwatch.GetElapsedTime(batch[0].EnqueuedAt).TotalSeconds);
                connection = await CommitWithRecoveryAsync(writer, connection, rows, batch, entries).ConfigureAwait(false);
            }
        }
        finally
        {
            if (connection is not null) await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Takes what is queued (up to the batch bound), waiting up to BatchDelayMax for more; skips appends whose callers gave up.</summary>
    private async Task<int> TakeBatchAsync(ChannelReader<PendingAppend> reader, List<PendingAppend> batch)
    {
        var entries = 0;
        while (entries < _options.BatchEntriesMax && reader.TryRead(out var append))
        {
            if (!append.TryClaim()) continue;
            batch.Add(append);
            entries += append.Entries.Count;
        }
        if (_options.BatchDelayMax <= TimeSpan.Zero || entries >= _options.BatchEntriesMax) return entries;
        using var delay = new CancellationTokenSource(_options.BatchDelayMax);
        try
        {
            while (entries < _options.BatchEntriesMax && await reader.WaitToReadAsync(delay.Token).ConfigureAwait(false))
            {
                while (entries < _options.BatchEntriesMax && reader.TryRead(out var append))
                {
                    if (!append.TryClaim()) continue;
                    batch.Add(append);
                    entries += append.Entries.Count;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        return entries;
    }

    /// <summary>
    /// Writes one batch, through any number of connection failures: after a failure the outcome is unknown, so the next
    /// attempt first asks which appends committed. Returns the connection to keep using (null when it was dropped).
    /// </summary>
    private async Task<NpgsqlConnection?> CommitWithRecoveryAsync(int writer, NpgsqlConnection? connection, RowBuffer rows, List<PendingAppend> batch, int entries)
    {
        var failures = 0;
        while (true)
        {
            try
            {
                connection ??= await _source.OpenConnectionAsync().ConfigureAwait(false);
                if (failures > 0)
                {
                    await CompleteCommittedAsync(connection, batch).ConfigureAwait(false);
                    _availability.ReportSuccess();
                    batch.RemoveAll(append => append.DropIfCallerGone());
                    if (batch.Count == 0) return connection;
                    entries = batch.Sum(append => append.Entries.Count);
                }
                var started = Stopwatch.GetTimestamp();
                await CommitBatchAsync(connection, rows, batch).ConfigureAwait(false);
                BatchWriteSeconds.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
                BatchEntries.Record(entries);
                Interlocked.Increment(ref _batches);
                Interlocked.Add(ref _entries, entries);
                foreach (var append in batch) append.Complete();
                _availability.ReportSuccess();
                return connection;
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation)
            {
                // Rare: a reused transaction id or a second writer of a member. Fail only the appends that conflict.
                await CommitAroundConflictsAsync(connection!, rows, batch).ConfigureAwait(false);
                if (connection!.State == System.Data.ConnectionState.Open) return connection;
                await DropAsync(connection, rows).ConfigureAwait(false);
                return null;
            }
            catch (Exception ex) when (PostgresFaults.IsUnavailable(ex) && !_stopping.IsCancellationRequested)
            {
                _availability.ReportFailure($"ledger writer {writer}", ex);
                // The pool's idle connections most likely died with this one: the next attempts get fresh ones.
                _source.Clear();
                await DropAsync(connection, rows).ConfigureAwait(false);
                connection = null;
                failures++;
                try
                {
                    await Task.Delay(RetryDelay(failures), _stopping.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    FailAll(batch, new LedgerUnavailableException(notCommitted: false, "the ledger is stopping; the outcome is unknown", ex));
                    return null;
                }
            }
            catch (Exception ex)
            {
                // Not a lost connection: the statement itself failed, so nothing of it committed. A bug or a broken invariant.
                _logger.LogError(ex, "Ledger writer {Writer}: a batch of {Entries} entries failed; its {Appends} callers get the error", writer, entries, batch.Count);
                FailAll(batch, failures == 0 ? ex : new LedgerUnavailableException(notCommitted: false, "the ledger write failed after a lost connection; the outcome is unknown", ex));
                await DropAsync(connection, rows).ConfigureAwait(false);
                return null;
            }
        }
    }

    private TimeSpan RetryDelay(int failures)
    {
        var ticks = _options.RetryDelayMin.Ticks << Math.Min(failures - 1, 16);
        return TimeSpan.FromTicks(Math.Min(ticks, _options.RetryDelayMax.Ticks));
    }

    /// <summary>Completes the appends whose rows are in the ledger: an append commits whole, so its first message id tells.</summary>
    private static async Task CompleteCommittedAsync(NpgsqlConnection connection, List<PendingAppend> batch)
    {
        await using var command = new NpgsqlCommand("SELECT message_id FROM loyalty.ledger_keys WHERE message_id = ANY($1)", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = batch.Select(append => append.Entries[0].MessageId).ToArray() });
        var committed = new HashSet<string>(StringComparer.Ordinal);
        await using (var reader = await command.ExecuteReaderAsync().ConfigureAwait(false))
        {
            while (await reader.ReadAsync().ConfigureAwait(false)) committed.Add(reader.GetString(0));
        }
        if (committed.Count == 0) return;
        batch.RemoveAll(append =>
        {
            if (!committed.Contains(append.Entries[0].MessageId)) return false;
            append.Complete();
            return true;
        });
    }

    private static void FailAll(List<PendingAppend> batch, Exception error)
    {
        foreach (var append in batch) append.Fail(error);
    }

    private static async Task DropAsync(NpgsqlConnection? connection, RowBuffer rows)
    {
        rows.Forget();
        if (connection is null) return;
        try
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (PostgresFaults.IsUnavailable(ex))
        {
        }
    }

    private static async Task CommitBatchAsync(NpgsqlConnection connection, RowBuffer rows, List<PendingAppend> batch)
    {
        // One statement, no explicit transaction: it commits on its own, so a batch costs one round trip (and its fsync).
        rows.Fill(batch);
        var insert = await rows.CommandAsync(connection).ConfigureAwait(false);
        await insert.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// After a unique violation: one query finds which appends conflict (a message id or a member sequence already in the
    /// ledger, or taken by an earlier append of the same batch), those fail with their conflict, and the rest commit as
    /// one batch again — a few round trips, not one transaction per append. Should another writer race in between,
    /// it tries again, and in the end falls back to one append per transaction.
    /// </summary>
    private async Task CommitAroundConflictsAsync(NpgsqlConnection connection, RowBuffer rows, List<PendingAppend> batch)
    {
        for (var attempt = 0; attempt < 3; attempt++)
        {
            foreach (var (append, conflict) in await FindConflictsAsync(connection, batch).ConfigureAwait(false))
            {
                append.Fail(conflict);
                batch.Remove(append);
            }
            if (batch.Count == 0) return;
            try
            {
                await CommitBatchAsync(connection, rows, batch).ConfigureAwait(false);
                Interlocked.Increment(ref _batches);
                Interlocked.Add(ref _entries, batch.Sum(append => append.Entries.Count));
                foreach (var append in batch) append.Complete();
                return;
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation)
            {
            }
        }
        await CommitOneByOneAsync(connection, rows, batch).ConfigureAwait(false);
    }

    private static async Task<List<(PendingAppend Append, LedgerConflictException Conflict)>> FindConflictsAsync(NpgsqlConnection connection, List<PendingAppend> batch)
    {
        var entries = batch.SelectMany(append => append.Entries).ToArray();
        await using var command = new NpgsqlCommand(
            """
            SELECT message_id, member_id, sequence FROM loyalty.ledger_keys
             WHERE message_id = ANY($1) OR (member_id, sequence) IN (SELECT * FROM unnest($2::text[], $3::bigint[]))
            """, connection);
        command.Parameters.Add(new NpgsqlParameter { Value = entries.Select(e => e.MessageId).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = entries.Select(e => e.MemberId).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = entries.Select(e => e.Sequence).ToArray() });
        var takenIds = new HashSet<string>(StringComparer.Ordinal);
        var takenSequences = new HashSet<(string, long)>();
        await using (var reader = await command.ExecuteReaderAsync().ConfigureAwait(false))
        {
            while (await reader.ReadAsync().ConfigureAwait(false))
            {
                takenIds.Add(reader.GetString(0));
                takenSequences.Add((reader.GetString(1), reader.GetInt64(2)));
            }
        }
        var conflicts = new List<(PendingAppend, LedgerConflictException)>();
        foreach (var append in batch)
        {
            // Checked before this append claims its own keys, so a duplicate inside the batch fails the later append only.
            if (append.Entries.FirstOrDefault(e => takenIds.Contains(e.MessageId)) is { } reused)
            {
                conflicts.Add((append, new LedgerConflictException(LedgerConflictKind.MessageId, reused.MessageId, $"message id '{reused.MessageId}' is already in the ledger")));
            }
            else if (append.Entries.FirstOrDefault(e => takenSequences.Contains((e.MemberId, e.Sequence))) is { } overtaken)
            {
                conflicts.Add((append, new LedgerConflictException(LedgerConflictKind.Sequence, append.Entries[0].MessageId,
                    $"member '{overtaken.MemberId}' already has sequence {overtaken.Sequence}: another activation wrote it")));
            }
            else
            {
                foreach (var entry in append.Entries)
                {
                    takenIds.Add(entry.MessageId);
                    takenSequences.Add((entry.MemberId, entry.Sequence));
                }
            }
        }
        return conflicts;
    }

    private async Task CommitOneByOneAsync(NpgsqlConnection connection, RowBuffer rows, List<PendingAppend> batch)
    {
        foreach (var append in batch)
        {
            try
            {
                await using var transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
                var taken = await TakenMessageIdAsync(connection, append.Entries).ConfigureAwait(false);
                if (taken is not null)
                {
                    await transaction.RollbackAsync().ConfigureAwait(false);
                    append.Fail(new LedgerConflictException(LedgerConflictKind.MessageId, taken, $"message id '{taken}' is already in the ledger"));
                    continue;
                }
                rows.Fill([append]);
                var insert = await rows.CommandAsync(connection).ConfigureAwait(false);
                insert.Transaction = transaction;
                await insert.ExecuteNonQueryAsync().ConfigureAwait(false);
                insert.Transaction = null;
                await transaction.CommitAsync().ConfigureAwait(false);
                Interlocked.Increment(ref _batches);
                Interlocked.Add(ref _entries, append.Entries.Count);
                append.Complete();
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation)
            {
                var first = append.Entries[0];
                append.Fail(new LedgerConflictException(LedgerConflictKind.Sequence, first.MessageId,
                    $"member '{first.MemberId}' already has sequence {first.Sequence}: another activation wrote it", ex));
            }
            catch (Exception ex) when (PostgresFaults.IsUnavailable(ex))
            {
                // The connection went mid-way: this append and the rest have an unknown outcome; the processor retries.
                _availability.ReportFailure("ledger writer", ex);
                var unknown = new LedgerUnavailableException(notCommitted: false, "the connection to the ledger was lost; the outcome is unknown", ex);
                foreach (var rest in batch) rest.Fail(unknown);
                return;
            }
            catch (Exception ex)
            {
                append.Fail(ex);
            }
        }
    }

    private static async Task<string?> TakenMessageIdAsync(NpgsqlConnection connection, IReadOnlyList<LedgerEntry> entries)
    {
        await using var command = new NpgsqlCommand("SELECT message_id FROM loyalty.ledger_keys WHERE message_id = ANY($1) LIMIT 1", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = entries.Select(e => e.MessageId).ToArray() });
        return await command.ExecuteScalarAsync().ConfigureAwait(false) as string;
    }

    // ------------------------------------------------------------------ reads and upkeep

    /// <summary>Reads entries; a lost connection is reported (once per outage) and surfaces as an unavailable ledger.</summary>
    private async Task<IReadOnlyList<LedgerEntry>> ReadEntriesAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        try
        {
            var entries = await ReadRowsAsync(command, cancellationToken).ConfigureAwait(false);
            _availability.ReportSuccess();
            return entries;
        }
        catch (Exception ex) when (PostgresFaults.IsUnavailable(ex))
        {
            _source.Clear();
            _availability.ReportFailure("ledger read", ex);
            throw new LedgerUnavailableException(notCommitted: true, "the ledger cannot be read: the database is unreachable", ex);
        }
    }

    private static async Task<IReadOnlyList<LedgerEntry>> ReadRowsAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var entries = new List<LedgerEntry>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            entries.Add(LedgerColumns.Read(reader));
        }
        return entries;
    }

    /// <summary>Keeps monthly partitions created ahead, so rows never land in the DEFAULT partition.</summary>
    private async Task KeepPartitionsAheadAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await using var command = _source.CreateCommand("SELECT loyalty.ensure_ledger_partitions(now(), $1)");
                command.Parameters.Add(new NpgsqlParameter { Value = PartitionMonthsAhead });
                await command.ExecuteScalarAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                _logger.LogWarning(ex, "Creating ledger partitions ahead failed; rows go to the DEFAULT partition until it succeeds");
            }
            await Task.Delay(PartitionCheckInterval, _stopping.Token).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A writer's reusable column buffers and its prepared statement: the whole batch goes as one array parameter per
    /// column (<see cref="LedgerColumns"/>) to one <c>INSERT … SELECT FROM unnest(…)</c> that also fills <c>ledger_keys</c>
    /// and the partner outbox (data-modifying CTEs), so a batch is one round trip and one implicit transaction.
    /// Converters are resolved once per array, not once per field.
    /// </summary>
    private sealed class RowBuffer : IDisposable
    {
        private readonly ILedgerColumnBuffer[] _columns = [.. LedgerColumns.All.Select(column => column.NewBuffer())];

        private static readonly string InsertSql = BuildInsertSql();

        private readonly PartnerOutboxRows _events = new();
        private NpgsqlCommand? _command;

        public void Fill(IReadOnlyList<PendingAppend> batch)
        {
            foreach (var column in _columns) column.Clear();
            _events.Clear();
            foreach (var append in batch)
            {
                foreach (var entry in append.Entries)
                {
                    foreach (var column in _columns) column.Add(entry);
                    _events.Add(entry);
                }
            }
        }

        /// <summary>The statement, prepared once per connection (the server keeps its plan).</summary>
        public async ValueTask<NpgsqlCommand> CommandAsync(NpgsqlConnection connection)
        {
            if (_command is not null && _command.Connection == connection) return _command;
            _command?.Dispose();
            _command = new NpgsqlCommand(InsertSql, connection);
            foreach (var column in _columns) _command.Parameters.Add(column.Parameter);
            _command.Parameters.AddRange(_events.Parameters);
            await _command.PrepareAsync().ConfigureAwait(false);
            return _command;
        }

        /// <summary>
        /// The connection was dropped: prepare again on the next one. The parameters are detached from the old command
        /// first — a parameter belongs to one command at a time, and the next command reuses them.
        /// </summary>
        public void Forget()
        {
            _command?.Parameters.Clear();
            _command?.Dispose();
            _command = null;
        }

        public void Dispose() => Forget();

        private static string BuildInsertSql() => $"""
            WITH keys AS (
                INSERT INTO loyalty.ledger_keys (message_id, member_id, sequence, recorded_at)
                SELECT * FROM unnest({LedgerColumns.ArrayParameter("message_id")}, {LedgerColumns.ArrayParameter("member_id")},
                                     {LedgerColumns.ArrayParameter("sequence")}, {LedgerColumns.ArrayParameter("recorded_at")})),
            {PartnerOutboxRows.Cte(LedgerColumns.All.Length + 1)}
            INSERT INTO loyalty.ledger ({LedgerColumns.Names()})
            SELECT * FROM unnest({LedgerColumns.ArrayParameters()})
            """;
    }

    /// <summary>
    /// One caller's entries on their way to the database. A writer claims it before writing; a caller that gives up
    /// before that drops it, so it is known never to commit. A caller that gives up while it is being written leaves an
    /// unknown outcome, and the writer does not write it again after a failure.
    /// </summary>
    private sealed class PendingAppend(IReadOnlyList<LedgerEntry> entries)
    {
        private const int Queued = 0, Claimed = 1, Dropped = 2;
        private int _state;
        private volatile bool _callerGone;

        public IReadOnlyList<LedgerEntry> Entries { get; } = entries;

        public long EnqueuedAt { get; } = Stopwatch.GetTimestamp();

        // Completed by a writer thread. A grain's continuation never runs there: awaited in a grain turn, it is queued to
        // the grain's own scheduler. So no forced thread-pool hop first (measured: it added ~1-2 ms per commit under load).
        public TaskCompletionSource Done { get; } = new();

        /// <summary>Writer: take it for writing; false when its caller already gave up.</summary>
        public bool TryClaim() => !_callerGone && Interlocked.CompareExchange(ref _state, Claimed, Queued) == Queued;

        /// <summary>Caller: gives up waiting. True when it was never taken, so it is known not to commit.</summary>
        public bool Abandon()
        {
            _callerGone = true;
            return Interlocked.CompareExchange(ref _state, Dropped, Queued) != Claimed;
        }

        /// <summary>Writer, after a failed attempt that did not commit it: drop it if nobody waits for it any more.</summary>
        public bool DropIfCallerGone()
        {
            if (!_callerGone) return false;
            Volatile.Write(ref _state, Dropped);
            Done.TrySetException(new LedgerUnavailableException(notCommitted: true, "dropped after its caller gave up"));
            return true;
        }

        public void Complete() => Done.TrySetResult();

        public void Fail(Exception error) => Done.TrySetException(error);
    }
}
