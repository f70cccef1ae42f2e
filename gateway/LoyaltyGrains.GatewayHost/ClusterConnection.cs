using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace LoyaltyGrains.GatewayHost;

/// <summary>While no silo answers (a cluster starting, or all restarting), the gateway keeps trying instead of exiting.</summary>
public sealed class SiloConnectionRetry(ILogger<SiloConnectionRetry> logger) : IClientConnectionRetryFilter
{
    private int _attempts;

    public async Task<bool> ShouldRetryConnectionAttempt(Exception exception, CancellationToken cancellationToken)
    {
        var attempt = Interlocked.Increment(ref _attempts);
        if (attempt == 1 || attempt % 30 == 0)
        {
            logger.LogWarning("No silo of the cluster answers yet ({Reason}); retrying every second", exception.GetBaseException().Message);
        }
        await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
        return !cancellationToken.IsCancellationRequested;
    }
}

/// <summary>Ready while at least one silo of the cluster is active and answers; one cheap management call, bounded.</summary>
public sealed class ClusterHealthCheck(IClusterClient client) : IHealthCheck
{
    public const string Name = "cluster";

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var hosts = await client.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(2), cancellationToken);
            return hosts.Count > 0
                ? HealthCheckResult.Healthy($"{hosts.Count} active silo(s)")
                : HealthCheckResult.Unhealthy("no active silo");
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy("the cluster does not answer", ex);
        }
    }
}
