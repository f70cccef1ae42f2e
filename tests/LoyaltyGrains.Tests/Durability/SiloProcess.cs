using System.Globalization;

namespace LoyaltyGrains.Tests.Durability;

/// <summary>The real silo (silo/LoyaltyGrains.Silo.dll) as a separate OS process on loopback ports, to kill -9 or SIGTERM.</summary>
public sealed class SiloProcess : EngineProcess
{
    private SiloProcess(string postgres, (int Grpc, int Silo, int Gateway, int Metrics) ports, IReadOnlyDictionary<string, string>? settings,
        IReadOnlyList<string>? launcher = null, string host = "127.0.0.1")
        : base("the silo", BuiltDll("silo", "LoyaltyGrains.Silo.dll"), new Dictionary<string, string>(settings ?? new Dictionary<string, string>())
        {
            ["LOYALTY_POSTGRES"] = postgres,
            ["LOYALTY_GRPC_PORT"] = ports.Grpc.ToString(CultureInfo.InvariantCulture),
            ["LOYALTY_SILO_PORT"] = ports.Silo.ToString(CultureInfo.InvariantCulture),
            ["LOYALTY_GATEWAY_PORT"] = ports.Gateway.ToString(CultureInfo.InvariantCulture),
            ["LOYALTY_METRICS_PORT"] = ports.Metrics.ToString(CultureInfo.InvariantCulture),
        }, ports.Grpc, ports.Metrics, launcher, host)
    {
    }

    /// <summary>
    /// How long a start may take on a shared CI machine (migrations, Orleans, first health check). A silo restarted into a
    /// loaded 3-silo cluster on two busy cores took 31 s here; this bound only stops a start that hangs, it measures nothing.
    /// </summary>
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    public static (int Grpc, int Silo, int Gateway, int Metrics) FreePorts() => (FreePort(), FreePort(), FreePort(), FreePort());

    /// <summary>Starts the silo and waits until its gRPC health check says SERVING; returns the time that took.</summary>
    /// <param name="settings">More environment for the process (configuration such as <c>Loyalty__Ledger__CommitTimeout</c>).</param>
    public static async Task<(SiloProcess Silo, TimeSpan StartTime)> StartAsync(string postgres, (int Grpc, int Silo, int Gateway, int Metrics) ports,
        TimeSpan timeout, IReadOnlyDictionary<string, string>? settings = null)
    {
        var silo = Launch(postgres, ports, settings);
        try
        {
            return (silo, await silo.WaitUntilServingAsync(timeout));
        }
        catch
        {
            await silo.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts the silo process and returns at once (it may still be starting, or waiting for its database);
    /// <paramref name="settings"/>: more environment variables (e.g. Loyalty__Database__ApplyMigrations).</summary>
    public static SiloProcess Launch(string postgres, (int Grpc, int Silo, int Gateway, int Metrics) ports, IReadOnlyDictionary<string, string>? settings = null) =>
        new(postgres, ports, settings);

    /// <summary>
    /// Starts the silo inside network namespace <paramref name="networkNamespace"/> (<c>ip netns exec</c>, as root), its
    /// gRPC and metrics ports on <paramref name="listenAddress"/> there, and returns at once.
    /// </summary>
    public static SiloProcess LaunchInNamespace(string networkNamespace, string listenAddress, string postgres, (int Grpc, int Silo, int Gateway, int Metrics) ports,
        IReadOnlyDictionary<string, string> settings) =>
        new(postgres, ports, new Dictionary<string, string>(settings) { ["LOYALTY_LISTEN_ADDRESS"] = listenAddress },
            ["ip", "netns", "exec", networkNamespace], listenAddress);
}
