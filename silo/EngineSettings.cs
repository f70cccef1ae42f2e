using System.Net;

namespace LoyaltyGrains.Silo;

/// <summary>The few settings the host reads: configuration keys, with LOYALTY_* environment variables as shortcuts.</summary>
public sealed record EngineSettings(IPAddress ListenAddress, int GrpcPort, int MetricsPort, int SiloPort, int SiloGatewayPort, string? PostgresConnectionString)
{
    /// <summary>The address other silos and clients reach this silo at (durable mode).</summary>
    public IPAddress AdvertisedAddress { get; init; } = IPAddress.Loopback;
    public string ClusterId { get; init; } = "loyalty";
    public string ServiceId { get; init; } = "loyalty";

    public static EngineSettings From(IConfiguration configuration)
    {
        var listen = configuration["Loyalty:ListenAddress"] ?? Environment.GetEnvironmentVariable("LOYALTY_LISTEN_ADDRESS") ?? "127.0.0.1";
        var advertised = configuration["Loyalty:AdvertisedAddress"] ?? Environment.GetEnvironmentVariable("LOYALTY_ADVERTISED_ADDRESS") ?? "127.0.0.1";
        var clusterId = configuration["Loyalty:ClusterId"] ?? Environment.GetEnvironmentVariable("LOYALTY_CLUSTER_ID") ?? "loyalty";
        return new EngineSettings(
            IPAddress.Parse(listen),
            Port(configuration, "Loyalty:GrpcPort", "LOYALTY_GRPC_PORT", 5000),
            Port(configuration, "Loyalty:MetricsPort", "LOYALTY_METRICS_PORT", 9464),
            Port(configuration, "Loyalty:SiloPort", "LOYALTY_SILO_PORT", 11111),
            Port(configuration, "Loyalty:GatewayPort", "LOYALTY_GATEWAY_PORT", 30000),
            NullIfEmpty(configuration.GetConnectionString("Postgres")) ?? NullIfEmpty(Environment.GetEnvironmentVariable("LOYALTY_POSTGRES")))
        {
            AdvertisedAddress = IPAddress.Parse(advertised),
            ClusterId = clusterId,
        };
    }

    public bool Durable => PostgresConnectionString is not null;

    public static void PrintBanner(ILogger logger, EngineSettings settings)
    {
        if (settings.Durable)
        {
            logger.LogInformation("LoyaltyGrains serving gRPC (h2c) on {Address}:{Port}, metrics on :{MetricsPort}/metrics; durable mode: PostgreSQL ledger, clustering, storage",
                settings.ListenAddress, settings.GrpcPort, settings.MetricsPort);
            return;
        }
        logger.LogWarning(
            """

            ==================================================================================
             LoyaltyGrains embedded default: gRPC (h2c) on {Address}:{Port}, metrics on :{MetricsPort}/metrics
             STATE IS NOT DURABLE: ledger, balances and cards live in this process's memory
             and are lost when it stops. Demo program and members are seeded.
             For durable mode set ConnectionStrings__Postgres or LOYALTY_POSTGRES.
            ==================================================================================
            """, settings.ListenAddress, settings.GrpcPort, settings.MetricsPort);
    }

    private static int Port(IConfiguration configuration, string key, string variable, int fallback)
    {
        var text = configuration[key] ?? Environment.GetEnvironmentVariable(variable);
        if (text is null) return fallback;
        return int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) && port is > 0 and < 65536
            ? port
            : throw new InvalidOperationException($"{key} / {variable}: '{text}' is not a TCP port");
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}
