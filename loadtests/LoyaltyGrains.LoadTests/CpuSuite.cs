using System.Globalization;
using System.Text;
using System.Text.Json;
using Spectre.Console;

namespace LoyaltyGrains.LoadTests;

/// <summary>Identity of one tool run, for reports.</summary>
public sealed record RunFacts(string RunId, string CommandLine, string Folder);

/// <summary>One measured run of the CPU suite: which scenario, at a fixed rate or its ceiling.</summary>
public sealed record SuiteRun(string Scenario, bool Ceiling, RunRecord Record, IReadOnlyList<StepResult>? Steps, double? MaxRatePerSecond);

/// <summary>
/// <c>--scenario cpu</c>: the engine's CPU per request against the bare-gRPC floor, in one run. The echo server (its own
/// process), durable Authorize and GetBalance are each driven at --rate, then (with --find-max) each to its ceiling;
/// every run measures CPU per request of each process over its measured window. One table, the ratios, each target.
/// </summary>
public sealed class CpuSuite(LoadOptions options, Engine engine,
    Func<string, IScenario, CpuMeter?, LoadOptions, Task<(RunRecord Record, IReadOnlyList<StepResult>? Steps, double? Max)>> drive, Action<string> log)
{
    public static readonly TimeSpan IdleWindow = TimeSpan.FromSeconds(5);

    public async Task<int> RunAsync(EchoScenario echo, CpuMeter? echoMeter, CpuMeter? engineMeter, RunFacts facts)
    {
        var authorize = new AuthorizeOnly(engine);
        var balance = new BalanceOnly(engine);
        // Seeds the members and makes each authorize once: both engine scenarios use them (set-up is not measured).
        await balance.SetupAsync(log);
        var runs = new List<SuiteRun>();
        var atRate = options with { FindMax = false };
        foreach (var ceiling in options.FindMax ? new[] { false, true } : [false])
        {
            var runOptions = ceiling ? options : atRate;
            runs.Add(await Run("echo", echo, echoMeter, runOptions, ceiling));
            runs.Add(await Run("authorize", authorize, engineMeter, runOptions, ceiling));
            runs.Add(await Run("balance", balance, engineMeter, runOptions, ceiling));
        }
        // After the runs: JIT tiering and start-up work are over, so this is the processes' steady background.
        var idle = await IdleAsync(engineMeter, echoMeter);
        log("checking every balance (and a sample of statements) against the replies received");
        var verdict = await Correctness.CheckAsync(engine, runs.Sum(r => r.Steps?.Sum(s => s.Record.UnfinishedAtEnd) ?? r.Record.UnfinishedAtEnd), log, CancellationToken.None);
        var report = new CpuSuiteReport(options, facts, runs, idle, verdict, MachineFacts.Collect());
        report.WriteConsole();
        report.Write(facts.Folder);
        log($"report: {Path.GetFullPath(Path.Combine(facts.Folder, "report.md"))} (each run's own report in its subfolder)");
        return verdict.Passed ? 0 : 1;
    }

    private async Task<SuiteRun> Run(string scenario, IScenario runner, CpuMeter? meter, LoadOptions runOptions, bool ceiling)
    {
        var name = ceiling ? $"{scenario} ceiling" : $"{scenario} @ {runOptions.RatePerSecond:N0}/s";
        var (record, steps, max) = await drive(name, runner, meter, runOptions);
        return new SuiteRun(scenario, ceiling, record, steps, max);
    }

    /// <summary>What the engine, PostgreSQL and the tool spend with no load: background work every request's figure includes a share of.</summary>
    private async Task<IReadOnlyList<GroupCpu>?> IdleAsync(CpuMeter? engineMeter, CpuMeter? echoMeter)
    {
        if (engineMeter is null) return null;
        log($"measuring idle CPU for {IdleWindow.TotalSeconds:0} s");
        await Task.Delay(TimeSpan.FromSeconds(1)); // the last run's stragglers and GC settle first
        var engineStart = engineMeter.Take();
        var echoStart = echoMeter?.Take();
        await Task.Delay(IdleWindow);
        var echoIdle = echoMeter is not null && echoStart is not null ? echoMeter.Since(echoStart).Where(g => g.Group == CpuGroups.EchoServer) : [];
        return [.. engineMeter.Since(engineStart), .. echoIdle];
    }
}

