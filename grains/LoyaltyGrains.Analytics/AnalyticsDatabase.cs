using Npgsql;

namespace LoyaltyGrains.Analytics;

/// <summary>
/// The ledger database analytics read (PostgreSQL mode), with a gate that lets one replay run at a time per process:
/// a replay streams a whole window and keeps a connection and a core busy for as long as it runs.
/// </summary>
public sealed class AnalyticsDatabase(string connectionString) : IAsyncDisposable
{
    private readonly SemaphoreSlim _replayGate = new(1, 1);

    public NpgsqlDataSource Source { get; } = NpgsqlDataSource.Create(ForAnalytics(connectionString));

    /// <summary>Long-running reads allowed: a replay's first row comes only after the server has ordered the whole window,
    /// and a year's statistics scan many partitions, so a command may take up to an hour (the engine's 15 s is for the hot path).</summary>
    public const int CommandTimeoutSeconds = 3_600;

    public static string ForAnalytics(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (builder.CommandTimeout != 0 && builder.CommandTimeout < CommandTimeoutSeconds) builder.CommandTimeout = CommandTimeoutSeconds;
        return builder.ConnectionString;
    }

    /// <summary>Enters the replay gate without waiting; false when a replay is already running.</summary>
    public bool TryEnterReplay() => _replayGate.Wait(0);

    public void ExitReplay() => _replayGate.Release();

    public async ValueTask DisposeAsync()
    {
        await Source.DisposeAsync();
        _replayGate.Dispose();
    }
}
