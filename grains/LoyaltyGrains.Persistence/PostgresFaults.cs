using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace LoyaltyGrains.Persistence;

/// <summary>Which failures mean "the database is out of reach" (retry later) rather than "this statement is wrong".</summary>
public static class PostgresFaults
{
    /// <summary>
    /// Lost or refused connections, timeouts, a server shutting down or starting up, too many connections, a node that
    /// does not take writes (a standby, or a promoted one not yet opened for writes), a transaction rolled back by a
    /// serialization failure, deadlock or recovery conflict: the statement did not commit or its outcome is unknown, and
    /// the same work can succeed later on a fresh connection (the SQLSTATE list is
    /// <see cref="Contracts.Faults.IsUnavailableSqlState"/>, shared with the gateway and the grains). Every caller that
    /// gets one drops its connection and clears its pool, so the next attempt finds the current primary. A server error
    /// of any other class (a constraint, a type, a syntax) is a definite failure and is not one of these.
    /// </summary>
    public static bool IsUnavailable(Exception ex) =>
        Contracts.Faults.IsUnavailable(ex)
        // A command used on a connection that broke underneath it.
        || (ex is InvalidOperationException or ObjectDisposedException && ex.Message.Contains("connection", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// For an exception filter: when <paramref name="ex"/> is <see cref="IsUnavailable"/>, drops the idle connections of
    /// <paramref name="source"/>, so the next attempt opens a fresh one (to whichever node is the writable primary by
    /// then, with a multi-host connection string). Always false: the exception goes on to the caller unchanged.
    /// </summary>
    public static bool RenewConnectionsIfUnavailable(Exception ex, NpgsqlDataSource source)
    {
        if (IsUnavailable(ex)) source.Clear();
        return false;
    }
}

/// <summary>
/// Whether PostgreSQL answered the last time anything here asked. Failures and successes are reported by every
/// database path; the transitions are logged once each (one warning when an outage starts, one line when it ends), so
/// an outage under load does not fill the log, and health checks read the current state.
/// </summary>
public sealed class PostgresAvailability
{
    private static readonly Meter Meter = new(LoyaltyGrains.Grains.LoyaltyMetrics.MeterName, "1.0");
    private static readonly Counter<long> Outages = Meter.CreateCounter<long>("loyalty.database.outages", "{outage}",
        "Times the database became unreachable (connection lost, refused or timed out)");
    private static int s_down;

    static PostgresAvailability() =>
        Meter.CreateObservableGauge("loyalty.database.available", () => Volatile.Read(ref s_down) == 0 ? 1 : 0, "{bool}",
            "1 while the database answers, 0 during an outage");

    private readonly ILogger _logger;
    private readonly TimeProvider _clock;
    private int _down;
    private long _downSinceTicks;
    private long _failuresThisOutage;

    public PostgresAvailability(ILogger logger, TimeProvider? clock = null)
    {
        _logger = logger;
        _clock = clock ?? TimeProvider.System;
    }

    public bool IsAvailable => Volatile.Read(ref _down) == 0;

    public void ReportFailure(string where, Exception ex)
    {
        Interlocked.Increment(ref _failuresThisOutage);
        if (Interlocked.Exchange(ref _down, 1) != 0) return;
        Interlocked.Exchange(ref _downSinceTicks, _clock.GetUtcNow().UtcTicks);
        Interlocked.Increment(ref s_down);
        Outages.Add(1);
        // Every pool's idle connections (grain storage, membership, reminders share them) most likely died too.
        NpgsqlConnection.ClearAllPools();
        _logger.LogWarning("PostgreSQL is unreachable ({Where}: {Reason}). Writes answer UNAVAILABLE (safe to retry with the same " +
            "transaction_id) and reconnect with back-off; one line follows when it is back", where, ex.GetBaseException().Message);
    }

    public void ReportSuccess()
    {
        if (Volatile.Read(ref _down) == 0 || Interlocked.Exchange(ref _down, 0) == 0) return;
        Interlocked.Decrement(ref s_down);
        var outage = _clock.GetUtcNow() - new DateTimeOffset(Interlocked.Read(ref _downSinceTicks), TimeSpan.Zero);
        _logger.LogWarning("PostgreSQL is reachable again after {Seconds:0.0} s ({Failures} failed attempts during the outage)",
            outage.TotalSeconds, Interlocked.Exchange(ref _failuresThisOutage, 0));
    }
}
