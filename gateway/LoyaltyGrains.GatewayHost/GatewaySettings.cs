using System.Globalization;
using System.Net;

namespace LoyaltyGrains.GatewayHost;

/// <summary>The settings a gateway reads: the silo's keys and LOYALTY_* variables, where they mean the same.</summary>
public sealed record GatewaySettings(IPAddress ListenAddress, int GrpcPort, int MetricsPort, string PostgresConnectionString)
{
    public string ClusterId { get; init; } = "loyalty";
    public string ServiceId { get; init; } = "loyalty";
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public static GatewaySettings From(IConfiguration configuration)
    {
        var postgres = Text(configuration, "ConnectionStrings:Postgres", "LOYALTY_POSTGRES")
            ?? throw new InvalidOperationException("a gateway finds the silos through PostgreSQL membership: set LOYALTY_POSTGRES or ConnectionStrings:Postgres");
        return new GatewaySettings(
            IPAddress.Parse(Text(configuration, "Loyalty:ListenAddress", "LOYALTY_LISTEN_ADDRESS") ?? "127.0.0.1"),
            Port(configuration, "Loyalty:GrpcPort", "LOYALTY_GRPC_PORT", 5000),
            Port(configuration, "Loyalty:MetricsPort", "LOYALTY_METRICS_PORT", 9464),
            postgres)
        {
            ClusterId = Text(configuration, "Loyalty:ClusterId", "LOYALTY_CLUSTER_ID") ?? "loyalty",
            ShutdownTimeout = TimeSpan.TryParse(configuration["Loyalty:ShutdownTimeout"], CultureInfo.InvariantCulture, out var timeout) ? timeout : TimeSpan.FromSeconds(30),
        };
    }

    private static string? Text(IConfiguration configuration, string key, string variable)
    {
        var value = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrWhiteSpace(value)) value = key.StartsWith("ConnectionStrings:", StringComparison.Ordinal) ? configuration.GetConnectionString(key["ConnectionStrings:".Length..]) : configuration[key];
        return string.IsNullOrWhiteSpace(value) ? null : value;
    }

    private static int Port(IConfiguration configuration, string key, string variable, int fallback)
    {
        var text = Text(configuration, key, variable);
        if (text is null) return fallback;
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and < 65536
            ? port
            : throw new InvalidOperationException($"{key} / {variable}: '{text}' is not a TCP port");
    }
}
