using System.Diagnostics;
using System.Diagnostics.Tracing;
using System.Globalization;
using System.Text.Json;
using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains;
using LoyaltyGrains.Grains.Ledger;
using LoyaltyGrains.Persistence;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Configuration;
using Orleans.Storage;

namespace LoyaltyGrains.Bench;

/// <summary>
/// What an active member costs the silo: the engine's grains hosted in this process (an Orleans silo, no gRPC), members
/// enrolled with a card each and one open authorization, then the live heap after a full blocking GC and the working
/// set, per member; then authorizations on them with the bytes allocated and the bytes the GC promoted per
/// authorization (runtime GC events). Also the domain alone: a member's own state with one open purchase.
/// </summary>
internal static class MemberMemoryBench
{
    public static async Task<int> RunAsync(Args options)
    {
        var members = int.Parse(options.Get("--members") ?? "100000", CultureInfo.InvariantCulture);
        var authorizations = int.Parse(options.Get("--authorizations") ?? "100000", CultureInfo.InvariantCulture);
        var idleMinutes = double.Parse(options.Get("--idle-minutes") ?? "0", CultureInfo.InvariantCulture);
        var siloPort = int.Parse(options.Get("--silo-port") ?? "41100", CultureInfo.InvariantCulture);
        var server = options.Get("--postgres");
        var concurrency = int.Parse(options.Get("--concurrency") ?? "64", CultureInfo.InvariantCulture);
        var info = GC.GetGCMemoryInfo();
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores; GC server={System.Runtime.GCSettings.IsServerGC} " +
            $"latency={System.Runtime.GCSettings.LatencyMode}; heap hard limit {(info.TotalAvailableMemoryBytes >> 20):N0} MiB available to the GC; " +
            $"conserve={Environment.GetEnvironmentVariable("DOTNET_GCConserveMemory") ?? "default"}");

        DomainState(Math.Min(members, 1_000_000));
        if (options.Get("--silo") == "no") return 0;

