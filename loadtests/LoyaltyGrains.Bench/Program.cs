using LoyaltyGrains.Bench;
using System.Diagnostics;
using System.Globalization;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Persistence;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

// Usage:
//   Bench ledger --postgres "<connection string to a server>" [--seconds 8] [--concurrency 1,8,64,256]
//     Creates a fresh database ledger_bench_<time> on that server (dropped at the end), applies the migrations, then
//     for each concurrency runs (a) the group-commit PostgresLedger and (b) one transaction per message, each for
//     --seconds after a 2 s warm-up, and prints entries per second for both and their ratio.
//   Bench authorize [--target http://127.0.0.1:5000] [--members 10000] [--seconds 15] [--concurrency 64] [--metrics http://127.0.0.1:5001/metrics]
//     Enrolls members with a card each on a running engine, warms them up, then drives Authorize over gRPC from
//     --concurrency callers (closed loop: each sends its next request when the previous reply arrives) and prints
//     the rate and p50/p90/p99/p99.9/max latency. Open-model load at a fixed arrival rate is the load tool's job.
//     Its token: --token, else one minted with LOYALTY_AUTH_SIGNING_KEY. With --metrics (the engine's Prometheus endpoint):
//     the engine's allocated bytes per authorize and its GC collections and pause time over the run.
//   Bench member-history --postgres "<the engine's database>" [--target http://127.0.0.1:5000] [--history 20000]
//         [--every-hours 8] [--seconds 20] [--concurrency 8]
//     Writes --history purchases of one member straight into the running engine's ledger, then drives
//     authorize+capture pairs on a member without history and on that one (same run) and prints pairs/s, p50/p99,
//     their ratio, the first activation's replay time and the member's snapshot size (docs/BENCHMARKS.md).
//   Bench member-memory [--members 100000] [--authorizations 100000] [--idle-minutes 0] [--postgres "<server>"] [--silo-port 41100] [--silo no] [--report-every N]
//     A member's own state with one open purchase (domain alone); then the engine's grains in this process (an Orleans
//     silo, no gRPC): members enrolled with a card and one authorization each, live heap after a full GC and working set
//     per member (again after --idle-minutes, when idle cards are collected); then --authorizations more with the bytes
//     allocated and promoted per authorization (runtime GC events). Without --postgres the ledger and grain storage
//     discard what they are given (what the silo holds per member); with it, a fresh database on that server (durable).
//   Bench token [--count 200000] [--threads 1] [--alg HS256,RS256,ES256]
//     Process CPU µs per bearer-token validation with the engine's validation settings, per algorithm.
//   Bench balance-cpu --pid PID [--target http://127.0.0.1:5000] [--seconds 20] [--concurrency 16] [--rate N] [--warmup 5] [--token JWT]
//     The engine process's CPU µs per GetBalance (closed loop), to compare builds with and without token checks.
if (args.Length > 0 && args[0] == "authorize") return await AuthorizeBench.RunAsync(Args.Parse(args[1..]));
if (args.Length > 0 && args[0] == "member-history") return await MemberHistoryBench.RunAsync(Args.Parse(args[1..]));
if (args.Length > 0 && args[0] == "member-memory") return await MemberMemoryBench.RunAsync(Args.Parse(args[1..]));
if (args.Length > 0 && args[0] == "token") return await TokenBench.RunAsync(Args.Parse(args[1..]));
if (args.Length > 0 && args[0] == "balance-cpu") return await BalanceCpuBench.RunAsync(Args.Parse(args[1..]));
if (args.Length > 0 && args[0] == "ledger") args = args[1..];
var options = Args.Parse(args);
var server = options.Get("--postgres") ?? Environment.GetEnvironmentVariable("LOYALTY_TEST_POSTGRES")
    ?? throw new ArgumentException("--postgres <connection string> is required");
var seconds = int.Parse(options.Get("--seconds") ?? "8", CultureInfo.InvariantCulture);
var levels = (options.Get("--concurrency") ?? "1,8,64,256").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();

var name = "ledger_bench_" + DateTime.UtcNow.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
await Sql(server, $"CREATE DATABASE {name}");
var database = new NpgsqlConnectionStringBuilder(server) { Database = name, MaxPoolSize = 400, NoResetOnClose = true }.ConnectionString;
try
{
    await PostgresHosting.PrepareDatabaseAsync(database);
    Console.WriteLine($"machine: {Environment.ProcessorCount} cores; server {new NpgsqlConnectionStringBuilder(server).Host}:{new NpgsqlConnectionStringBuilder(server).Port}; {seconds} s per run after 2 s warm-up");
    Console.WriteLine($"{"concurrency",12} {"group commit/s",16} {"entries/commit",15} {"one commit/msg/s",18} {"ratio",7}");
    var run = 0;
    foreach (var concurrency in levels)
    {
        run++;
        var (grouped, perCommit) = await GroupCommitAsync(database, concurrency, seconds, $"g{run}");
        var single = await OneCommitPerMessageAsync(database, concurrency, seconds, $"s{run}");
        Console.WriteLine($"{concurrency,12} {grouped,16:N0} {perCommit,15:N1} {single,18:N0} {grouped / Math.Max(1, single),6:N1}x");
    }
}
finally
{
    NpgsqlConnection.ClearAllPools();
    await Sql(server, $"DROP DATABASE IF EXISTS {name} WITH (FORCE)");
}
return 0;

