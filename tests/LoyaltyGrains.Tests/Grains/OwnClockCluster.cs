using System.Collections.Concurrent;
using LoyaltyGrains.Grains;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace LoyaltyGrains.Tests.Grains;

/// <summary>
/// A one-silo in-process TestCluster with a clock and a ledger of its own, for a test that moves time: no other test
/// sees its clock move. Start one per test and dispose it at the end.
/// </summary>
public sealed class OwnClockCluster : IAsyncDisposable
{
    private const string ClockKey = "LoyaltyTests:ClockId";

    // The silo's configurator is created by the test host, so it finds its cluster's clock by the id in its configuration.
    private static readonly ConcurrentDictionary<string, FakeClock> Clocks = new(StringComparer.Ordinal);

    private readonly string _id;

    private OwnClockCluster(string id, FakeClock clock, TestCluster cluster)
    {
        _id = id;
        Clock = clock;
        Cluster = cluster;
    }

    public FakeClock Clock { get; }

    public TestCluster Cluster { get; }

    public IGrainFactory Grains => Cluster.GrainFactory;

    public static async Task<OwnClockCluster> StartAsync()
    {
        var id = Guid.NewGuid().ToString("N");
        var clock = new FakeClock();
        Clocks[id] = clock;
        var builder = new TestClusterBuilder(1);
        builder.Properties[ClockKey] = id;
        builder.AddSiloBuilderConfigurator<SiloConfigurator>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return new OwnClockCluster(id, clock, cluster);
    }

    public async ValueTask DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
        Clocks.TryRemove(_id, out _);
    }

    private sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            var id = siloBuilder.Configuration[ClockKey] ?? throw new InvalidOperationException($"{ClockKey} is not in the silo's configuration");
            TestSilo.AddLoyalty(siloBuilder, new LoyaltyGrains.Grains.Ledger.InMemoryLedger(), Clocks[id]);
        }
    }
}
