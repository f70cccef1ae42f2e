using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace LoyaltyGrains.Gateway;

/// <summary>What every node exports on its metrics port (/metrics, Prometheus text), set up in one place for the silo and the gateway host.</summary>
public static class LoyaltyTelemetry
{
    /// <summary>
    /// The meters exported: the engine's and the gateway's own ("LoyaltyGrains"), Orleans, ASP.NET Core hosting,
    /// Kestrel and rate limiting, Npgsql (connection pool and command durations, in PostgreSQL mode), and the .NET runtime
    /// (GC, thread pool, CPU).
    /// </summary>
    public static readonly string[] Meters =
    [
        GatewayMetrics.MeterName, "Microsoft.Orleans", "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel",
        "Microsoft.AspNetCore.RateLimiting", "Npgsql",
    ];

    /// <summary>Metrics on /metrics (map it with MapLoyaltyProbes); <paramref name="serviceName"/> is target_info's service_name.</summary>
    public static IServiceCollection AddLoyaltyTelemetry(this IServiceCollection services, string serviceName)
    {
        services.AddOpenTelemetry().ConfigureResource(resource => resource.AddService(serviceName)).WithMetrics(metrics => metrics
            .AddMeter(Meters)
            .AddRuntimeInstrumentation()
            .AddPrometheusExporter());
        return services;
    }

    /// <summary>The per-call RPC metric and the gateway's gauges (registered by <see cref="GatewayExtensions.AddLoyaltyGateway"/>).</summary>
    internal static IServiceCollection AddGatewayMetrics(this IServiceCollection services)
    {
        services.AddMetrics();
        services.TryAddSingleton<GatewayMetrics>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupFilter, GatewayMetricsStartupFilter>());
        return services;
    }
}
