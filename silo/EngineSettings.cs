using System.Net;

namespace LoyaltyGrains.Silo;

/// <summary>The few settings the host reads: configuration keys, with LOYALTY_* environment variables as shortcuts.</summary>
public sealed record EngineSettings(IPAddress ListenAddress, int GrpcPort, int MetricsPort, int SiloPort, int SiloGatewayPort, string? PostgresConnectionString)
{
    /// <summary>The address other silos and clients reach this silo at (durable mode).</summary>
    public IPAddress AdvertisedAddress { get; init; } = IPAddress.Loopback;
    public string ClusterId { get; init; } = "loyalty";
    public string ServiceId { get; init; } = "loyalty";

    /// <summary>How long start-up waits for PostgreSQL before giving up (durable mode).</summary>
    public TimeSpan DatabaseStartupWait { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Whether start-up applies the schema migrations (the default), or — for a runtime role with DML rights only, the
    /// migrations applied by the migrate verb — checks that the schema is this build's and refuses to start otherwise.
    /// </summary>
    public bool ApplyMigrations { get; init; } = true;

    /// <summary>How long a write waits for its ledger commit before answering UNAVAILABLE (a caller's shorter deadline wins).</summary>
    public TimeSpan CommitTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a graceful stop may take: drain calls, deactivate grains, leave the cluster.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public static EngineSettings From(IConfiguration configuration)
    {
        // LOYALTY_* environment variables win over configuration files: they are how operators and scripts set a node.
        var listen = Environment.GetEnvironmentVariable("LOYALTY_LISTEN_ADDRESS") ?? configuration["Loyalty:ListenAddress"] ?? "127.0.0.1";
        var advertised = Environment.GetEnvironmentVariable("LOYALTY_ADVERTISED_ADDRESS") ?? configuration["Loyalty:AdvertisedAddress"] ?? "127.0.0.1";
        var clusterId = Environment.GetEnvironmentVariable("LOYALTY_CLUSTER_ID") ?? configuration["Loyalty:ClusterId"] ?? "loyalty";
        return new EngineSettings(
            IPAddress.Parse(listen),
            Port(configuration, "Loyalty:GrpcPort", "LOYALTY_GRPC_PORT", 5000),
            Port(configuration, "Loyalty:MetricsPort", "LOYALTY_METRICS_PORT", 9464),
            Port(configuration, "Loyalty:SiloPort", "LOYALTY_SILO_PORT", 11111),
            Port(configuration, "Loyalty:GatewayPort", "LOYALTY_GATEWAY_PORT", 30000),
            NullIfEmpty(Environment.GetEnvironmentVariable("LOYALTY_POSTGRES")) ?? NullIfEmpty(configuration.GetConnectionString("Postgres")))
        {
            AdvertisedAddress = IPAddress.Parse(advertised),
            ClusterId = clusterId,
            DatabaseStartupWait = Duration(configuration, "Loyalty:Database:StartupWait", TimeSpan.FromMinutes(10)),
            ApplyMigrations = configuration.GetValue("Loyalty:Database:ApplyMigrations", true),
            CommitTimeout = Duration(configuration, "Loyalty:Ledger:CommitTimeout", TimeSpan.FromSeconds(5)),
            ShutdownTimeout = Duration(configuration, "Loyalty:ShutdownTimeout", TimeSpan.FromSeconds(30)),
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
        // One line, like every log entry: the warning must survive log shippers that split on newlines.
        logger.LogWarning("LoyaltyGrains embedded default: gRPC (h2c) on {Address}:{Port}, metrics on :{MetricsPort}/metrics. " +
            "STATE IS NOT DURABLE: ledger, balances and cards live in this process's memory and are lost when it stops; " +
            "demo program and members are seeded. For durable mode set ConnectionStrings__Postgres or LOYALTY_POSTGRES",
            settings.ListenAddress, settings.GrpcPort, settings.MetricsPort);
    }

    private static int Port(IConfiguration configuration, string key, string variable, int fallback)
    {
        var text = Environment.GetEnvironmentVariable(variable) ?? configuration[key];
        if (text is null) return fallback;
        return int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) && port is > 0 and < 65536
            ? port
            : throw new InvalidOperationException($"{key} / {variable}: '{text}' is not a TCP port");
    }

    private static TimeSpan Duration(IConfiguration configuration, string key, TimeSpan fallback)
    {
        var text = configuration[key];
        if (text is null) return fallback;
        return TimeSpan.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var value) && value > TimeSpan.Zero
            ? value
            : throw new InvalidOperationException($"{key}: '{text}' is not a positive duration like 00:00:05");
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}
