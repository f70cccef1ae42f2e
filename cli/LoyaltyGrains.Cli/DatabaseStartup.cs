using System.Runtime.InteropServices;
using LoyaltyGrains.Persistence;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace LoyaltyGrains.Cli;

/// <summary>
/// Durable mode's first step: reach PostgreSQL and bring its schema to this build. A database that is not up yet (a
/// restart, a node that starts before it) is waited for with back-off and one clear log line per wait, not a crash;
/// a SIGTERM while waiting stops the node cleanly. A wrong schema or wrong credentials fail at once: waiting would not fix them.
/// The `migrate` verb waits the same way. A node with a DML-only role does not migrate: it checks the schema is this build's.
/// </summary>
public static class DatabaseStartup
{
    private static readonly TimeSpan RetryDelayMin = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan RetryDelayMax = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ReminderEvery = TimeSpan.FromSeconds(30);

    /// <summary>
    /// True when the database is ready; false when the node was asked to stop while waiting. With
    /// <paramref name="applyMigrations"/> the schema is brought to this build's (and partitions created ahead);
    /// without, it must already be this build's (<see cref="SchemaVersion"/>).
    /// </summary>
    public static async Task<bool> PrepareAsync(string connectionString, TimeSpan waitMax, ILogger logger, bool applyMigrations = true)
    {
        using var stop = new CancellationTokenSource();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            stop.Cancel();
        });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
        {
            context.Cancel = true;
            stop.Cancel();
        });
        var where = Describe(connectionString);
        var started = TimeProvider.System.GetTimestamp();
        var delay = RetryDelayMin;
        var lastReminder = TimeSpan.Zero;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                if (applyMigrations)
                {
                    await PostgresHosting.PrepareDatabaseAsync(PostgresHosting.Tune(connectionString), logger, stop.Token);
                }
                else
                {
                    var schema = await SchemaVersion.RequireCurrentAsync(PostgresHosting.Tune(connectionString), stop.Token);
                    logger.LogInformation("Schema version {Version} is this build's (migrations are applied by the migrate verb, Loyalty:Database:ApplyMigrations=false)", schema.Version);
                    if (schema.MonthsAhead < 2)
                    {
                        // This role cannot create partitions: rows would go to the DEFAULT partition (correct, but slower to prune and detach).
                        logger.LogWarning("Ledger partitions exist for {Months} month(s) from this one; run the migrate verb (it creates three months ahead) before the month ends", schema.MonthsAhead);
                    }
                }
                if (attempt > 1) logger.LogWarning("PostgreSQL at {Where} is reachable after {Seconds:0.0} s; starting", where, TimeProvider.System.GetElapsedTime(started).TotalSeconds);
                return true;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                logger.LogWarning("Stopped while waiting for PostgreSQL at {Where}", where);
                return false;
            }
            catch (Exception ex) when (IsWorthWaitingFor(ex))
            {
                var waited = TimeProvider.System.GetElapsedTime(started);
                if (waited >= waitMax)
                {
                    throw new InvalidOperationException(
                        $"PostgreSQL at {where} was not reachable within {waitMax} (Loyalty:Database:StartupWait): {ex.GetBaseException().Message}", ex);
                }
                if (attempt == 1 || waited - lastReminder >= ReminderEvery)
                {
                    lastReminder = waited;
                    logger.LogWarning("Waiting for PostgreSQL at {Where} ({Reason}); retrying with back-off for up to {WaitMax}",
                        where, ex.GetBaseException().Message, waitMax);
                }
                try
                {
                    await Task.Delay(delay, stop.Token);
                }
                catch (OperationCanceledException)
                {
                    logger.LogWarning("Stopped while waiting for PostgreSQL at {Where}", where);
                    return false;
                }
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, RetryDelayMax.Ticks));
            }
        }
    }

    /// <summary>The server is not up, not accepting yet, or the database is not created yet: all can change by themselves.</summary>
    private static bool IsWorthWaitingFor(Exception ex) =>
        PostgresFaults.IsUnavailable(ex)
        || ex.GetBaseException() is PostgresException { SqlState: PostgresErrorCodes.InvalidCatalogName or PostgresErrorCodes.CannotConnectNow };

    private static string Describe(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        return $"{builder.Host}:{builder.Port} (database '{builder.Database}', user '{builder.Username}')";
    }
}
