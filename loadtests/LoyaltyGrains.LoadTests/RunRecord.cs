using System.Collections.Concurrent;
using HdrHistogram;

namespace LoyaltyGrains.LoadTests;

/// <summary>Latency (µs) and outcomes of one operation: a flow ("purchase") or one RPC ("Authorize").</summary>
public sealed class OperationStats
{
    private readonly ConcurrentDictionary<string, long> _statuses = new(StringComparer.Ordinal);
    private long _ok;
    private long _errors;

    public LongConcurrentHistogram Histogram { get; } = RunRecord.NewHistogram();
    public long OkCount => Interlocked.Read(ref _ok);
    public long ErrorCount => Interlocked.Read(ref _errors);
    public long Count => OkCount + ErrorCount;
    /// <summary>Counts by status name, OK included.</summary>
    public IReadOnlyDictionary<string, long> Statuses => _statuses;

    public void Record(string status, long latencyMicros)
    {
        _statuses.AddOrUpdate(status, 1, static (_, n) => n + 1);
        if (status == OpOutcome.OkStatus) Interlocked.Increment(ref _ok);
        else Interlocked.Increment(ref _errors);
        Histogram.RecordValue(Math.Clamp(latencyMicros, 1, RunRecord.HighestMicros));
    }
}

/// <summary>Measurements of one run (or one find-max step): flows, RPCs, drops, per-second series.</summary>
public sealed class RunRecord(string name, LoadOptions options, DateTimeOffset startedUtc)
{
    /// <summary>Latencies above 10 minutes are clamped; nothing in a bounded run waits that long.</summary>
    public const long HighestMicros = 600_000_000;

    private readonly ConcurrentDictionary<string, OperationStats> _flows = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, OperationStats> _rpcs = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<int, SecondBucket> _seconds = new();
    private long _sent;
    private long _dropped;
    private long _ok;
    private long _errors;

    public string Name { get; } = name;
    public LoadOptions Options { get; } = options;
    public DateTimeOffset StartedUtc { get; } = startedUtc;
    public int UnfinishedAtEnd { get; set; }
    /// <summary>CPU of the measured processes over the measured window (null when not measured).</summary>
    public IReadOnlyList<GroupCpu>? Cpu { get; set; }
    public LongConcurrentHistogram AllFlows { get; } = NewHistogram();
    public LongConcurrentHistogram DispatchLag { get; } = NewHistogram();
    public IReadOnlyDictionary<string, OperationStats> Flows => _flows;
    public IReadOnlyDictionary<string, OperationStats> Rpcs => _rpcs;

    public long SentCount => Interlocked.Read(ref _sent);
    public long DroppedCount => Interlocked.Read(ref _dropped);
    public long OkCount => Interlocked.Read(ref _ok);
    public long ErrorCount => Interlocked.Read(ref _errors);
    public long OfferedCount => SentCount + DroppedCount;
    public double MeasuredSeconds => Options.Duration.TotalSeconds;
    public double OfferedPerSecond => OfferedCount / MeasuredSeconds;
    /// <summary>Flows answered OK per second of the measured window ("goodput").</summary>
    public double OkPerSecond => OkCount / MeasuredSeconds;
    public double CompletedPerSecond => (OkCount + ErrorCount) / MeasuredSeconds;
    public long RpcCount => _rpcs.Values.Sum(r => r.Count);
    public double RpcPerSecond => RpcCount / MeasuredSeconds;
    /// <summary>CPU µs per RPC of <paramref name="group"/> over the measured window; NaN when not measured.</summary>
    public double CpuPerRpc(string group) => Cpu?.FirstOrDefault(c => c.Group == group) is { } g ? g.PerRequest(RpcCount) : double.NaN;
    /// <summary>Errors and drops as a share of what was offered.</summary>
    public double FailedPercent => OfferedCount == 0 ? 0 : 100.0 * (ErrorCount + DroppedCount + UnfinishedAtEnd) / OfferedCount;

