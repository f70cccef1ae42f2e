using LoyaltyGrains.Persistence;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace LoyaltyGrains.Silo;

/// <summary>
/// Ready only while PostgreSQL answers: a node that cannot commit says NOT_SERVING (gRPC health) and 503 on /readyz,
/// so load balancers send processors elsewhere. A check never waits on the database: it answers at once from the last
/// probe and starts the next one (at most one a second, one at a time), and a probe still unanswered after
/// <see cref="ProbeAnswerMax"/> counts as "does not answer" — a frozen server must not freeze the probes too.
/// </summary>
public sealed class DatabaseHealthCheck(PostgresLedger ledger) : IHealthCheck
{
    public const string Name = "database";
    public static readonly TimeSpan ProbeAnswerMax = TimeSpan.FromMilliseconds(750);
    private static readonly TimeSpan ProbeEvery = TimeSpan.FromSeconds(1);

    private readonly Lock _gate = new();
    private Task<bool>? _probe;
    private long _probeStarted;

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        Task<bool> probe;
        bool stale;
        lock (_gate)
        {
            if (_probe is { IsCompleted: true } && TimeProvider.System.GetElapsedTime(_probeStarted) >= ProbeEvery) _probe = null;
            if (_probe is null)
            {
                _probeStarted = TimeProvider.System.GetTimestamp();
                _probe = ledger.PingAsync(TimeSpan.FromSeconds(5));
            }
            probe = _probe;
            stale = TimeProvider.System.GetElapsedTime(_probeStarted) > ProbeAnswerMax;
        }
        if (!probe.IsCompleted && stale) return Unhealthy($"PostgreSQL has not answered for {ProbeAnswerMax.TotalMilliseconds:0} ms");
        if (!probe.IsCompleted)
        {
            // A fresh probe: wait for it briefly (a healthy database answers in a millisecond), else the last answer.
            try
            {
                return await probe.WaitAsync(ProbeAnswerMax, cancellationToken).ConfigureAwait(false) ? Healthy() : Unhealthy("PostgreSQL does not answer");
            }
            catch (TimeoutException)
            {
                return Unhealthy($"PostgreSQL has not answered for {ProbeAnswerMax.TotalMilliseconds:0} ms");
            }
        }
        return probe.Result ? Healthy() : Unhealthy("PostgreSQL does not answer");
    }

    private static HealthCheckResult Healthy() => HealthCheckResult.Healthy("PostgreSQL answers");

    private static HealthCheckResult Unhealthy(string why) => HealthCheckResult.Unhealthy(why);
}

/// <summary>Ready only while this silo is an active member of the cluster (not joining, not shutting down or declared dead).</summary>
public sealed class SiloActiveHealthCheck(Orleans.Runtime.ISiloStatusOracle membership) : IHealthCheck
{
    public const string Name = "silo";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(membership.CurrentStatus == Orleans.Runtime.SiloStatus.Active
            ? HealthCheckResult.Healthy("active in the cluster")
            : HealthCheckResult.Unhealthy($"silo status {membership.CurrentStatus}"));
}
