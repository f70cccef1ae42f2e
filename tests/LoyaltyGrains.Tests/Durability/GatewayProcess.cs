using System.Globalization;

namespace LoyaltyGrains.Tests.Durability;

/// <summary>
/// The gateway as its own process (gateway/LoyaltyGrains.GatewayHost/LoyaltyGrains.GatewayHost.dll): an Orleans client that finds the silos
/// through PostgreSQL membership and serves the gRPC contract. Its health says SERVING while a silo of the cluster answers.
/// </summary>
public sealed class GatewayProcess : EngineProcess
{
    private GatewayProcess(string postgres, int grpcPort, int metricsPort)
        : base("the gateway", BuiltDll(Path.Combine("gateway", "LoyaltyGrains.GatewayHost"), "LoyaltyGrains.GatewayHost.dll"), new Dictionary<string, string>
        {
            ["LOYALTY_POSTGRES"] = postgres,
            ["LOYALTY_GRPC_PORT"] = grpcPort.ToString(CultureInfo.InvariantCulture),
            ["LOYALTY_METRICS_PORT"] = metricsPort.ToString(CultureInfo.InvariantCulture),
        }, grpcPort, metricsPort)
    {
    }

    /// <summary>Starts a gateway on free ports and returns at once (it waits for the silos by itself).</summary>
    public static GatewayProcess Launch(string postgres) => new(postgres, FreePort(), FreePort());
}
