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
                    // No SQLSTATE: the driver lost or could not open the connection. With one: connection exception (08),
                    // insufficient resources (53), server shutting down or starting (57), system I/O error (58).
                    return db.IsTransient || db.SqlState is null
                        || db.SqlState.StartsWith("08", StringComparison.Ordinal) || db.SqlState.StartsWith("53", StringComparison.Ordinal)
                        || db.SqlState.StartsWith("57", StringComparison.Ordinal) || db.SqlState.StartsWith("58", StringComparison.Ordinal);
                case AggregateException aggregate when aggregate.InnerExceptions.Count > 0:
                    return aggregate.InnerExceptions.All(IsUnavailable);
            }
        }
        return false;
    }
}
