using System.Diagnostics;
using Grpc.Core;

namespace LoyaltyGrains.LoadTests;

/// <summary>What one arrival did: its flow name ("purchase", "balance", ...) and outcome ("OK" or a gRPC status name).</summary>
public readonly record struct OpOutcome(string Operation, string Status)
{
    public const string OkStatus = "OK";

    public static OpOutcome Ok(string operation) => new(operation, OkStatus);
}

public interface IScenario
{
    Task SetupAsync(Action<string> progress);

    /// <summary>Runs one arrival's flow; records each RPC with <see cref="Arrival.Rpc"/> and returns the flow's outcome.</summary>
    Task<OpOutcome> ArrivalAsync(Arrival arrival);
}

/// <summary>Live figures, once a second, for the console.</summary>
public readonly record struct ProgressSnapshot(string Name, string Phase, double ElapsedSeconds, double TotalSeconds, double RatePerSecond, long Sent,
    long InFlight, long Ok, long Errors, long Dropped, double P99LastSecondMs);

/// <summary>
/// One scheduled arrival. It is its own thread-pool work item, so dispatching it costs no extra allocation; the
/// scenario reads <see cref="Index"/> (which drives all of its deterministic choices) and reports each RPC's latency.
/// </summary>
public sealed class Arrival : IThreadPoolWorkItem
{
    private readonly OpenLoop.Run _run;

    internal Arrival(OpenLoop.Run run, long index, long intendedTicks, bool measured)
    {
        _run = run;
        Index = index;
        IntendedTicks = intendedTicks;
        Measured = measured;
    }

    public long Index { get; }
    /// <summary>Stopwatch timestamp this arrival was scheduled for: the first RPC's latency counts from here.</summary>
    public long IntendedTicks { get; }
    public bool Measured { get; }
    public CancellationToken Cancellation => _run.Cancellation;
    public DateTime Deadline => DateTime.UtcNow + _run.RequestTimeout;

    /// <summary>Records one RPC: latency from <paramref name="startTicks"/> (pass <see cref="IntendedTicks"/> for the first RPC of a flow).</summary>
    public void Rpc(string method, long startTicks, string status)
    {
        if (Measured) _run.Record.RecordRpc(method, status, OpenLoop.Micros(Stopwatch.GetTimestamp() - startTicks));
    }

    void IThreadPoolWorkItem.Execute() => _ = RunAsync();

    private async Task RunAsync()
    {
        OpOutcome outcome;
        try
        {
            outcome = await _run.Scenario.ArrivalAsync(this);
        }
        catch (RpcException ex)
        {
            outcome = new OpOutcome("unhandled", StatusName(ex.StatusCode));
        }
        catch (Exception ex)
        {
            outcome = new OpOutcome("unhandled", ex.GetType().Name);
        }
        var done = Stopwatch.GetTimestamp();
        if (Measured) _run.Record.RecordFlow(outcome, _run.SecondOfWindow(done), OpenLoop.Micros(done - IntendedTicks));
        Interlocked.Decrement(ref _run.InFlight);
    }

    public static string StatusName(StatusCode code) => code switch
    {
        StatusCode.OK => OpOutcome.OkStatus,
        StatusCode.DeadlineExceeded => "DEADLINE_EXCEEDED",
        StatusCode.Unimplemented => "UNIMPLEMENTED",
        StatusCode.Unavailable => "UNAVAILABLE",
        StatusCode.NotFound => "NOT_FOUND",
        StatusCode.AlreadyExists => "ALREADY_EXISTS",
        StatusCode.FailedPrecondition => "FAILED_PRECONDITION",
        StatusCode.InvalidArgument => "INVALID_ARGUMENT",
        StatusCode.ResourceExhausted => "RESOURCE_EXHAUSTED",
        StatusCode.Aborted => "ABORTED",
        StatusCode.Cancelled => "CANCELLED",
        StatusCode.Internal => "INTERNAL",
        StatusCode.PermissionDenied => "PERMISSION_DENIED",
        StatusCode.Unauthenticated => "UNAUTHENTICATED",
        _ => code.ToString().ToUpperInvariant(),
    };
}

