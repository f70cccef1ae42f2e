using System.Collections.Concurrent;
using System.Diagnostics;
using HdrHistogram;

namespace LoyaltyGrains.LoadTests;

/// <summary>What one arrival did: which operation and with what outcome ("OK" or a gRPC status name).</summary>
public readonly record struct OpOutcome(string Operation, string Status)
{
    public static OpOutcome Ok(string operation) => new(operation, "OK");
}

/// <summary>
/// Sends arrival i at its scheduled time t(i) (constant rate, or a linear ramp) whether or not earlier ones have
/// answered, so a slow server builds a queue that the latencies show (no coordinated omission): latency is measured
/// from t(i), not from when the request could be sent. Arrivals beyond the in-flight limit are counted as dropped.
/// </summary>
public sealed class OpenLoop(LoadOptions options)
{
    public async Task<RunRecord> RunAsync(string name, Func<long, Task<OpOutcome>> arrival, Action<string>? progress = null)
    {
        var record = new RunRecord(name, options);
        var warmupSeconds = options.Warmup.TotalSeconds;
        var totalSeconds = warmupSeconds + options.Duration.TotalSeconds;
        var inFlight = 0;
        var tasks = new ConcurrentDictionary<long, Task>();
        var clock = Stopwatch.StartNew();
        long next = 0;
        var lastProgress = 0.0;
        while (true)
        {
            var now = clock.Elapsed.TotalSeconds;
            if (now >= totalSeconds) break;
            var due = ArrivalsBy(now, warmupSeconds);
            for (; next < due; next++)
            {
                var intended = TimeOf(next, warmupSeconds);
                var measured = intended >= warmupSeconds;
                if (Volatile.Read(ref inFlight) >= options.MaxInFlight)
                {
                    if (measured) record.Dropped();
                    continue;
                }
                Interlocked.Increment(ref inFlight);
                var index = next;
                tasks[index] = Task.Run(async () =>
                {
                    OpOutcome outcome;
                    try
                    {
                        outcome = await arrival(index);
                    }
                    catch (Grpc.Core.RpcException ex)
                    {
                        outcome = new OpOutcome("error", ex.StatusCode.ToString());
                    }
                    catch (Exception ex)
                    {
                        outcome = new OpOutcome("error", ex.GetType().Name);
                    }
                    var done = clock.Elapsed.TotalSeconds;
                    if (measured) record.Record(outcome, done - warmupSeconds, (long)((done - intended) * 1_000_000));
                    Interlocked.Decrement(ref inFlight);
                    tasks.TryRemove(index, out _);
                });
            }
            if (progress is not null && now - lastProgress >= 1)
            {
                lastProgress = now;
                progress($"{name}: {(now < warmupSeconds ? "warm-up" : "measuring")} {now:0}s/{totalSeconds:0}s, sent {next}, in flight {Volatile.Read(ref inFlight)}, " +
                    $"ok {record.OkCount}, errors {record.ErrorCount}, dropped {record.DroppedCount}");
            }
            await Task.Delay(1);
        }
        record.Offered = ArrivalsBy(totalSeconds, warmupSeconds) - ArrivalsBy(warmupSeconds, warmupSeconds);
        // Let what was sent finish (bounded): the correctness check needs every reply.
        var pending = tasks.Values.ToArray();
        await Task.WhenAny(Task.WhenAll(pending), Task.Delay(TimeSpan.FromSeconds(60)));
        record.UnfinishedAtEnd = tasks.Count;
        return record;
    }

    private double RateAt(double seconds, double warmupSeconds)
    {
        if (options.RampToPerSecond is not { } to || seconds <= warmupSeconds) return options.RatePerSecond;
        var fraction = Math.Min(1, (seconds - warmupSeconds) / options.Duration.TotalSeconds);
        return options.RatePerSecond + (to - options.RatePerSecond) * fraction;
    }

