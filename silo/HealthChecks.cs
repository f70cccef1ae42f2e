using LoyaltyGrains.Persistence;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace LoyaltyGrains.Silo;

/// <summary>
/// Ready only while PostgreSQL answers: a node that cannot commit says NOT_SERVING (gRPC health) and 503 on /readyz,
/// so load balancers send processors elsewhere. One probe at a time, reused for a second, so probes cannot load the database.
/// </summary>
public sealed class DatabaseHealthCheck(PostgresLedger ledger) : IHealthCheck
{
    public const string Name = "database";
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan ProbeReuse = TimeSpan.FromSeconds(1);

    private readonly Lock _gate = new();
    private Task<bool>? _probe;
    private long _probeStarted;

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        Task<bool> probe;
        lock (_gate)
        {
            if (_probe is null || (_probe.IsCompleted && TimeProvider.System.GetElapsedTime(_probeStarted) > ProbeReuse))
            {
                _probeStarted = TimeProvider.System.GetTimestamp();
                _probe = ledger.PingAsync(ProbeTimeout);
            }
            probe = _probe;
        }
        try
        {
            var answered = await probe.WaitAsync(ProbeTimeout, cancellationToken).ConfigureAwait(false);
            return answered ? HealthCheckResult.Healthy("PostgreSQL answers") : HealthCheckResult.Unhealthy("PostgreSQL does not answer");
        }
        catch (TimeoutException)
        {
            return HealthCheckResult.Unhealthy($"PostgreSQL did not answer within {ProbeTimeout.TotalSeconds:0} s");
        }
    }
}
