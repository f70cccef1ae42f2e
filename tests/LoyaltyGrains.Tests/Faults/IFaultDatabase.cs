namespace LoyaltyGrains.Tests.Faults;

/// <summary>The database a fault run's silo uses: one server (<see cref="PostgresServer"/>) or a failover formation.</summary>
public interface IFaultDatabase : IAsyncDisposable
{
    /// <summary>What the silo and the audit connect with.</summary>
    string ConnectionString { get; }

    /// <summary>The server's (or the formation's) log tail, for failure messages.</summary>
    string ServerLog { get; }

    /// <summary>Resumes anything a fault stopped (harmless when nothing is stopped).</summary>
    void Thaw();
}
