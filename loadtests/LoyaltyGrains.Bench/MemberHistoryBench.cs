using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using HdrHistogram;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Gateway.Auth;
using LoyaltyGrains.Gateway.V1;
using LoyaltyGrains.Persistence;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace LoyaltyGrains.Bench;

/// <summary>
/// Cost of history on one member: authorize+capture pairs per second on a member with no history and on one with
/// --history purchases behind it, same run, same engine. The history is written straight into the engine's ledger
/// (rows made by the domain, one purchase every --every-hours up to yesterday, as a real cardholder's years), so the
/// member's first activation replays it. Prints pairs/s, pair latency, the ratio, the activation time and the
/// member's snapshot size as stored, next to what the projection would be with the whole history kept in memory.
/// </summary>
internal static class MemberHistoryBench
{
    public static async Task<int> RunAsync(Args options)
    {
        var target = options.Get("--target") ?? "http://127.0.0.1:5000";
        var database = options.Get("--postgres") ?? throw new ArgumentException("--postgres <connection string of the engine's database> is required");
        var history = int.Parse(options.Get("--history") ?? "20000", CultureInfo.InvariantCulture);
        var everyHours = double.Parse(options.Get("--every-hours") ?? "8", CultureInfo.InvariantCulture);
        var seconds = int.Parse(options.Get("--seconds") ?? "20", CultureInfo.InvariantCulture);
        var concurrency = int.Parse(options.Get("--concurrency") ?? "8", CultureInfo.InvariantCulture);
        var run = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        // The engine checks bearer tokens: --token, else one minted with LOYALTY_AUTH_SIGNING_KEY (as Bench authorize).
        var token = options.Get("--token") ?? (Environment.GetEnvironmentVariable(LoyaltyAuthOptions.SigningKeyVariable) is { Length: > 0 } key
            ? LoyaltyTokens.Mint(new LoyaltyAuthOptions { SigningKey = key }, new TokenRequest("bench", ["admin", "processor"], null, TimeSpan.FromHours(12)))
            : null);
        using var channel = BearerTokenHandler.Channel(target, token);
        var admin = new Admin.AdminClient(channel);
        var processing = new Processing.ProcessingClient(channel);

        var fresh = $"h{run}-fresh";
        var old = $"h{run}-old";
        Console.WriteLine($"seeding {old} with {history} purchases, one every {everyHours} h up to yesterday ...");
        var seeding = Stopwatch.StartNew();
        var (rows, keptWhole) = Seed(old, history, TimeSpan.FromHours(everyHours));
        await using (var ledger = new PostgresLedger(database, new PostgresLedgerOptions(), NullLogger<PostgresLedger>.Instance))
        {
            foreach (var chunk in rows.Chunk(2_000)) await ledger.AppendAsync(chunk);
        }
        Console.WriteLine($"seeded {rows.Count} ledger rows in {seeding.Elapsed.TotalSeconds:0.0} s");

        // A silo just started may accept connections before it serves: retry the first call for a while.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = fresh });
                break;
            }
            catch (Grpc.Core.RpcException ex) when (attempt < 60 && ex.StatusCode is Grpc.Core.StatusCode.Internal or Grpc.Core.StatusCode.Unavailable)
            {
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
        }
        await admin.IssueCardAsync(new IssueCardRequest { CardId = fresh + "-card", MemberId = fresh });
        var activation = Stopwatch.StartNew();
        // Issuing the card asks the member whether it is enrolled: its first activation replays the whole ledger.
        await admin.IssueCardAsync(new IssueCardRequest { CardId = old + "-card", MemberId = old });
        var activationSeconds = activation.Elapsed.TotalSeconds;
        // 110 more purchases (220 entries) make the member write its first snapshot: its size at ~20 000 purchases.
        for (var i = 0; i < 110; i++)
        {
            var at = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow);
            await processing.AuthorizeAsync(new AuthorizeRequest
            {
                TransactionId = $"{run}-s-a{i}", CardId = old + "-card", AmountMinor = 50_000, Currency = "RUB", Mcc = 5411, MerchantId = "bench-shop", OccurredAt = at,
            });
            await processing.CaptureAsync(new CaptureRequest
            {
                TransactionId = $"{run}-s-c{i}", AuthorizationId = $"{run}-s-a{i}", CardId = old + "-card", AmountMinor = 50_000, OccurredAt = at, Currency = "RUB",
            });
        }
        var storedAtHistory = await StoredSnapshotBytesAsync(database, old);

        // Alternating rounds, so warm-up and the machine's drift do not favour one member.
        Console.WriteLine($"{"round",5} {"member",-28} {"pairs/s",8} {"p50 ms",8} {"p99 ms",8} {"max ms",8}");
        double freshSum = 0, oldSum = 0;
        var rounds = int.Parse(options.Get("--rounds") ?? "2", CultureInfo.InvariantCulture);
        for (var round = 1; round <= rounds; round++)
        {
            var (freshRate, freshLatency) = await PairsAsync(processing, fresh + "-card", $"{run}-f{round}", seconds, concurrency);
            Console.WriteLine($"{round,5} {"no history",-28} {freshRate,8:N1} {freshLatency.P50,8:0.0} {freshLatency.P99,8:0.0} {freshLatency.Max,8:0.0}");
            var (oldRate, oldLatency) = await PairsAsync(processing, old + "-card", $"{run}-o{round}", seconds, concurrency);
            Console.WriteLine($"{round,5} {history + " purchases of history",-28} {oldRate,8:N1} {oldLatency.P50,8:0.0} {oldLatency.P99,8:0.0} {oldLatency.Max,8:0.0}");
            freshSum += freshRate;
            oldSum += oldRate;
        }
        Console.WriteLine($"ratio history/no history over all rounds: {oldSum / freshSum:0.00} (pairs/s)");
        Console.WriteLine($"first activation of the member with history (snapshot-less replay of {rows.Count} rows): {activationSeconds:0.00} s");

        var stored = await StoredSnapshotBytesAsync(database, old);
        var hot = Replay(old, rows, keepSettled: false);
        Console.WriteLine($"snapshot of the member with history: {storedAtHistory:N0} B stored at {history} + 110 purchases; {stored:N0} B after the run " +
            "(the run's recent captures and their idempotency records, at most 32 captures and 128 other records besides open purchases); projection at " + $"{history} purchases " +
            $"{JsonSerializer.SerializeToUtf8Bytes(hot.State).Length:N0} B ({hot.State.Purchases.Count} purchases, {hot.State.Processed.Count} idempotency records in memory); " +
            $"with the whole history in memory it would be {keptWhole:N0} B");
        return 0;
    }

    /// <summary>The member's stored snapshot (written every 200 entries and on the sweep), in bytes; 0 before the first.</summary>
    private static async Task<long> StoredSnapshotBytesAsync(string database, string member)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var query = new NpgsqlCommand(
            "SELECT coalesce(max(length(payloadbinary)), 0) FROM orleansstorage WHERE grainidextensionstring ILIKE '%' || $1 || '%' AND graintypestring ILIKE '%member%'", connection);
        query.Parameters.Add(new NpgsqlParameter { Value = member });
        return Convert.ToInt64(await query.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    /// <summary>The domain's rows for a cardholder of many years: authorize then capture, one purchase at a time.</summary>
    private static (List<LedgerEntry> Rows, long WholeHistoryBytes) Seed(string member, int purchases, TimeSpan every)
    {
        var programs = ProgramHistory.Of(ProgramConfig.Default);
        var now = DateTimeOffset.UtcNow.AddDays(-1) - every * purchases;
        var account = new MemberAccount(member);
        var whole = new MemberAccount(member) { KeepSettled = true };
        var rows = new List<LedgerEntry>();
        var random = new Random(7);
        account.Enroll(new EnrollCommand(member, false, "", ""), ProgramConfig.Default, now);
        for (var i = 0; i < purchases; i++)
        {
            now += every;
            var amount = (long)random.Next(5_000, 500_000);
            account.Authorize(new AuthorizeCommand($"{member}-a{i}", member + "-card", amount, "RUB", 5411, "shop", now), programs, MccCatalogue.Default, now);
            account.Capture(new CaptureCommand($"{member}-c{i}", $"{member}-a{i}", member + "-card", amount, now, -1, "", "RUB"), programs, MccCatalogue.Default, now);
        }
        rows.AddRange(account.Uncommitted);
        account.ClearUncommitted();
        foreach (var row in rows) whole.Apply(row);
        return (rows, JsonSerializer.SerializeToUtf8Bytes(whole.State).Length);
    }

    private static MemberAccount Replay(string member, List<LedgerEntry> rows, bool keepSettled)
    {
        var account = new MemberAccount(member) { KeepSettled = keepSettled };
        foreach (var row in rows) account.Apply(row);
        return account;
    }

    private static async Task<(double PairsPerSecond, (double P50, double P99, double Max) Latency)> PairsAsync(
        Processing.ProcessingClient client, string card, string prefix, int seconds, int concurrency)
    {
        long next = 0;
        long completed = 0;
        var measuring = false;
        var histogram = new LongConcurrentHistogram(1, TimeStamp.Seconds(60), 3);
        using var stop = new CancellationTokenSource();
        var workers = Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var n = Interlocked.Increment(ref next);
                var at = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow);
                var started = Stopwatch.GetTimestamp();
                await client.AuthorizeAsync(new AuthorizeRequest
                {
                    TransactionId = $"{prefix}-a{n}", CardId = card, AmountMinor = 10_000 + n % 90_000, Currency = "RUB", Mcc = 5411,
                    MerchantId = "bench-shop", OccurredAt = at,
                });
                await client.CaptureAsync(new CaptureRequest
                {
                    TransactionId = $"{prefix}-c{n}", AuthorizationId = $"{prefix}-a{n}", CardId = card, AmountMinor = 10_000 + n % 90_000,
                    OccurredAt = at, Currency = "RUB",
                });
                if (Volatile.Read(ref measuring))
                {
                    histogram.RecordValue(Stopwatch.GetTimestamp() - started);
                    Interlocked.Increment(ref completed);
                }
            }
        })).ToArray();
        await Task.Delay(TimeSpan.FromSeconds(3));
        Volatile.Write(ref measuring, true);
        var window = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(seconds));
        Volatile.Write(ref measuring, false);
        var elapsed = window.Elapsed.TotalSeconds;
        var count = Interlocked.Read(ref completed);
        await stop.CancelAsync();
        await Task.WhenAll(workers);
        double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
        return (count / elapsed, (Ms(histogram.GetValueAtPercentile(50)), Ms(histogram.GetValueAtPercentile(99)), Ms(histogram.GetMaxValue())));
    }
}
