using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using HdrHistogram;
using Spectre.Console;

namespace LoyaltyGrains.LoadTests;

/// <summary>Everything a report shows: the run (or find-max steps), the echo baseline, the correctness verdict, facts.</summary>
public sealed record RunReport(string Scenario, string RunId, string CommandLine, LoadOptions Options, RunRecord Run, IReadOnlyList<StepResult>? Steps,
    double? MaxRatePerSecond, RunRecord? Baseline, IReadOnlyList<StepResult>? BaselineSteps, double? BaselineMaxRatePerSecond, Verdict? Verdict,
    IReadOnlyList<string> Notes, MachineFacts Machine);

public sealed record MachineFacts(int Cores, string CpuModel, double MemoryGiB, string Os, string DotNet, bool ServerGc, string? GitCommit)
{
    public static MachineFacts Collect()
    {
        var cpu = ReadFirst("/proc/cpuinfo", "model name") ?? RuntimeInformation.ProcessArchitecture.ToString();
        var memKb = ReadFirst("/proc/meminfo", "MemTotal") is { } mem && long.TryParse(mem.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], out var kb) ? kb : 0;
        var memoryGiB = memKb > 0 ? memKb / 1024.0 / 1024.0 : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (double)(1L << 30);
        return new MachineFacts(Environment.ProcessorCount, cpu, Math.Round(memoryGiB, 1), RuntimeInformation.OSDescription, RuntimeInformation.FrameworkDescription,
            System.Runtime.GCSettings.IsServerGC, ReadGitCommit());
    }

    public override string ToString() =>
        $"{Cores} cores ({CpuModel}), {MemoryGiB:0.#} GiB, {Os}, {DotNet}, {(ServerGc ? "server" : "workstation")} GC{(GitCommit is null ? "" : $", commit {GitCommit}")}";

    private static string? ReadFirst(string path, string key)
    {
        try
        {
            return File.Exists(path) ? File.ReadLines(path).Where(l => l.StartsWith(key, StringComparison.Ordinal)).Select(l => l[(l.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim()).FirstOrDefault() : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static string? ReadGitCommit()
    {
        try
        {
            using var git = Process.Start(new ProcessStartInfo("git", "rev-parse --short HEAD") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false });
            if (git is null || !git.WaitForExit(2_000) || git.ExitCode != 0) return null;
            var commit = git.StandardOutput.ReadToEnd().Trim();
            return commit.Length == 0 ? null : commit;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}

/// <summary>Console summary, report.md, report.html (inline SVG charts) and summary.json in the output folder.</summary>
public static class Reports
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
    private static readonly double[] TablePercentiles = [50, 90, 99, 99.9];

    public static void Console(RunReport report)
    {
        var run = report.Run;
        var table = new Table().Title($"[bold]{Markup.Escape(report.Scenario)}[/] (run {Markup.Escape(report.RunId)})").Border(TableBorder.Rounded);
        table.AddColumns("operation", "count", "ok", "errors by status", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms");
        foreach (var c in table.Columns.Skip(1)) c.RightAligned();
        table.Columns[3].LeftAligned();
        foreach (var (name, stats) in Operations(run))
        {
            table.AddRow(Markup.Escape(name), N(stats.Count), N(stats.OkCount), Markup.Escape(Errors(stats)), F(RunRecord.Ms(stats.Histogram, 50)), F(RunRecord.Ms(stats.Histogram, 90)),
                F(RunRecord.Ms(stats.Histogram, 99)), F(RunRecord.Ms(stats.Histogram, 99.9)), F(RunRecord.MaxMs(stats.Histogram)));
        }
        table.AddRow("[bold]all flows[/]", N(run.OkCount + run.ErrorCount), N(run.OkCount), Markup.Escape(string.Join(", ", run.ErrorsByStatus().Select(e => $"{e.Key} {e.Value:N0}"))),
            F(RunRecord.Ms(run.AllFlows, 50)), F(RunRecord.Ms(run.AllFlows, 90)), F(RunRecord.Ms(run.AllFlows, 99)), F(RunRecord.Ms(run.AllFlows, 99.9)), F(RunRecord.MaxMs(run.AllFlows)));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine(Markup.Escape(Headline(run)));
        if (report.Steps is not null)
        {
            var steps = new Table().Title("find-max steps").Border(TableBorder.Simple).AddColumns("offered/s", "ok/s", "p99 ms", "errors+dropped %", "held");
            foreach (var s in report.Steps)
            {
                steps.AddRow(N(s.Record.OfferedPerSecond), N(s.Record.OkPerSecond), F(RunRecord.Ms(s.Record.AllFlows, 99)), F(s.Record.FailedPercent), s.Held ? "[green]yes[/]" : "[red]no[/]");
            }
            AnsiConsole.Write(steps);
            AnsiConsole.MarkupLine(report.MaxRatePerSecond is { } max
                ? $"[bold]highest sustainable rate: {max:N0}/s[/] (p99 ≤ {report.Options.P99ThresholdMs} ms, errors+dropped ≤ {report.Options.MaxErrorPercent}%)"
                : "[red]no step held: lower --rate or relax --p99-ms[/]");
        }
        if (BaselineLine(report) is { } baseline) AnsiConsole.MarkupLine(Markup.Escape(baseline));
        CpuReport.Table(report)?.WriteConsole();
        foreach (var line in CpuReport.Ratios(report)) AnsiConsole.MarkupLine($"[bold]{Markup.Escape(line)}[/]");
        foreach (var note in report.Notes) AnsiConsole.MarkupLine($"[yellow]note:[/] {Markup.Escape(note)}");
        if (report.Verdict is { } verdict)
        {
            AnsiConsole.MarkupLine(verdict.Passed
                ? $"[green]correctness: PASS[/] ({Markup.Escape(VerdictFigures(verdict))})"
                : $"[red]correctness: FAIL[/] ({verdict.ProblemCount:N0} problems; {Markup.Escape(VerdictFigures(verdict))})");
            foreach (var problem in verdict.Problems.Take(10)) AnsiConsole.MarkupLine($"  [red]-[/] {Markup.Escape(problem)}");
        }
    }

    public static void Write(string folder, RunReport report)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "report.md"), Markdown(report));
        File.WriteAllText(Path.Combine(folder, "report.html"), Html(report));
        File.WriteAllText(Path.Combine(folder, "summary.json"), JsonSerializer.Serialize(Summary(report), Json));
    }

    private static IEnumerable<(string Name, OperationStats Stats)> Operations(RunRecord run) =>
        run.Flows.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => ($"flow: {p.Key}", p.Value))
            .Concat(run.Rpcs.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => ($"rpc: {p.Key}", p.Value)));

    private static string Headline(RunRecord run) =>
        $"{run.Name}: offered {run.OfferedPerSecond:N0}/s ({run.OfferedCount:N0} arrivals in {run.MeasuredSeconds:0.#} s), ok {run.OkPerSecond:N0}/s, " +
        $"RPCs {run.RpcPerSecond:N0}/s, errors {run.ErrorCount:N0}, dropped {run.DroppedCount:N0}, unanswered {run.UnfinishedAtEnd:N0}; " +
        $"scheduler dispatch lag p99 {F(RunRecord.Ms(run.DispatchLag, 99))} ms";

    private static string? BaselineLine(RunReport report)
    {
        if (report.Baseline is null) return null;
        if (report.BaselineMaxRatePerSecond is { } echoMax && report.MaxRatePerSecond is { } max)
        {
            return $"echo baseline: highest sustainable {echoMax:N0}/s; {report.Scenario} reaches {max / echoMax:P0} of it";
        }
        var b = report.Baseline;
        return $"echo baseline at the same offered rate: ok {b.OkPerSecond:N0}/s, p50 {F(RunRecord.Ms(b.AllFlows, 50))} ms, p99 {F(RunRecord.Ms(b.AllFlows, 99))} ms; " +
            $"throughput ratio {report.Run.OkPerSecond / Math.Max(1e-9, b.OkPerSecond):P0} of echo, p99 ratio {RunRecord.Ms(report.Run.AllFlows, 99) / Math.Max(1e-9, RunRecord.Ms(b.AllFlows, 99)):0.0}× echo" +
            (report.Scenario == "echo" ? "" : " (a ratio of throughputs at one offered rate is 100% until either side saturates: use --find-max for the ratio of ceilings)");
    }

    private static string VerdictFigures(Verdict v) =>
        $"{v.MembersChecked:N0} balances, {v.StatementsChecked:N0} statements, {v.DuplicatesChecked:N0} DUPLICATE replies checked; {v.UnknownResolved:N0} unknown outcomes resolved" +
        (v.UnknownUnresolved > 0 ? $", {v.UnknownUnresolved:N0} unresolved" : "");

    private static object Summary(RunReport report)
    {
        object Figures(RunRecord r) => new
        {
            r.Name, OfferedCount = r.OfferedCount, OfferedPerSecond = r.OfferedPerSecond, OkCount = r.OkCount, OkPerSecond = r.OkPerSecond, ErrorCount = r.ErrorCount,
            DroppedCount = r.DroppedCount, UnansweredCount = r.UnfinishedAtEnd, RpcPerSecond = r.RpcPerSecond, MeasuredSeconds = r.MeasuredSeconds, ErrorsByStatus = r.ErrorsByStatus(),
            LatencyMs = Latency(r.AllFlows), DispatchLagMs = Latency(r.DispatchLag),
            Operations = Operations(r).ToDictionary(o => o.Name, o => new { Count = o.Stats.Count, OkCount = o.Stats.OkCount, Statuses = o.Stats.Statuses, LatencyMs = Latency(o.Stats.Histogram) }),
            PerSecond = r.Series(), Cpu = CpuReport.Json(r),
        };
        return new
        {
            report.Scenario, report.RunId, report.CommandLine, StartedUtc = report.Run.StartedUtc,
            Options = new
            {
                report.Options.Target, report.Options.RatePerSecond, report.Options.RampToPerSecond, DurationSeconds = report.Options.Duration.TotalSeconds,
                WarmupSeconds = report.Options.Warmup.TotalSeconds, report.Options.Connections, report.Options.Members, report.Options.CardsPerMember, report.Options.MaxInFlight,
                report.Options.Seed, report.Options.FindMax, StepSeconds = report.Options.StepDuration.TotalSeconds, report.Options.P99ThresholdMs, report.Options.MaxErrorPercent,
                RequestTimeoutSeconds = report.Options.RequestTimeout.TotalSeconds,
            },
            Run = Figures(report.Run),
            FindMax = report.Steps is null ? null : new { report.MaxRatePerSecond, Steps = report.Steps.Select(s => new { s.RatePerSecond, s.Held, s.Why, Figures = Figures(s.Record) }) },
            Baseline = report.Baseline is null ? null : new
            {
                Figures = Figures(report.Baseline), report.BaselineMaxRatePerSecond,
                OkPerSecondRatio = report.Run.OkPerSecond / Math.Max(1e-9, report.Baseline.OkPerSecond),
                MaxRateRatio = report.MaxRatePerSecond / report.BaselineMaxRatePerSecond,
                P99Ratio = RunRecord.Ms(report.Run.AllFlows, 99) / Math.Max(1e-9, RunRecord.Ms(report.Baseline.AllFlows, 99)),
                CpuRatios = CpuReport.Ratios(report),
            },
            Correctness = report.Verdict is not { } v ? null : new
            {
                v.Passed, v.MembersChecked, v.StatementsChecked, v.DuplicatesChecked, v.UnknownResolved, v.UnknownUnresolved, v.ProblemCount, Problems = v.Problems.Take(100),
            },
            report.Notes, report.Machine,
        };
    }

    private static object Latency(HistogramBase h) => new
    {
        P50 = RunRecord.Ms(h, 50), P90 = RunRecord.Ms(h, 90), P99 = RunRecord.Ms(h, 99), P999 = RunRecord.Ms(h, 99.9), Max = RunRecord.MaxMs(h),
        Mean = h.TotalCount == 0 ? 0 : h.GetMean() / 1000.0,
    };

    private static string Markdown(RunReport report)
    {
        var run = report.Run;
        var md = new StringBuilder();
        md.AppendLine(Invariant, $"# Load test: {report.Scenario}").AppendLine();
        md.AppendLine(Invariant, $"Run `{report.RunId}`, started {run.StartedUtc:yyyy-MM-dd HH:mm:ss} UTC, against `{report.Options.Target}`.").AppendLine();
        md.AppendLine("```").AppendLine(report.CommandLine).AppendLine("```").AppendLine();
        md.AppendLine(Invariant, $"Machine: {report.Machine}").AppendLine();
        md.AppendLine(Invariant, $"Open model: {Shape(report)}; latency counts from each arrival's scheduled send time (queueing included).").AppendLine();
        md.AppendLine(Headline(run)).AppendLine();
        md.AppendLine("| operation | count | ok | errors by status | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |").AppendLine("|---|---:|---:|---|---:|---:|---:|---:|---:|");
        foreach (var (name, stats) in Operations(run))
        {
            md.AppendLine(Invariant, $"| {name} | {N(stats.Count)} | {N(stats.OkCount)} | {Errors(stats)} | {string.Join(" | ", TablePercentiles.Select(p => F(RunRecord.Ms(stats.Histogram, p))))} | {F(RunRecord.MaxMs(stats.Histogram))} |");
        }
        md.AppendLine(Invariant, $"| **all flows** | {N(run.OkCount + run.ErrorCount)} | {N(run.OkCount)} | {string.Join(", ", run.ErrorsByStatus().Select(e => $"{e.Key} {e.Value:N0}"))} | {string.Join(" | ", TablePercentiles.Select(p => F(RunRecord.Ms(run.AllFlows, p))))} | {F(RunRecord.MaxMs(run.AllFlows))} |");
        md.AppendLine();
        if (report.Steps is not null)
        {
            md.AppendLine("## Find-max steps").AppendLine().AppendLine("| step | offered/s | ok/s | p99 ms | errors+dropped % | held | why |").AppendLine("|---:|---:|---:|---:|---:|---|---|");
            var k = 1;
            foreach (var s in report.Steps) md.AppendLine(Invariant, $"| {k++} | {N(s.Record.OfferedPerSecond)} | {N(s.Record.OkPerSecond)} | {F(RunRecord.Ms(s.Record.AllFlows, 99))} | {F(s.Record.FailedPercent)} | {(s.Held ? "yes" : "no")} | {s.Why} |");
            md.AppendLine().AppendLine(report.MaxRatePerSecond is { } max ? $"**Highest sustainable rate: {max:N0}/s** (p99 ≤ {report.Options.P99ThresholdMs} ms, errors+dropped ≤ {report.Options.MaxErrorPercent}%)." : "No step held.").AppendLine();
        }
        if (BaselineLine(report) is { } baseline) md.AppendLine("## Echo baseline").AppendLine().AppendLine(baseline).AppendLine();
        if (CpuReport.Table(report) is { } cpu)
        {
            md.AppendLine("## CPU per request").AppendLine().Append(cpu.Markdown()).AppendLine();
            foreach (var line in CpuReport.Ratios(report)) md.AppendLine(Invariant, $"- {line}");
            md.AppendLine();
        }
        foreach (var note in report.Notes) md.AppendLine(Invariant, $"> note: {note}").AppendLine();
        if (report.Verdict is { } v)
        {
            md.AppendLine("## Correctness").AppendLine().AppendLine(Invariant, $"**{(v.Passed ? "PASS" : "FAIL")}**: {VerdictFigures(v)}.").AppendLine();
            foreach (var problem in v.Problems.Take(20)) md.AppendLine(Invariant, $"- {problem}");
            if (v.Problems.Count > 0) md.AppendLine();
        }
        md.AppendLine("Charts (throughput and latency per second, latency by percentile): `report.html`. Figures: `summary.json`.");
        return md.ToString();
    }

    private static string Shape(RunReport report) => report.Options.FindMax
        ? $"find-max: steps of {report.Options.StepDuration.TotalSeconds:0.#} s after {FindMax.StepWarmup.TotalSeconds:0} s warm-up, starting at {report.Options.RatePerSecond:N0}/s"
        : $"{report.Options.RatePerSecond:N0}/s{(report.Options.RampToPerSecond is { } to ? $" rising linearly to {to:N0}/s" : "")} for {report.Options.Duration.TotalSeconds:0.#} s after {report.Options.Warmup.TotalSeconds:0.#} s warm-up, " +
          $"{report.Options.Connections} connections, at most {report.Options.MaxInFlight:N0} in flight";

    private static string Html(RunReport report)
    {
        var run = report.Run;
        var html = new StringBuilder();
        html.Append("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Load test: ").Append(Esc(report.Scenario)).Append("</title><style>")
            .Append("body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222;line-height:1.4}h1{margin-bottom:4px}h2{margin-top:28px;border-bottom:1px solid #ddd}")
            .Append("table{border-collapse:collapse;margin:10px 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f5f5f5}td:first-child,th:first-child{text-align:left}td.l{text-align:left}")
            .Append("code,pre{background:#f4f4f4;padding:2px 4px;white-space:pre-wrap;word-break:break-all}.pass{color:#070;font-weight:bold}.fail{color:#b00;font-weight:bold}.note{background:#fff8e0;padding:6px 10px;border-left:4px solid #e0b000}.muted{color:#666}svg{max-width:100%;height:auto}")
            .Append("</style></head><body>");
        html.Append("<h1>Load test: ").Append(Esc(report.Scenario)).Append("</h1>");
        html.Append(Invariant, $"<p class=\"muted\">run <code>{Esc(report.RunId)}</code>, started {run.StartedUtc:yyyy-MM-dd HH:mm:ss} UTC, target <code>{Esc(report.Options.Target)}</code><br>{Esc(report.Machine.ToString())}</p>");
        html.Append("<pre>").Append(Esc(report.CommandLine)).Append("</pre>");
        html.Append("<p>").Append(Esc($"Open model: {Shape(report)}. Latency counts from each arrival's scheduled send time, so queueing is included.")).Append("</p>");
        if (report.Verdict is { } v)
        {
            html.Append(Invariant, $"<p class=\"{(v.Passed ? "pass" : "fail")}\">Correctness: {(v.Passed ? "PASS" : "FAIL")}</p><p>{Esc(VerdictFigures(v))}.</p>");
            if (v.Problems.Count > 0) html.Append("<ul>").Append(string.Concat(v.Problems.Take(20).Select(p => $"<li>{Esc(p)}</li>"))).Append("</ul>");
        }
        foreach (var note in report.Notes) html.Append("<p class=\"note\">").Append(Esc(note)).Append("</p>");
        html.Append("<p>").Append(Esc(Headline(run))).Append("</p>");
        if (BaselineLine(report) is { } baseline) html.Append("<p><b>Echo baseline.</b> ").Append(Esc(baseline)).Append("</p>");
        html.Append("<table><tr><th>operation</th><th>count</th><th>ok</th><th>errors by status</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th></tr>");
        foreach (var (name, stats) in Operations(run))
        {
            html.Append(Invariant, $"<tr><td>{Esc(name)}</td><td>{N(stats.Count)}</td><td>{N(stats.OkCount)}</td><td class=\"l\">{Esc(Errors(stats))}</td>");
            foreach (var p in TablePercentiles) html.Append(Invariant, $"<td>{F(RunRecord.Ms(stats.Histogram, p))}</td>");
            html.Append(Invariant, $"<td>{F(RunRecord.MaxMs(stats.Histogram))}</td></tr>");
        }
        html.Append(Invariant, $"<tr><th>all flows</th><th>{N(run.OkCount + run.ErrorCount)}</th><th>{N(run.OkCount)}</th><th class=\"l\">{Esc(string.Join(", ", run.ErrorsByStatus().Select(e => $"{e.Key} {e.Value:N0}")))}</th>");
        foreach (var p in TablePercentiles) html.Append(Invariant, $"<th>{F(RunRecord.Ms(run.AllFlows, p))}</th>");
        html.Append(Invariant, $"<th>{F(RunRecord.MaxMs(run.AllFlows))}</th></tr></table>");
        if (CpuReport.Table(report) is { } cpu)
        {
            html.Append("<h2>CPU per request</h2>").Append(cpu.Html());
            foreach (var line in CpuReport.Ratios(report)) html.Append("<p><b>").Append(Esc(line)).Append("</b></p>");
        }

        if (report.Steps is { } steps) HtmlFindMax(html, report, steps);
        HtmlCharts(html, report);
        html.Append("</body></html>");
        return html.ToString();
    }

    /// <summary>The find-max steps: a table and the achieved/latency-against-offered charts.</summary>
    private static void HtmlFindMax(StringBuilder html, RunReport report, IReadOnlyList<StepResult> steps)
    {
        html.Append("<h2>Find-max</h2>");
        html.Append(report.MaxRatePerSecond is { } max ? $"<p><b>Highest sustainable rate: {max.ToString("N0", Invariant)}/s</b> (p99 ≤ {report.Options.P99ThresholdMs.ToString(Invariant)} ms, errors+dropped ≤ {report.Options.MaxErrorPercent.ToString(Invariant)}%).</p>" : "<p class=\"fail\">No step held.</p>");
        html.Append("<table><tr><th>step</th><th>offered/s</th><th>ok/s</th><th>p50 ms</th><th>p99 ms</th><th>errors+dropped %</th><th>held</th><th>why</th></tr>");
        var k = 1;
        foreach (var s in steps)
        {
            html.Append(Invariant, $"<tr><td>{k++}</td><td>{N(s.Record.OfferedPerSecond)}</td><td>{N(s.Record.OkPerSecond)}</td><td>{F(RunRecord.Ms(s.Record.AllFlows, 50))}</td><td>{F(RunRecord.Ms(s.Record.AllFlows, 99))}</td><td>{F(s.Record.FailedPercent)}</td><td>{(s.Held ? "yes" : "no")}</td><td class=\"l\">{Esc(s.Why)}</td></tr>");
        }
        html.Append("</table>");
        var ordered = steps.OrderBy(s => s.RatePerSecond).ToArray();
        List<Series> achieved = [new("ok/s", "#1f77b4", [.. ordered.Select(s => (s.RatePerSecond, s.Record.OkPerSecond))]), new("offered (ideal)", "#999", [.. ordered.Select(s => (s.RatePerSecond, s.RatePerSecond))], Dashed: true)];
        List<Series> p99 = [new("p99 ms", "#d62728", [.. ordered.Select(s => (s.RatePerSecond, RunRecord.Ms(s.Record.AllFlows, 99)))]), new("p50 ms", "#2ca02c", [.. ordered.Select(s => (s.RatePerSecond, RunRecord.Ms(s.Record.AllFlows, 50)))])];
        if (report.BaselineSteps is { } echoSteps)
        {
            var e = echoSteps.OrderBy(s => s.RatePerSecond).ToArray();
            achieved.Add(new("echo ok/s", "#888", [.. e.Select(s => (s.RatePerSecond, s.Record.OkPerSecond))]));
            p99.Add(new("echo p99 ms", "#888", [.. e.Select(s => (s.RatePerSecond, RunRecord.Ms(s.Record.AllFlows, 99)))], Dashed: true));
        }
        html.Append("<h3>Achieved against offered, per step</h3>").Append(Svg.LineChart(achieved, "offered arrivals per second", "ok flows per second"));
        html.Append("<h3>Latency per step</h3>").Append(Svg.LineChart(p99, "offered arrivals per second", "latency (log scale)", logY: true,
            horizontalLine: report.Options.P99ThresholdMs, horizontalLabel: $"p99 threshold {report.Options.P99ThresholdMs.ToString(Invariant)} ms"));
        html.Append("<p class=\"muted\">The charts below are for the last step that held (or the last step when none held).</p>");
    }

    /// <summary>Throughput and latency over time, and latency by percentile, for the run (or the find-max step shown).</summary>
    private static void HtmlCharts(StringBuilder html, RunReport report)
    {
        var run = report.Run;
        var series = run.Series();
        html.Append("<h2>Throughput over time</h2>");
        html.Append(Svg.LineChart([
            new("offered/s", "#999", [.. series.Where(s => s.Second < run.MeasuredSeconds).Select(s => ((double)s.Second, (double)s.Offered))], Dashed: true),
            new("ok/s", "#1f77b4", [.. series.Select(s => ((double)s.Second, (double)s.Ok))]),
            new("errors/s", "#d62728", [.. series.Select(s => ((double)s.Second, (double)s.Errors))]),
            new("dropped/s", "#ff7f0e", [.. series.Select(s => ((double)s.Second, (double)s.Dropped))]),
        ], "seconds into the measured window (completions by second of reply)", "flows per second"));
        html.Append("<h2>Latency percentiles over time</h2>");
        html.Append(Svg.LineChart([
            new("p50", "#2ca02c", [.. series.Where(s => s.Ok + s.Errors > 0).Select(s => ((double)s.Second, s.P50Ms))]),
            new("p90", "#1f77b4", [.. series.Where(s => s.Ok + s.Errors > 0).Select(s => ((double)s.Second, s.P90Ms))]),
            new("p99", "#d62728", [.. series.Where(s => s.Ok + s.Errors > 0).Select(s => ((double)s.Second, s.P99Ms))]),
            new("max", "#9467bd", [.. series.Where(s => s.Ok + s.Errors > 0).Select(s => ((double)s.Second, s.MaxMs))], Dashed: true),
        ], "seconds into the measured window", "flow latency (log scale)", logY: true));
        html.Append("<h2>Latency by percentile</h2>");
        var distribution = new List<Series> { Distribution("all flows", "#d62728", run.AllFlows) };
        var palette = new[] { "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22" };
        var c = 0;
        foreach (var (name, stats) in run.Rpcs.OrderByDescending(r => r.Value.Count).Take(5)) distribution.Add(Distribution(name, palette[c++ % palette.Length], stats.Histogram));
        if (report.Baseline is { } echo && report.Scenario != "echo") distribution.Add(Distribution("echo baseline", "#555", echo.AllFlows) with { Dashed = true });
        html.Append(Svg.LineChart(distribution, "percentile", "latency (log scale)", logY: true, xTicks: Svg.NinesTicks));
        html.Append("<p class=\"muted\">Percentile axis in \"nines\": each step right is ten times rarer. A flow is one arrival (for purchases: authorize, capture and any retry); RPC lines are single calls. Dispatch lag (how late the tool itself sent requests) p99: ")
            .Append(F(RunRecord.Ms(run.DispatchLag, 99))).Append(" ms, max ").Append(F(RunRecord.MaxMs(run.DispatchLag))).Append(" ms.</p>");
    }

    private static Series Distribution(string name, string color, HistogramBase h) =>
        new(name, color, h.TotalCount == 0 ? [] : [.. Svg.DistributionPercentiles.Where(p => p == 0 || h.TotalCount * (100 - p) / 100 >= 1).Select(p => (Svg.Nines(p), h.GetValueAtPercentile(p) / 1000.0))]);

    private static string Errors(OperationStats stats) =>
        string.Join(", ", stats.Statuses.Where(s => s.Key != OpOutcome.OkStatus).OrderByDescending(s => s.Value).Select(s => $"{s.Key} {s.Value:N0}"));

    private static string F(double value) => value.ToString("0.00", Invariant);

    private static string N(double value) => value.ToString("N0", Invariant);

    private static string Esc(string text) => System.Net.WebUtility.HtmlEncode(text);
}