    /// <summary>Arrivals scheduled in [0, t): the integral of the rate.</summary>
    private long ArrivalsBy(double t, double warmupSeconds)
    {
        var r0 = options.RatePerSecond;
        if (options.RampToPerSecond is not { } r1 || t <= warmupSeconds) return (long)(r0 * t);
        var ramp = Math.Min(t, warmupSeconds + options.Duration.TotalSeconds) - warmupSeconds;
        var slope = (r1 - r0) / options.Duration.TotalSeconds;
        return (long)(r0 * warmupSeconds + r0 * ramp + slope * ramp * ramp / 2);
    }

    /// <summary>The scheduled time of arrival i (inverse of ArrivalsBy).</summary>
    private double TimeOf(long i, double warmupSeconds)
    {
        var r0 = options.RatePerSecond;
        var warmupArrivals = r0 * warmupSeconds;
        if (options.RampToPerSecond is not { } r1 || i < warmupArrivals) return i / r0;
        var slope = (r1 - r0) / options.Duration.TotalSeconds;
        var k = i - warmupArrivals;
        var ramp = Math.Abs(slope) < 1e-9 ? k / r0 : (-r0 + Math.Sqrt(r0 * r0 + 2 * slope * k)) / slope;
        return warmupSeconds + ramp;
    }
}

/// <summary>Measurements of one run: per-operation histograms and counts, and per-second series.</summary>
public sealed class RunRecord(string name, LoadOptions options)
{
    private readonly ConcurrentDictionary<string, LongConcurrentHistogram> _byOperation = new();
    private readonly ConcurrentDictionary<string, long> _statuses = new();
    private readonly LongConcurrentHistogram _all = NewHistogram();
    private readonly ConcurrentDictionary<int, SecondBucket> _seconds = new();
    private long _ok;
    private long _errors;
    private long _dropped;

    public string Name { get; } = name;
    public LoadOptions Options { get; } = options;
    public long Offered { get; set; }
    public int UnfinishedAtEnd { get; set; }
    public long OkCount => Interlocked.Read(ref _ok);
    public long ErrorCount => Interlocked.Read(ref _errors);
    public long DroppedCount => Interlocked.Read(ref _dropped);
    public IReadOnlyDictionary<string, long> Statuses => _statuses;
    public LongConcurrentHistogram All => _all;
    public IReadOnlyDictionary<string, LongConcurrentHistogram> ByOperation => _byOperation;

    public double AchievedPerSecond => (OkCount + ErrorCount) / Options.Duration.TotalSeconds;

    public void Dropped() => Interlocked.Increment(ref _dropped);

    public void Record(OpOutcome outcome, double secondsIntoRun, long latencyMicros)
    {
        var latency = Math.Max(1, latencyMicros);
        _statuses.AddOrUpdate(outcome.Status, 1, (_, n) => n + 1);
        if (outcome.Status == "OK") Interlocked.Increment(ref _ok);
        else Interlocked.Increment(ref _errors);
        _all.RecordValue(latency);
        _byOperation.GetOrAdd(outcome.Operation, _ => NewHistogram()).RecordValue(latency);
        var bucket = _seconds.GetOrAdd(Math.Max(0, (int)secondsIntoRun), _ => new SecondBucket());
        bucket.Histogram.RecordValue(latency);
        Interlocked.Increment(ref bucket.Completed);
    }

    /// <summary>Per second of the measured window: completions, p50 and p99 in ms.</summary>
    public IReadOnlyList<(int Second, long Completed, double P50Ms, double P99Ms)> Series()
    {
        var series = new List<(int, long, double, double)>();
        for (var s = 0; s < (int)Math.Ceiling(Options.Duration.TotalSeconds); s++)
        {
            if (_seconds.TryGetValue(s, out var b)) series.Add((s, b.Completed, b.Histogram.GetValueAtPercentile(50) / 1000.0, b.Histogram.GetValueAtPercentile(99) / 1000.0));
            else series.Add((s, 0, 0, 0));
        }
        return series;
    }

    public static double Ms(HistogramBase histogram, double percentile) => histogram.TotalCount == 0 ? 0 : histogram.GetValueAtPercentile(percentile) / 1000.0;

    private static LongConcurrentHistogram NewHistogram() => new(1, 120_000_000, 3);

    private sealed class SecondBucket
    {
        public readonly LongConcurrentHistogram Histogram = NewHistogram();
        public long Completed;
    }
}