/// <summary>The CPU suite's report: the table per run, the ratios and each target, idle CPU; console, report.md, summary.json.</summary>
public sealed record CpuSuiteReport(LoadOptions Options, RunFacts Facts, IReadOnlyList<SuiteRun> Runs, IReadOnlyList<GroupCpu>? Idle, Verdict Verdict, MachineFacts Machine)
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    private SuiteRun? Find(string scenario, bool ceiling) => Runs.FirstOrDefault(r => r.Scenario == scenario && r.Ceiling == ceiling);

    private string RateLabel => $"{Options.RatePerSecond.ToString("N0", Invariant)}/s";

    public TextTable PerProcess()
    {
        var rows = Runs.Select(r => new[]
        {
            r.Ceiling ? $"{r.Scenario} ceiling" : $"{r.Scenario} @ {RateLabel}",
            r.Ceiling ? (r.MaxRatePerSecond is { } max ? max.ToString("N0", Invariant) : "none held") : r.Record.OfferedPerSecond.ToString("N0", Invariant),
            r.Record.OkPerSecond.ToString("N0", Invariant),
            RunRecord.Ms(r.Record.AllFlows, 50).ToString("0.00", Invariant), RunRecord.Ms(r.Record.AllFlows, 99).ToString("0.00", Invariant),
            CpuReport.Micros(r.Record.CpuPerRpc(CpuGroups.Engine)), CpuReport.Micros(r.Record.CpuPerRpc(CpuGroups.Postgres)),
            CpuReport.Micros(r.Record.CpuPerRpc(CpuGroups.Tool)), CpuReport.Micros(r.Record.CpuPerRpc(CpuGroups.EchoServer)),
        }).ToList();
        return new TextTable("CPU µs per request per process (tool = the echo client in echo rows)",
            ["run", "rate/s", "ok/s", "p50 ms", "p99 ms", "engine µs", "PostgreSQL µs", "tool µs", "echo server µs"], rows);
    }

    /// <summary>Each target as measured at --rate and at the ceilings.</summary>
    public TextTable Targets()
    {
        var rows = new List<string[]>();
        void Add(string measure, string target, Func<bool, (double Value, string Text)> figure, double limit)
        {
            var at = figure(false);
            var top = Runs.Any(r => r.Ceiling) ? figure(true) : (Value: double.NaN, Text: "–");
            rows.Add([measure, at.Text, top.Text, target, !double.IsFinite(at.Value) ? "not measured" : at.Value <= limit ? "met" : "not met"]);
        }
        (double, string) Ratio(string scenario, string group, string echoGroup, bool ceiling)
        {
            var value = (Find(scenario, ceiling)?.Record.CpuPerRpc(group) ?? double.NaN) / (Find("echo", ceiling)?.Record.CpuPerRpc(echoGroup) ?? double.NaN);
            return (value, CpuReport.Ratio(value, 1));
        }
        Add("engine CPU per durable Authorize / echo server CPU per call", "≤ 3×", c => Ratio("authorize", CpuGroups.Engine, CpuGroups.EchoServer, c), 3);
        Add("engine CPU per GetBalance / echo server CPU per call", "≤ 1.5×", c => Ratio("balance", CpuGroups.Engine, CpuGroups.EchoServer, c), 1.5);
        Add("PostgreSQL CPU per durable Authorize", "≤ 30 µs", c => Micros(Find("authorize", c)?.Record.CpuPerRpc(CpuGroups.Postgres)), 30);
        Add("tool CPU per Authorize / echo client CPU per call", "≤ 1×", c => Ratio("authorize", CpuGroups.Tool, CpuGroups.Tool, c), 1);
        Add("tool CPU per GetBalance / echo client CPU per call", "≤ 1×", c => Ratio("balance", CpuGroups.Tool, CpuGroups.Tool, c), 1);
        Add("GetBalance p99 − echo p99, same rate", "≤ 1 ms", c => P99Gap(c), 1);
        return new TextTable("Targets (ratios within this run)", ["measure", $"at {RateLabel}", "at the ceilings", "target", $"met at {RateLabel}?"], rows);
    }

    private (double, string) P99Gap(bool ceiling)
    {
        if (ceiling) return (double.NaN, "–"); // the ceilings are at different rates: the gap is judged at one rate only
        var gap = RunRecord.Ms(Find("balance", false)?.Record.AllFlows ?? RunRecord.NewHistogram(), 99) - RunRecord.Ms(Find("echo", false)?.Record.AllFlows ?? RunRecord.NewHistogram(), 99);
        return (gap, gap.ToString("+0.00;-0.00", Invariant) + " ms");
    }

    private static (double, string) Micros(double? value) => (value ?? double.NaN, CpuReport.Micros(value ?? double.NaN) + " µs");

    public IReadOnlyList<string> Notes()
    {
        var notes = new List<string>();
        if (Idle is { } idle)
        {
            notes.Add("idle, after the runs: " + string.Join(", ", idle.Select(g =>
                $"{g.Group} {100 * g.CoreShare:0.0}% of a core (= {g.CpuMicros / g.WindowSeconds / Options.RatePerSecond:0.0} µs per request at {RateLabel})")));
        }
        notes.Add("engine requests carry a bearer token the engine checks; echo calls carry none (the token check measured ~30 µs per call).");
        notes.Add(Verdict.Passed ? "correctness: PASS" : $"correctness: FAIL ({Verdict.ProblemCount:N0} problems)");
        return notes;
    }

    public void WriteConsole()
    {
        PerProcess().WriteConsole();
        Targets().WriteConsole();
        foreach (var note in Notes()) AnsiConsole.MarkupLine($"[yellow]note:[/] {Markup.Escape(note)}");
    }

    public void Write(string folder)
    {
        Directory.CreateDirectory(folder);
        var md = new StringBuilder();
        md.AppendLine("# CPU per request against the bare-gRPC floor").AppendLine();
        md.AppendLine(Invariant, $"Run `{Facts.RunId}`, against `{Options.Target}`. Machine: {Machine}.").AppendLine();
        md.AppendLine("```").AppendLine(Facts.CommandLine).AppendLine("```").AppendLine();
        md.AppendLine(PerProcess().Markdown()).AppendLine(Targets().Markdown());
        foreach (var note in Notes()) md.AppendLine(Invariant, $"- {note}");
        File.WriteAllText(Path.Combine(folder, "report.md"), md.ToString());
        File.WriteAllText(Path.Combine(folder, "summary.json"), JsonSerializer.Serialize(Summary(), Json));
        WriteEachRun(folder);
    }

    private object Summary() => new
    {
        Facts.RunId, Facts.CommandLine, Options.Target, Options.RatePerSecond, Machine,
        Runs = Runs.Select(r => new
        {
            r.Scenario, r.Ceiling, r.MaxRatePerSecond, r.Record.OfferedPerSecond, r.Record.OkPerSecond, Requests = r.Record.RpcCount,
            P50Ms = RunRecord.Ms(r.Record.AllFlows, 50), P99Ms = RunRecord.Ms(r.Record.AllFlows, 99), Cpu = CpuReport.Json(r.Record),
        }),
        Targets = Targets().Rows.Select(row => new { Measure = row[0], AtRate = row[1], AtCeilings = row[2], Target = row[3], Verdict = row[4] }),
        Idle = Idle?.Select(g => new { g.Group, g.CoreShare }), Notes = Notes(),
        Correctness = new { Verdict.Passed, Verdict.MembersChecked, Verdict.StatementsChecked, Verdict.ProblemCount, Problems = Verdict.Problems.Take(100) },
    };

    /// <summary>Each engine run's full report (charts, percentiles) with the echo run of the same kind as its baseline.</summary>
    private void WriteEachRun(string folder)
    {
        foreach (var run in Runs.Where(r => r.Scenario != "echo"))
        {
            var echo = Find("echo", run.Ceiling);
            var runOptions = Options with { Scenario = run.Scenario, FindMax = run.Ceiling };
            var report = new RunReport(run.Scenario, Facts.RunId, Facts.CommandLine, runOptions, run.Record, run.Steps, run.MaxRatePerSecond, echo?.Record, echo?.Steps,
                echo?.MaxRatePerSecond, Verdict, [], Machine);
            Reports.Write(Path.Combine(folder, run.Ceiling ? $"{run.Scenario}-ceiling" : $"{run.Scenario}-at-rate"), report);
        }
    }
}