    /// <summary>All non-OK statuses over flows, with drops, for a one-line summary.</summary>
    public IReadOnlyDictionary<string, long> ErrorsByStatus()
    {
        var errors = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var flow in _flows.Values)
        {
            foreach (var (status, count) in flow.Statuses)
            {
                if (status != OpOutcome.OkStatus) errors[status] = errors.GetValueOrDefault(status) + count;
            }
        }
        if (DroppedCount > 0) errors["DROPPED (max in flight)"] = DroppedCount;
        if (UnfinishedAtEnd > 0) errors["NO REPLY (after drain)"] = UnfinishedAtEnd;
        return errors;
    }

    public void RecordSent() => Interlocked.Increment(ref _sent);

    public void RecordDropped(int second)
    {
        Interlocked.Increment(ref _dropped);
        Interlocked.Increment(ref Bucket(second).Dropped);
    }

    public void RecordDispatchLag(long micros) => DispatchLag.RecordValue(Math.Clamp(micros, 1, HighestMicros));

    public void RecordRpc(string method, string status, long latencyMicros) =>
        _rpcs.GetOrAdd(method, static _ => new OperationStats()).Record(status, latencyMicros);

    public void RecordFlow(OpOutcome outcome, int second, long latencyMicros)
    {
        var latency = Math.Clamp(latencyMicros, 1, HighestMicros);
        _flows.GetOrAdd(outcome.Operation, static _ => new OperationStats()).Record(outcome.Status, latency);
        AllFlows.RecordValue(latency);
        var bucket = Bucket(second);
        bucket.Histogram.RecordValue(latency);
        if (outcome.Status == OpOutcome.OkStatus)
        {
            Interlocked.Increment(ref _ok);
            Interlocked.Increment(ref bucket.Ok);
        }
        else
        {
            Interlocked.Increment(ref _errors);
            Interlocked.Increment(ref bucket.Errors);
        }
    }

    public void SetOffered(int second, long offered) => Bucket(second).Offered = offered;

    public double LastSecondP99Ms(int second) =>
        second >= 0 && _seconds.TryGetValue(second, out var b) && b.Histogram.TotalCount > 0 ? b.Histogram.GetValueAtPercentile(99) / 1000.0 : 0;

    /// <summary>One row per second of the window (and of the drain after it, when replies came then).</summary>
    public IReadOnlyList<SecondFigures> Series()
    {
        var last = Math.Max((int)Math.Ceiling(MeasuredSeconds) - 1, _seconds.Keys.DefaultIfEmpty(0).Max());
        var series = new List<SecondFigures>(last + 1);
        for (var s = 0; s <= last; s++)
        {
            if (!_seconds.TryGetValue(s, out var b))
            {
                series.Add(new SecondFigures(s, 0, 0, 0, 0, 0, 0, 0, 0));
                continue;
            }
            var h = b.Histogram;
            double P(double p) => h.TotalCount == 0 ? 0 : h.GetValueAtPercentile(p) / 1000.0;
            series.Add(new SecondFigures(s, b.Offered, b.Ok, b.Errors, b.Dropped, P(50), P(90), P(99), h.TotalCount == 0 ? 0 : h.GetMaxValue() / 1000.0));
        }
        return series;
    }

    public static double Ms(HistogramBase histogram, double percentile) => histogram.TotalCount == 0 ? 0 : histogram.GetValueAtPercentile(percentile) / 1000.0;

    public static double MaxMs(HistogramBase histogram) => histogram.TotalCount == 0 ? 0 : histogram.GetMaxValue() / 1000.0;

    /// <summary>1 µs to 10 min at 3 significant digits (0.1% value error).</summary>
    public static LongConcurrentHistogram NewHistogram() => new(1, HighestMicros, 3);

    private SecondBucket Bucket(int second) => _seconds.GetOrAdd(second, static _ => new SecondBucket());

    private sealed class SecondBucket
    {
        // Two significant digits per second keep a long run's series small; the run's totals keep three.
        public readonly LongConcurrentHistogram Histogram = new(1, HighestMicros, 2);
        public long Offered;
        public long Ok;
        public long Errors;
        public long Dropped;
    }
}

public readonly record struct SecondFigures(int Second, long Offered, long Ok, long Errors, long Dropped, double P50Ms, double P90Ms, double P99Ms, double MaxMs);
