using System.Diagnostics;
using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Grpc.Net.Client;
using HdrHistogram;
using LoyaltyGrains.Gateway.Auth;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.Bench;

/// <summary>Durable Authorize end to end over gRPC: rate and latency percentiles from a closed loop of callers.</summary>
internal static class AuthorizeBench
{
    public static async Task<int> RunAsync(Args options)
    {
        var target = options.Get("--target") ?? "http://127.0.0.1:5000";
        var members = int.Parse(options.Get("--members") ?? "10000", CultureInfo.InvariantCulture);
        var seconds = int.Parse(options.Get("--seconds") ?? "15", CultureInfo.InvariantCulture);
        var concurrency = int.Parse(options.Get("--concurrency") ?? "64", CultureInfo.InvariantCulture);
        var run = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        // A few HTTP/2 connections, as a processor's client pool would have.
        var token = options.Get("--token") ?? (Environment.GetEnvironmentVariable(LoyaltyAuthOptions.SigningKeyVariable) is { Length: > 0 } key
            ? LoyaltyTokens.Mint(new LoyaltyAuthOptions { SigningKey = key }, new TokenRequest("bench", ["admin", "processor"], null, TimeSpan.FromHours(12)))
            : null);
        var channels = Enumerable.Range(0, 4).Select(_ => BearerTokenHandler.Channel(target, token)).ToArray();
        var admin = new Admin.AdminClient(channels[0]);

        Console.WriteLine($"seeding {members} members with a card each on {target} ...");
        await Parallel.ForEachAsync(Enumerable.Range(0, members), new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (i, _) =>
        {
            await admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = $"b{run}-m{i}" }, cancellationToken: _);
            await admin.IssueCardAsync(new IssueCardRequest { CardId = $"b{run}-c{i}", MemberId = $"b{run}-m{i}" }, cancellationToken: _);
        });

        var at = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-1));
        long sequence = 0;
        async Task<long> OneAsync(Processing.ProcessingClient client)
        {
            var n = Interlocked.Increment(ref sequence);
            var started = Stopwatch.GetTimestamp();
            await client.AuthorizeAsync(new AuthorizeRequest
            {
                TransactionId = $"b{run}-t{n}", CardId = $"b{run}-c{n % members}", AmountMinor = 10_000 + n % 90_000, Currency = "RUB",
                Mcc = 5411, MerchantId = "bench-shop", OccurredAt = at,
            });
            return Stopwatch.GetTimestamp() - started;
        }

        Console.WriteLine("warming up (every member once) ...");
        var clients = channels.Select(c => new Processing.ProcessingClient(c)).ToArray();
        await Parallel.ForEachAsync(Enumerable.Range(0, members), new ParallelOptions { MaxDegreeOfParallelism = concurrency },
            async (i, _) => await OneAsync(clients[i % clients.Length]));

        var metrics = options.Get("--metrics");
        using var scraper = new HttpClient();
        var engineBefore = metrics is null ? null : await EngineCountersAsync(scraper, metrics);
        var histogram = new LongConcurrentHistogram(1, TimeStamp.Seconds(60), 3);
        long completed = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(w => Task.Run(async () =>
        {
            var client = clients[w % clients.Length];
            while (!stop.IsCancellationRequested)
            {
                histogram.RecordValue(await OneAsync(client));
                Interlocked.Increment(ref completed);
            }
        })));
        var elapsed = clock.Elapsed.TotalSeconds;
        double Ms(double percentile) => histogram.GetValueAtPercentile(percentile) * 1000.0 / Stopwatch.Frequency;
        Console.WriteLine($"authorize: {completed / elapsed:N0}/s over {elapsed:0.0} s with {concurrency} callers; latency ms p50 {Ms(50):0.00} " +
            $"p90 {Ms(90):0.00} p99 {Ms(99):0.00} p99.9 {Ms(99.9):0.00} max {histogram.GetMaxValue() * 1000.0 / Stopwatch.Frequency:0.00}");
        if (metrics is not null && engineBefore is not null)
        {
            // The engine's own runtime counters (its /metrics), so the figures are the silo's, not this process's.
            await Task.Delay(TimeSpan.FromSeconds(6)); // past one export interval of the observable counters
            var after = await EngineCountersAsync(scraper, metrics);
            var calls = Math.Max(1, completed);
            double Delta(string name) => after.GetValueOrDefault(name) - engineBefore.GetValueOrDefault(name);
            Console.WriteLine($"engine: allocated {Delta("dotnet_gc_heap_total_allocated_bytes_total") / calls:N0} B per authorize; GCs gen0 " +
                $"{Delta("gen0"):N0}, gen1 {Delta("gen1"):N0}, gen2 {Delta("gen2"):N0}; GC pause {Delta("dotnet_gc_pause_time_seconds_total") * 1000:N0} ms " +
                $"over {calls:N0} authorizations (counters read before and ~6 s after the window: includes the idle tail)");
        }
        foreach (var channel in channels) channel.Dispose();
        return 0;
    }

    /// <summary>The engine's runtime counters from its Prometheus endpoint: allocated bytes, GC pause time, collections per generation.</summary>
    private static async Task<Dictionary<string, double>> EngineCountersAsync(HttpClient client, string url)
    {
        var counters = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in (await client.GetStringAsync(url)).Split('\n'))
        {
            if (line.StartsWith('#') || line.Length == 0) continue;
            var space = line.LastIndexOf(' ');
            if (space < 0 || !double.TryParse(line[(space + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var value)) continue;
            var name = line[..space];
            var brace = name.IndexOf('{');
            var bare = brace < 0 ? name : name[..brace];
            if (bare is "dotnet_gc_heap_total_allocated_bytes_total" or "dotnet_gc_pause_time_seconds_total") counters[bare] = counters.GetValueOrDefault(bare) + value;
            else if (bare == "dotnet_gc_collections_total" && brace >= 0)
            {
                foreach (var generation in new[] { "gen0", "gen1", "gen2" })
                {
                    if (name.Contains($"\"{generation}\"", StringComparison.Ordinal)) counters[generation] = counters.GetValueOrDefault(generation) + value;
                }
            }
        }
        return counters;
    }
}
