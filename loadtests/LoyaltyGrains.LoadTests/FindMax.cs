namespace LoyaltyGrains.LoadTests;

/// <summary>One step of a find-max search: a short constant-rate run and whether it held.</summary>
public sealed record StepResult(double RatePerSecond, RunRecord Record, bool Held, string Why);

/// <summary>
/// Finds the highest arrival rate a scenario sustains: short constant-rate steps, doubling from --rate until a step
/// fails, then bisecting between the best step that held and the lowest that failed (to within 5%). A step holds when
/// p99 ≤ --p99-ms, errors + drops + unanswered ≤ --max-error-pct of offered (UNIMPLEMENTED excluded: a missing
/// feature is not overload), and completions keep up with arrivals (≥ 95%).
/// </summary>
public sealed class FindMax(LoadOptions options, CpuMeter? cpu = null)
{
    public static readonly TimeSpan StepWarmup = TimeSpan.FromSeconds(1);

    public async Task<(double? MaxRatePerSecond, IReadOnlyList<StepResult> Steps)> RunAsync(string name, IScenario scenario, Func<string, Func<Action<ProgressSnapshot>, Task<RunRecord>>, Task<RunRecord>> withProgress,
        Action<string> log, CancellationToken cancellation)
    {
        var steps = new List<StepResult>();
        double? held = null, failed = null;
        var rate = options.RatePerSecond;
        for (var step = 1; step <= options.MaxSteps && !cancellation.IsCancellationRequested; step++)
        {
            // The first step also warms the process up (JIT, connections, activations) for --warmup: a cold first step
            // fails for reasons that are not capacity, and the search would then never look above it.
            var warmup = step == 1 ? (options.Warmup > StepWarmup ? options.Warmup : StepWarmup) : StepWarmup;
            var stepOptions = options with { RatePerSecond = rate, RampToPerSecond = null, Duration = options.StepDuration, Warmup = warmup };
            var stepName = $"{name} step {step} @ {rate:N0}/s";
            var record = await withProgress(stepName, progress => new OpenLoop(stepOptions, cpu).RunAsync(stepName, scenario, progress, cancellation));
            var (ok, why) = Judge(record);
            steps.Add(new StepResult(rate, record, ok, why));
            log($"{stepName}: {(ok ? "held" : "failed")} — {why}");
            if (ok) held = Math.Max(held ?? 0, rate);
            else failed = Math.Min(failed ?? double.MaxValue, rate);
            if (failed is null) rate *= 2;
            else if (held is null) rate /= 2;
            else if ((failed.Value - held.Value) / held.Value < 0.05) break;
            else rate = Math.Round((held.Value + failed.Value) / 2);
            // A short pause lets the server finish background work (GC, group commits) from the step before.
            await Task.Delay(TimeSpan.FromMilliseconds(500), cancellation).ContinueWith(_ => { }, TaskScheduler.Default);
        }
        return (held, steps);
    }

    public (bool Held, string Why) Judge(RunRecord record)
    {
        var p99Ms = RunRecord.Ms(record.AllFlows, 99);
        var unimplemented = record.ErrorsByStatus().GetValueOrDefault("UNIMPLEMENTED");
        var failedPercent = record.OfferedCount == 0 ? 0 : 100.0 * (record.ErrorCount - unimplemented + record.DroppedCount + record.UnfinishedAtEnd) / record.OfferedCount;
        var keptUpPercent = record.OfferedCount == 0 ? 100 : 100.0 * (record.OkCount + record.ErrorCount) / record.OfferedCount;
        var reasons = new List<string>();
        if (p99Ms > options.P99ThresholdMs) reasons.Add($"p99 {p99Ms:0.00} ms > {options.P99ThresholdMs} ms");
        if (failedPercent > options.MaxErrorPercent) reasons.Add($"errors+dropped {failedPercent:0.00}% > {options.MaxErrorPercent}%");
        if (keptUpPercent < 95) reasons.Add($"completed only {keptUpPercent:0.0}% of offered");
        var summary = $"offered {record.OfferedPerSecond:N0}/s, ok {record.OkPerSecond:N0}/s, p99 {p99Ms:0.00} ms, errors+dropped {failedPercent:0.00}%";
        return reasons.Count == 0 ? (true, summary) : (false, string.Join("; ", reasons) + $" ({summary})");
    }
}
