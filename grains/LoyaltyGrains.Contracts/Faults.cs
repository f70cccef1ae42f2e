using System.Data.Common;
using System.Net.Sockets;

namespace LoyaltyGrains.Contracts;

/// <summary>
/// Which failures mean "a dependency is out of reach, try again" rather than "this request is wrong" or "a bug". Used
/// where grains and the gateway turn failures into statuses, so a database outage answers UNAVAILABLE everywhere.
/// Needs no database driver: every ADO.NET driver's errors are <see cref="DbException"/>s with a SQLSTATE.
/// </summary>
public static class Faults
{
    public static bool IsUnavailable(Exception ex)
    {
        for (var current = ex; current is not null; current = current.InnerException)
        {
            switch (current)
            {
                case LoyaltyUnavailableException or SocketException or IOException or TimeoutException:
                    return true;
                case DbException db:
                    // No SQLSTATE: the driver lost or could not open the connection (to every host of a multi-host string).
                    return db.IsTransient || db.SqlState is null || IsUnavailableSqlState(db.SqlState);
                case AggregateException aggregate when aggregate.InnerExceptions.Count > 0:
                    return aggregate.InnerExceptions.All(IsUnavailable);
            }
        }
        return false;
    }

    /// <summary>
    /// The SQLSTATEs that mean "not here, not now": the statement did not commit (or its outcome is unknown) and the same
    /// work can succeed on a fresh connection, after a failover or once the server is back. Connection exception (08),
    /// read-only transaction (25006: a standby, or a promoted node the failover manager has not opened for writes yet),
    /// serialization failure and deadlock (40001, 40P01: rolled back whole, also how a recovery conflict ends a query on a
    /// standby), insufficient resources (53), operator intervention (57: admin or crash shutdown, cannot connect now while
    /// starting up or in recovery, statement cancelled), system I/O error (58). Anything else (a constraint, a type, a
    /// syntax) is a definite failure of the statement itself.
    /// </summary>
    public static bool IsUnavailableSqlState(string sqlState) =>
        sqlState.StartsWith("08", StringComparison.Ordinal)
        || sqlState is ReadOnlySqlTransaction or SerializationFailure or DeadlockDetected
        || sqlState.StartsWith("53", StringComparison.Ordinal)
        || sqlState.StartsWith("57", StringComparison.Ordinal)
        || sqlState.StartsWith("58", StringComparison.Ordinal);

    /// <summary>25006: this server does not take writes (a standby, or not yet opened for writes after a promotion).</summary>
    public const string ReadOnlySqlTransaction = "25006";

    public const string SerializationFailure = "40001";

    public const string DeadlockDetected = "40P01";
}