/// <summary>
/// Open-model scheduler. Arrival i is due at t(i) (constant rate, or a linear ramp after the warm-up) and is handed to
/// the thread pool at t(i) whether or not earlier ones have answered, so a slow server builds a queue that the
/// latencies show (no coordinated omission): latency counts from t(i), not from when the request could be sent.
/// When --max-in-flight arrivals are outstanding, a due arrival is counted as dropped and the schedule goes on.
/// The scheduler runs on its own thread and wakes about every millisecond (not spinning: on 2 cores a spinning
/// load generator would take a core from the server it measures); how late it dispatched is recorded as
/// "dispatch lag" so a saturated load generator is visible in the report rather than hidden in the figures.
/// With a <see cref="CpuMeter"/>, the scheduler samples the processes' CPU when the warm-up ends and when the last
/// arrival is due: the measured window, and only it.
/// </summary>
public sealed class OpenLoop(LoadOptions options, CpuMeter? cpu = null)
{
    public static long Micros(long stopwatchTicks) => Math.Max(1, stopwatchTicks * 1_000_000 / Stopwatch.Frequency);

    internal sealed class Run
    {
        public required IScenario Scenario { get; init; }
        public required RunRecord Record { get; init; }
        public required TimeSpan RequestTimeout { get; init; }
        public required long WindowStartTicks { get; init; }
        public CancellationToken Cancellation { get; init; }
        public long InFlight;
        public IReadOnlyList<GroupCpu>? Cpu;

        public int SecondOfWindow(long ticks) => (int)Math.Max(0, (ticks - WindowStartTicks) / Stopwatch.Frequency);
    }

    public async Task<RunRecord> RunAsync(string name, IScenario scenario, Action<ProgressSnapshot>? progress = null, CancellationToken cancellation = default)
    {
        var record = new RunRecord(name, options, DateTimeOffset.UtcNow);
        var schedule = new Schedule(options.RatePerSecond, options.RampToPerSecond, options.Warmup.TotalSeconds, options.Duration.TotalSeconds);
        var startTicks = Stopwatch.GetTimestamp();
        var run = new Run
        {
            Scenario = scenario, Record = record, RequestTimeout = options.RequestTimeout, Cancellation = cancellation,
            WindowStartTicks = startTicks + (long)(schedule.WarmupSeconds * Stopwatch.Frequency),
        };
        var scheduler = new Thread(() => Dispatch(run, schedule, startTicks, progress, cancellation)) { IsBackground = true, Name = "open-loop scheduler", Priority = ThreadPriority.AboveNormal };
        scheduler.Start();
        await Task.Run(scheduler.Join, CancellationToken.None);
        record.Cpu = run.Cpu;

        // Let what was sent finish: the correctness check needs every reply. Every RPC has a deadline and a flow
        // has at most a few RPCs, so this wait is bounded; what is still out after it is reported, never waited on.
        var drainUntil = Stopwatch.GetTimestamp() + (long)((3 * options.RequestTimeout.TotalSeconds + 5) * Stopwatch.Frequency);
        while (Volatile.Read(ref run.InFlight) > 0 && Stopwatch.GetTimestamp() < drainUntil) await Task.Delay(10, CancellationToken.None);
        record.UnfinishedAtEnd = (int)Volatile.Read(ref run.InFlight);
        for (var s = 0; s < (int)Math.Ceiling(schedule.MeasuredSeconds); s++)
        {
            record.SetOffered(s, schedule.ArrivalsBy(schedule.WarmupSeconds + Math.Min(s + 1, schedule.MeasuredSeconds)) - schedule.ArrivalsBy(schedule.WarmupSeconds + s));
        }
        return record;
    }

    // Arrival indices continue across the runs of one process (find-max steps, a baseline then the scenario): each index
    // names a transaction, so a second run must not send the first run's ids again (they would come back DUPLICATE).
    private static long s_nextRunFirstIndex;

