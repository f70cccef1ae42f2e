using System.Diagnostics;
using System.Globalization;
using LoyaltyGrains.Gateway.Auth;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.Bench;

/// <summary>
/// The engine's CPU per GetBalance end to end: a closed loop of callers on a running engine, and the engine process's
/// CPU time (/proc/PID/stat) over the measured window divided by the calls answered. Run against builds with and
/// without token checks to see what authentication, authorization and rate limiting cost per call.
/// </summary>
internal static class BalanceCpuBench
{
    public static async Task<int> RunAsync(Args options)
    {
        var target = options.Get("--target") ?? "http://127.0.0.1:5000";
        var pid = int.Parse(options.Get("--pid") ?? throw new ArgumentException("--pid of the engine process is required"), CultureInfo.InvariantCulture);
        var seconds = int.Parse(options.Get("--seconds") ?? "20", CultureInfo.InvariantCulture);
        var concurrency = int.Parse(options.Get("--concurrency") ?? "16", CultureInfo.InvariantCulture);
        var members = int.Parse(options.Get("--members") ?? "1000", CultureInfo.InvariantCulture);
        // With --rate the callers keep to a schedule (the same calls per second for every build compared), so work the
        // engine does whatever the load (timers, housekeeping) is shared out alike; without it they go flat out.
        var rate = double.Parse(options.Get("--rate") ?? "0", CultureInfo.InvariantCulture);
        var warmup = TimeSpan.FromSeconds(int.Parse(options.Get("--warmup") ?? "5", CultureInfo.InvariantCulture));
        var token = options.Get("--token") ?? (Environment.GetEnvironmentVariable(LoyaltyAuthOptions.SigningKeyVariable) is { Length: > 0 } key
            ? LoyaltyTokens.Mint(new LoyaltyAuthOptions { SigningKey = key }, new TokenRequest("bench", ["admin", "processor"], null, TimeSpan.FromHours(2)))
            : null);
        var run = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        var channels = Enumerable.Range(0, 4).Select(_ => BearerTokenHandler.Channel(target, token)).ToArray();
        var admin = new Admin.AdminClient(channels[0]);
        await Parallel.ForEachAsync(Enumerable.Range(0, members), new ParallelOptions { MaxDegreeOfParallelism = 16 },
            async (i, ct) => await admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = $"bc{run}-m{i}" }, cancellationToken: ct));
        var clients = channels.Select(c => new Balances.BalancesClient(c)).ToArray();
        long calls = 0;
        async Task LoopAsync(int worker, CancellationToken stop, bool count)
        {
            var client = clients[worker % clients.Length];
            var start = Stopwatch.GetTimestamp();
            for (var n = worker; !stop.IsCancellationRequested; n += concurrency)
            {
                if (rate > 0)
                {
                    var due = TimeSpan.FromSeconds((n - worker) / rate) - Stopwatch.GetElapsedTime(start);
                    if (due > TimeSpan.Zero) await Task.Delay(due, CancellationToken.None);
                }
                await client.GetBalanceAsync(new GetBalanceRequest { MemberId = $"bc{run}-m{n % members}" });
                if (count) Interlocked.Increment(ref calls);
            }
        }
        using (var warm = new CancellationTokenSource(warmup))
        {
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(w => Task.Run(() => LoopAsync(w, warm.Token, false))));
        }
        var cpuBefore = ProcessCpu(pid);
        var clock = Stopwatch.StartNew();
        using (var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds)))
        {
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(w => Task.Run(() => LoopAsync(w, stop.Token, true))));
        }
        var cpu = ProcessCpu(pid) - cpuBefore;
        var elapsed = clock.Elapsed.TotalSeconds;
        Console.WriteLine($"GetBalance {(token is null ? "without" : "with")} a token: {calls / elapsed:N0}/s over {elapsed:0.0} s, {concurrency} callers; " +
            $"engine CPU {cpu.TotalMicroseconds / calls:0.0} µs per call ({cpu.TotalSeconds / elapsed * 100:0}% of a core)");
        foreach (var channel in channels) channel.Dispose();
        return 0;
    }

    /// <summary>utime + stime of another process, from /proc (Linux).</summary>
    private static TimeSpan ProcessCpu(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return TimeSpan.FromSeconds(ticks / 100.0);
    }
}