static async Task<(double PerSecond, double EntriesPerCommit)> GroupCommitAsync(string database, int concurrency, int seconds, string prefix)
{
    await using var ledger = new PostgresLedger(database, new PostgresLedgerOptions(), NullLogger<PostgresLedger>.Instance);
    var (count, _) = await DriveAsync(concurrency, seconds, prefix, (member, sequence) => ledger.AppendAsync([Entry(member, sequence)]));
    var (batches, entries) = ledger.Committed;
    return (count / (double)seconds, entries / (double)Math.Max(1, batches));
}

static async Task<double> OneCommitPerMessageAsync(string database, int concurrency, int seconds, string prefix)
{
    // Callers beyond the pool wait for a connection, as they would in a service: the server allows ~300 connections.
    await using var source = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(database) { MaxPoolSize = 200 }.ConnectionString);
    var (count, _) = await DriveAsync(concurrency, seconds, prefix, async (member, sequence) =>
    {
        var entry = Entry(member, sequence);
        await using var connection = await source.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var keys = new NpgsqlCommand("INSERT INTO loyalty.ledger_keys (message_id, member_id, sequence, recorded_at) VALUES ($1, $2, $3, $4)", connection, transaction))
        {
            keys.Parameters.Add(new NpgsqlParameter { Value = entry.MessageId });
            keys.Parameters.Add(new NpgsqlParameter { Value = entry.MemberId });
            keys.Parameters.Add(new NpgsqlParameter { Value = entry.Sequence });
            keys.Parameters.Add(new NpgsqlParameter { Value = entry.RecordedAt });
            await keys.ExecuteNonQueryAsync();
        }
        // Every column by name, from the ledger's one declaration (LedgerColumns), as the engine's writer fills them.
        await using (var row = LedgerColumns.InsertOne(entry, connection, transaction))
        {
            await row.ExecuteNonQueryAsync();
        }
        await transaction.CommitAsync();
    });
    return count / (double)seconds;
}

// Each of `concurrency` workers is one member appending its next entry as soon as the previous one committed, as a
// member grain does. Counts only appends completed in the measured window.
static async Task<(long Count, TimeSpan Elapsed)> DriveAsync(int concurrency, int seconds, string prefix, Func<string, long, Task> append)
{
    long measured = 0;
    var warmup = Stopwatch.StartNew();
    var measuring = false;
    using var stop = new CancellationTokenSource();
    var workers = Enumerable.Range(0, concurrency).Select(w => Task.Run(async () =>
    {
        var member = $"{prefix}-{w}";
        for (long sequence = 1; !stop.IsCancellationRequested; sequence++)
        {
            await append(member, sequence);
            if (Volatile.Read(ref measuring)) Interlocked.Increment(ref measured);
        }
    })).ToArray();
    await Task.Delay(TimeSpan.FromSeconds(2));
    Volatile.Write(ref measuring, true);
    var window = Stopwatch.StartNew();
    await Task.Delay(TimeSpan.FromSeconds(seconds));
    Volatile.Write(ref measuring, false);
    var count = Interlocked.Read(ref measured);
    await stop.CancelAsync();
    await Task.WhenAll(workers);
    return (count, window.Elapsed);
}

static LedgerEntry Entry(string member, long sequence)
{
    var now = DateTimeOffset.UtcNow;
    return new LedgerEntry
    {
        MemberId = member, Sequence = sequence, MessageId = $"{member}-{sequence}", Kind = EntryKind.ForcePost, CardId = "card-" + member,
        PurchaseId = $"{member}-{sequence}", AmountMinor = 10_000, AvailableDeltaMinor = 100, AvailableAfterMinor = 100 * sequence,
        Breakdown = [new AccrualLine("base", 100, 100)], Mcc = 5411, Category = "supermarkets", MerchantId = "shop", Currency = "RUB",
        OccurredAt = now, RecordedAt = now, Fingerprint = sequence, PurchaseMonth = 202611, SpendDeltaMinor = 10_000, LotExpiresAt = now.AddYears(1),
    };
}

static async Task Sql(string connectionString, string sql)
{
    await using var connection = new NpgsqlConnection(connectionString);
    await connection.OpenAsync();
    await using var command = new NpgsqlCommand(sql, connection);
    await command.ExecuteNonQueryAsync();
}

internal sealed class Args(Dictionary<string, string> values)
{
    public static Args Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < args.Length; i += 2) values[args[i]] = args[i + 1];
        return new Args(values);
    }

    public string? Get(string name) => values.GetValueOrDefault(name);
}
