using LoyaltyGrains.Persistence;
using LoyaltyGrains.Tests.Durability;
using Microsoft.Extensions.Configuration;
using Orleans.TestingHost;

namespace LoyaltyGrains.Tests.Postgres;

[Alias("test.IProbeGrain")]
public interface IProbeGrain : IGrainWithStringKey
{
    [Alias("Increment")] Task<int> Increment();
    [Alias("Read")] Task<int> Read();
    [Alias("RegisterReminder")] Task RegisterReminder();
    [Alias("RemindersSeen")] Task<int> RemindersSeen();
}

[GenerateSerializer, Alias("test.ProbeState")]
public sealed class ProbeState
{
    [Id(0)] public int Count { get; set; }
}

/// <summary>A grain that uses exactly what our migrations provide to Orleans: ADO.NET storage and reminders.</summary>
public sealed class ProbeGrain([PersistentState("probe", LoyaltyGrains.Grains.StorageNames.Loyalty)] IPersistentState<ProbeState> state)
    : Grain, IProbeGrain, IRemindable
{
    private static int s_remindersSeen;

    public async Task<int> Increment()
    {
        state.State.Count++;
        await state.WriteStateAsync();
        return state.State.Count;
    }

    public async Task<int> Read()
    {
        await state.ReadStateAsync();
        return state.State.Count;
    }

    public Task RegisterReminder() => this.RegisterOrUpdateReminder("probe", TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(1));

    public Task<int> RemindersSeen() => Task.FromResult(Volatile.Read(ref s_remindersSeen));

    public Task ReceiveReminder(string reminderName, TickStatus status)
    {
        Interlocked.Increment(ref s_remindersSeen);
        return Task.CompletedTask;
    }
}

/// <summary>Two silos whose membership, grain state and reminders all live in our PostgreSQL schema.</summary>
public sealed class OrleansProvidersTests : IAsyncLifetime
{
    private TestDatabase _database = null!;
    private TestCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync("providers");
        await PostgresHosting.PrepareDatabaseAsync(_database.ConnectionString);
        var builder = new TestClusterBuilder(2);
        builder.Options.UseTestClusterMembership = false;
        builder.ConfigureHostConfiguration(config => config.AddInMemoryCollection(new Dictionary<string, string?> { ["Postgres"] = _database.ConnectionString }));
        builder.AddSiloBuilderConfigurator<Silo>();
        builder.AddClientBuilderConfigurator<Client>();
        _cluster = builder.Build();
        await _cluster.DeployAsync();
    }

    public async Task DisposeAsync()
    {
        await _cluster.StopAllSilosAsync();
        await _cluster.DisposeAsync();
        await _database.DisposeAsync();
    }

    private sealed class Silo : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            var connectionString = siloBuilder.Configuration["Postgres"]!;
            siloBuilder.UseLoyaltyPostgres(connectionString);
            LoyaltyGrains.Grains.HostingExtensions.AddLoyaltyGrains(siloBuilder.Services);
        }
    }

    private sealed class Client : IClientBuilderConfigurator
    {
        public void Configure(IConfiguration configuration, IClientBuilder clientBuilder) =>
            clientBuilder.UseLoyaltyPostgresClustering(configuration["Postgres"]!);
    }

    [Fact]
    public async Task Membership_state_and_reminders_work_on_our_schema()
    {
        Assert.Equal(2, (await _cluster.Client.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true)).Count);
        var probe = _cluster.Client.GetGrain<IProbeGrain>("p-1");
        for (var i = 1; i <= 3; i++) Assert.Equal(i, await probe.Increment());
        await _cluster.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        Assert.Equal(3, await probe.Read());

        await probe.RegisterReminder();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (await probe.RemindersSeen() == 0 && DateTime.UtcNow < deadline) await Task.Delay(200);
        Assert.True(await probe.RemindersSeen() > 0, "the reminder registered in PostgreSQL never fired");
    }
}
