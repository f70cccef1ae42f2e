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
            siloBuilder.AddMemoryGrainStorage(StorageNames.Loyalty);
            // One ledger for the whole in-process cluster, as PostgreSQL would be.
            siloBuilder.Services.AddSingleton<LoyaltyGrains.Grains.Ledger.ILedger>(SharedLedger);
            siloBuilder.Services.AddSingleton<TimeProvider>(Clock);
            siloBuilder.Services.AddLoyaltyGrains();
        }
    }

    public static readonly LoyaltyGrains.Grains.Ledger.InMemoryLedger SharedLedger = new();
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "cluster";
}