        string? database = null;
        if (server is not null)
        {
            database = new NpgsqlConnectionStringBuilder(server) { Database = "member_memory_" + DateTime.UtcNow.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture) }.ConnectionString;
            await Sql(server, $"CREATE DATABASE {new NpgsqlConnectionStringBuilder(database).Database}");
            await PostgresHosting.PrepareDatabaseAsync(database);
        }
        try
        {
            await SiloAsync(members, authorizations, idleMinutes, siloPort, database, concurrency, options);
        }
        finally
        {
            if (server is not null && database is not null)
            {
                NpgsqlConnection.ClearAllPools();
                await Sql(server, $"DROP DATABASE IF EXISTS {new NpgsqlConnectionStringBuilder(database).Database} WITH (FORCE)");
            }
        }
        return 0;
    }

    /// <summary>The domain alone: bytes a member's own state holds (account, projection, one open purchase, its idempotency record).</summary>
    private static void DomainState(int members)
    {
        var programs = ProgramHistory.Of(ProgramConfig.Default);
        var now = DateTimeOffset.UtcNow;
        var cardIds = new string[members];
        for (var i = 0; i < members; i++) cardIds[i] = "card-" + i.ToString(CultureInfo.InvariantCulture); // the grain shares its card's id
        var accounts = new MemberAccount[members];
        var before = LiveBytes();
        for (var i = 0; i < members; i++)
        {
            var id = "m" + i.ToString(CultureInfo.InvariantCulture);
            var account = new MemberAccount(id);
            account.Enroll(new EnrollCommand(id, false, "", ""), ProgramConfig.Default, now);
            account.Authorize(new AuthorizeCommand("t" + i.ToString(CultureInfo.InvariantCulture), cardIds[i], 100_000 + i, "RUB", 5411, "bench-shop", now),
                programs, MccCatalogue.Default, now);
            account.ClearUncommitted();
            accounts[i] = account;
        }
        var after = LiveBytes();
        var snapshot = MemberSnapshotFormat.Write(accounts[0].State).Length;
        Console.WriteLine($"domain: {members:N0} members with one open purchase each: member-owned state {(after - before) / (double)members:N0} B per member " +
            $"(live heap after a full GC; ids included, the card id shared with the card); snapshot {snapshot:N0} B");
        // What the domain allocates per authorization (a second purchase on each member, same thread).
        var allocated = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < members; i++)
        {
            accounts[i].Authorize(new AuthorizeCommand("u" + i.ToString(CultureInfo.InvariantCulture), cardIds[i], 50_000, "RUB", 5411, "bench-shop", now),
                programs, MccCatalogue.Default, now);
            accounts[i].ClearUncommitted();
        }
        Console.WriteLine($"domain: {(GC.GetAllocatedBytesForCurrentThread() - allocated) / (double)members:N0} B allocated per authorization decided " +
            "(command, fingerprint, pricing, ledger entry, reply; the second purchase of each member)");
        GC.KeepAlive(accounts);
        GC.KeepAlive(cardIds);
    }

    private static async Task SiloAsync(int members, int authorizations, double idleMinutes, int siloPort, string? database, int concurrency, Args options)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddConsole().SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleans(silo =>
        {
            if (database is not null)
            {
                silo.UseLoyaltyPostgres(database);
                silo.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = ("member-memory", "member-memory"));
                silo.ConfigureEndpoints(System.Net.IPAddress.Loopback, siloPort, siloPort + 1, listenOnAnyHostAddress: false);
            }
            else
            {
                // What the silo holds per member, without the storage behind it: rows and snapshots go nowhere.
                silo.UseLocalhostClustering(siloPort, siloPort + 1);
                silo.Services.AddKeyedSingleton<IGrainStorage>(StorageNames.Loyalty, new DiscardingStorage());
                silo.Services.AddKeyedSingleton<IGrainStorage>("PubSubStore", new DiscardingStorage());
                silo.Services.AddSingleton<ILedger>(new DiscardingLedger());
            }
        });
        // Members stay active for the whole run, as the engine's peak-day setting keeps them (Loyalty:GrainCollection).
        builder.Services.Configure<GrainCollectionOptions>(o => o.CollectionAge = TimeSpan.FromHours(4));
        builder.Services.AddLoyaltyGrains();
        using var host = builder.Build();
        await host.StartAsync();
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        var baseline = LiveBytes();
        var run = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        var at = DateTimeOffset.UtcNow.AddMinutes(-1);
        string Member(int i) => $"mm{run}-{i}";
        string Card(int i) => $"mc{run}-{i}";

        Console.WriteLine($"silo ({(database is null ? "ledger and storage discarded" : "PostgreSQL ledger and storage")}): " +
            $"{members:N0} members, enroll + issue card + one authorization through the card ...");
        var clock = Stopwatch.StartNew();
        // In steps, with a figure after each: a long run that is stopped early still says what it measured.
        var step = Math.Max(1, int.Parse(options.Get("--report-every") ?? members.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture));
        for (var from = 0; from < members; from += step)
        {
            var count = Math.Min(step, members - from);
            await Parallel.ForEachAsync(Enumerable.Range(from, count), new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (i, _) =>
            {
                await grains.MemberGrain(Member(i)).Enroll(false, "", "");
                await grains.CardGrain(Card(i)).Issue(Member(i));
                await grains.CardGrain(Card(i)).Authorize(new AuthorizeMessage($"ma{run}-{i}", Card(i), 100_000 + i, "RUB", 5411, "bench-shop", at));
            });
            Console.WriteLine($"seeded {from + count:N0} in {clock.Elapsed.TotalSeconds:N0} s");
            if (from + count < members) Report($"{from + count:N0} members and their cards active", from + count, baseline);
        }
        Report("members and cards active", members, baseline);
        if (idleMinutes > 0)
        {
            // Cards are collected after their idle limit; authorizations then go to the member directly (as the gateway routes them).
            await Task.Delay(TimeSpan.FromMinutes(idleMinutes));
            Report($"after {idleMinutes} idle minutes (cards collected)", members, baseline);
        }

        if (authorizations > 0)
        {
            using var gc = new GcListener();
            var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            var gcBefore = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));
            long sent = 0;
            clock.Restart();
            await Parallel.ForEachAsync(Enumerable.Range(0, authorizations), new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (n, _) =>
            {
                var i = n % members;
                await grains.MemberGrain(Member(i)).AuthorizeOnKnownCard(
                    new AuthorizeMessage($"mx{run}-{n}", Card(i), 10_000 + n % 90_000, "RUB", 5411, "bench-shop", at));
                Interlocked.Increment(ref sent);
            });
            var elapsed = clock.Elapsed.TotalSeconds;
            var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
            await Task.Delay(500); // the runtime delivers GC events asynchronously
            var (gen0, gen1, promoted0, promoted1, pauses) = gc.Totals();
            Console.WriteLine($"authorizations: {sent:N0} in {elapsed:N1} s ({sent / elapsed:N0}/s, {concurrency} callers, {(database is null ? "not durable" : "durable")}); " +
                $"allocated {allocated / (double)sent:N0} B per authorization (whole process, grain calls in-process, no gRPC)");
            Console.WriteLine($"GC during them: {GC.CollectionCount(0) - gcBefore.Item1} gen0, {GC.CollectionCount(1) - gcBefore.Item2} gen1, " +
                $"{GC.CollectionCount(2) - gcBefore.Item3} gen2 collections; events: {gen0} gen0 + {gen1} gen1 GCs, promoted out of gen0 " +
                $"{promoted0 / (double)sent:N0} B and out of gen1 {promoted1 / (double)sent:N0} B per authorization; pauses total {pauses.TotalMilliseconds:N0} ms, " +
                $"longest {gc.LongestPause.TotalMilliseconds:N1} ms");
            Report("after the authorizations", members, baseline);
        }
        await host.StopAsync();
    }

    private static void Report(string when, int members, long baseline)
    {
        var live = LiveBytes();
        using var process = Process.GetCurrentProcess();
        var info = GC.GetGCMemoryInfo(GCKind.FullBlocking);
        Console.WriteLine($"{when}: live heap {live / 1e6:N1} MB = {(live - baseline) / (double)members:N0} B per member over the empty silo " +
            $"({baseline / 1e6:N1} MB); working set {process.WorkingSet64 / (double)(1L << 30):N2} GiB; GC committed {info.TotalCommittedBytes / (double)(1L << 30):N2} GiB");
    }

    private static long LiveBytes()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        return GC.GetTotalMemory(forceFullCollection: false);
    }

    private static async Task Sql(string server, string sql)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(server) { Database = "postgres" }.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>
    /// Runtime GC events in this process (Microsoft-Windows-DotNETRuntime, GC keyword): GCHeapStats_V2 gives the bytes
    /// each collection promoted out of gen0 and gen1; GCStart/RestartEEEnd the pause.
    /// </summary>
    private sealed class GcListener : EventListener
    {
        private readonly Lock _lock = new();
        private long _gen0;
        private long _gen1;
        private long _promoted0;
        private long _promoted1;
        private TimeSpan _pauses;
        private DateTime? _suspended;
        private int _lastGeneration;
        private bool _enabled;

        public TimeSpan LongestPause { get; private set; }

        protected override void OnEventSourceCreated(EventSource eventSource)
        {
            if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
            {
                EnableEvents(eventSource, EventLevel.Informational, (EventKeywords)0x1);
                _enabled = true;
            }
        }

        protected override void OnEventWritten(EventWrittenEventArgs e)
        {
            if (!_enabled || e.Payload is null || e.PayloadNames is null) return;
            lock (_lock)
            {
                switch (e.EventName)
                {
                    case "GCStart_V2":
                        _lastGeneration = Convert.ToInt32(e.Payload[e.PayloadNames.IndexOf("Depth")], CultureInfo.InvariantCulture);
                        if (_lastGeneration == 0) _gen0++;
                        else if (_lastGeneration == 1) _gen1++;
                        break;
                    case "GCHeapStats_V2":
                        _promoted0 += Convert.ToInt64(e.Payload[e.PayloadNames.IndexOf("TotalPromotedSize0")], CultureInfo.InvariantCulture);
                        _promoted1 += Convert.ToInt64(e.Payload[e.PayloadNames.IndexOf("TotalPromotedSize1")], CultureInfo.InvariantCulture);
                        break;
                    case "GCSuspendEEBegin_V1":
                        _suspended = e.TimeStamp;
                        break;
                    case "GCRestartEEEnd_V1" when _suspended is { } began:
                        var pause = e.TimeStamp - began;
                        _pauses += pause;
                        if (pause > LongestPause) LongestPause = pause;
                        _suspended = null;
                        break;
                }
            }
        }

        public (long Gen0, long Gen1, long Promoted0, long Promoted1, TimeSpan Pauses) Totals()
        {
            lock (_lock) return (_gen0, _gen1, _promoted0, _promoted1, _pauses);
        }
    }

    private sealed class DiscardingStorage : IGrainStorage
    {
        public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Task.CompletedTask;

        public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            grainState.ETag = "1";
            grainState.RecordExists = true;
            return Task.CompletedTask;
        }

        public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Task.CompletedTask;
    }

    private sealed class DiscardingLedger : ILedger
    {
        public Task AppendAsync(IReadOnlyList<LedgerEntry> entries, CancellationToken cancellationToken = default) => Task.CompletedTask;

        public Task<IReadOnlyList<LedgerEntry>> ReadMemberAsync(string memberId, long afterSequence, CancellationToken cancellationToken = default) =>
            Task.FromResult<IReadOnlyList<LedgerEntry>>([]);

        public Task<IReadOnlyList<LedgerEntry>> ReadMemberPageAsync(string memberId, long beforeSequence, int limit, CancellationToken cancellationToken = default) =>
            Task.FromResult<IReadOnlyList<LedgerEntry>>([]);

        public Task<LedgerEntry?> FindAsync(string messageId, CancellationToken cancellationToken = default) => Task.FromResult<LedgerEntry?>(null);
    }
}
