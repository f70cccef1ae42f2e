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
            Address(Text(configuration, "Loyalty:ListenAddress", "LOYALTY_LISTEN_ADDRESS") ?? "127.0.0.1"),
            Port(configuration, "Loyalty:GrpcPort", "LOYALTY_GRPC_PORT", 5000),
            Port(configuration, "Loyalty:MetricsPort", "LOYALTY_METRICS_PORT", 9464),
            postgres)
        {
            ClusterId = Text(configuration, "Loyalty:ClusterId", "LOYALTY_CLUSTER_ID") ?? "loyalty",
            ShutdownTimeout = configuration["Loyalty:ShutdownTimeout"] is not { } shutdown
                ? TimeSpan.FromSeconds(30)
                : TimeSpan.TryParse(shutdown, CultureInfo.InvariantCulture, out var timeout) && timeout > TimeSpan.Zero
                    ? timeout
                    : throw new InvalidOperationException($"Loyalty:ShutdownTimeout = '{shutdown}' is not a positive duration like 00:00:30"),
        };
    }

    private static string? Text(IConfiguration configuration, string key, string variable)
    {
        var value = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrWhiteSpace(value)) value = key.StartsWith("ConnectionStrings:", StringComparison.Ordinal) ? configuration.GetConnectionString(key["ConnectionStrings:".Length..]) : configuration[key];
        return string.IsNullOrWhiteSpace(value) ? null : value;
    }

    private static IPAddress Address(string text) =>
        IPAddress.TryParse(text, out var address)
            ? address
            : throw new InvalidOperationException($"Loyalty:ListenAddress / LOYALTY_LISTEN_ADDRESS: '{text}' is not an IP address (e.g. 127.0.0.1, 0.0.0.0)");

    private static int Port(IConfiguration configuration, string key, string variable, int fallback)
    {
        var text = Text(configuration, key, variable);
        if (text is null) return fallback;
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and < 65536
            ? port
            : throw new InvalidOperationException($"{key} / {variable}: '{text}' is not a TCP port");
    }
}
