using Npgsql;

namespace LoyaltyGrains.Analytics;

/// <summary>
/// The ledger database analytics read (PostgreSQL mode), with a gate that lets one replay run at a time per process:
/// a replay streams a whole window and keeps a connection and a core busy for as long as it runs.
/// </summary>
public sealed class AnalyticsDatabase(string connectionString) : IAsyncDisposable
{
    private readonly SemaphoreSlim _replayGate = new(1, 1);

    public NpgsqlDataSource Source { get; } = NpgsqlDataSource.Create(connectionString);

    /// <summary>Enters the replay gate without waiting; false when a replay is already running.</summary>
    public bool TryEnterReplay() => _replayGate.Wait(0);

    public void ExitReplay() => _replayGate.Release();

    public async ValueTask DisposeAsync()
    {
        await Source.DisposeAsync();
        _replayGate.Dispose();
    }
}