    private void Dispatch(Run run, Schedule schedule, long startTicks, Action<ProgressSnapshot>? progress, CancellationToken cancellation)
    {
        var record = run.Record;
        var lastTotalAll = schedule.ArrivalsBy(schedule.TotalSeconds);
        var firstIndex = Interlocked.Add(ref s_nextRunFirstIndex, lastTotalAll + 1) - lastTotalAll - 1;
        var frequency = (double)Stopwatch.Frequency;
        long next = 0;
        var nextProgressTicks = startTicks + Stopwatch.Frequency;
        var total = schedule.TotalSeconds;
        var lastTotal = schedule.ArrivalsBy(total);
        var cpuStart = (CpuMeter.Sample?)null;
        while (!cancellation.IsCancellationRequested)
        {
            var nowTicks = Stopwatch.GetTimestamp();
            var now = (nowTicks - startTicks) / frequency;
            if (cpu is not null && cpuStart is null && now >= schedule.WarmupSeconds) cpuStart = cpu.Take();
            var due = now >= total ? lastTotal : schedule.ArrivalsBy(now);
            for (; next < due; next++)
            {
                var intendedSeconds = schedule.TimeOf(next);
                var intendedTicks = startTicks + (long)(intendedSeconds * frequency);
                var measured = intendedSeconds >= schedule.WarmupSeconds;
                if (measured) record.RecordDispatchLag(Micros(nowTicks - intendedTicks));
                if (Volatile.Read(ref run.InFlight) >= options.MaxInFlight)
                {
                    if (measured) record.RecordDropped(run.SecondOfWindow(intendedTicks));
                    continue;
                }
                Interlocked.Increment(ref run.InFlight);
                if (measured) record.RecordSent();
                ThreadPool.UnsafeQueueUserWorkItem(new Arrival(run, firstIndex + next, intendedTicks, measured), preferLocal: false);
            }
            if (progress is not null && nowTicks >= nextProgressTicks)
            {
                nextProgressTicks += Stopwatch.Frequency;
                var phase = now < schedule.WarmupSeconds ? "warm-up" : "measuring";
                progress(new ProgressSnapshot(record.Name, phase, Math.Min(now, total), total, schedule.RateAt(now), next, Volatile.Read(ref run.InFlight),
                    record.OkCount, record.ErrorCount, record.DroppedCount, record.LastSecondP99Ms(run.SecondOfWindow(nowTicks) - 1)));
            }
            if (now >= total) break;
            Thread.Sleep(1);
        }
        if (cpu is not null && cpuStart is not null) run.Cpu = cpu.Since(cpuStart);
    }
}

/// <summary>The arrival schedule: constant rate r0 during the warm-up, then r0 → r1 linearly over the measured window.</summary>
public sealed class Schedule(double r0, double? r1, double warmupSeconds, double measuredSeconds)
{
    public double WarmupSeconds { get; } = warmupSeconds;
    public double MeasuredSeconds { get; } = measuredSeconds;
    public double TotalSeconds => WarmupSeconds + MeasuredSeconds;
    private double Slope => r1 is { } end ? (end - r0) / MeasuredSeconds : 0;

    public double RateAt(double t) => t <= WarmupSeconds ? r0 : r0 + Slope * Math.Min(t - WarmupSeconds, MeasuredSeconds);

    /// <summary>Arrivals scheduled in [0, t): the integral of the rate.</summary>
    public long ArrivalsBy(double t)
    {
        if (t <= WarmupSeconds) return (long)Math.Ceiling(r0 * t);
        var ramp = Math.Min(t, TotalSeconds) - WarmupSeconds;
        return (long)Math.Ceiling(r0 * WarmupSeconds + r0 * ramp + Slope * ramp * ramp / 2);
    }

    /// <summary>The scheduled time of arrival i (the inverse of ArrivalsBy).</summary>
    public double TimeOf(long i)
    {
        var warmupArrivals = r0 * WarmupSeconds;
        if (i < warmupArrivals) return i / r0;
        var k = i - warmupArrivals;
        var slope = Slope;
        var ramp = Math.Abs(slope) < 1e-9 ? k / r0 : (-r0 + Math.Sqrt(Math.Max(0, r0 * r0 + 2 * slope * k))) / slope;
        return WarmupSeconds + ramp;
    }
}
