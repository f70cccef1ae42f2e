using LoyaltyGrains.Grains;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace LoyaltyGrains.Tests.Grains;

/// <summary>
/// A two-silo in-process TestCluster with in-memory storage and ledger, shared by a collection of tests. Its clock stands
/// still at <see cref="FakeClock.DefaultStart"/> and cannot be moved from here (a plain TimeProvider); a test that moves
/// time starts an <see cref="OwnClockCluster"/>.
/// </summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    public static readonly TimeProvider Clock = new FakeClock();

    public TestCluster Cluster { get; private set; } = null!;

    public IGrainFactory Grains => Cluster.GrainFactory;

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(2);
        builder.AddSiloBuilderConfigurator<SiloConfigurator>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task DisposeAsync() => await Cluster.StopAllSilosAsync();

    private sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            // One ledger for the whole in-process cluster, as PostgreSQL would be.
            TestSilo.AddLoyalty(siloBuilder, SharedLedger, Clock);
        }
    }

    public static readonly LoyaltyGrains.Grains.Ledger.InMemoryLedger SharedLedger = new();
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "cluster";
}

/// <summary>What every in-process test silo registers: in-memory grain storage, the test's ledger and clock, the grains.</summary>
internal static class TestSilo
{
    public static void AddLoyalty(ISiloBuilder siloBuilder, LoyaltyGrains.Grains.Ledger.ILedger ledger, TimeProvider clock)
    {
        siloBuilder.AddMemoryGrainStorage(StorageNames.Loyalty);
        siloBuilder.Services.AddSingleton(ledger);
        siloBuilder.Services.AddSingleton(clock);
        siloBuilder.Services.AddLoyaltyGrains();
    }
}
