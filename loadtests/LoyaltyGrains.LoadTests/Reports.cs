using HdrHistogram;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Spectre.Console;

namespace LoyaltyGrains.LoadTests;

public sealed record Verdict(bool Passed, int MembersChecked, int LedgersChecked, long DuplicatesChecked, IReadOnlyList<string> Problems);

/// <summary>Console summary, report.md, report.html (inline SVG charts) and summary.json in the output folder.</summary>
public static class Reports
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static void Console(RunRecord run, RunRecord? baseline, Verdict? verdict)
    {
        var table = new Table().Title($"[bold]{run.Name}[/]").AddColumns("operation", "count", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms");
        foreach (var (op, h) in run.ByOperation.OrderBy(p => p.Key, StringComparer.Ordinal).Append(new("all", run.All)))
        {
            table.AddRow(op, h.TotalCount.ToString("N0", Invariant), F(RunRecord.Ms(h, 50)), F(RunRecord.Ms(h, 90)), F(RunRecord.Ms(h, 99)),
                F(RunRecord.Ms(h, 99.9)), F(h.GetMaxValue() / 1000.0));
        }
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"offered {run.Offered:N0} ({run.Offered / run.Options.Duration.TotalSeconds:N0}/s), achieved {run.AchievedPerSecond:N0}/s, " +
            $"ok {run.OkCount:N0}, errors {run.ErrorCount:N0} ({Markup.Escape(Statuses(run))}), dropped {run.DroppedCount:N0}");
        if (baseline is not null)
        {
            AnsiConsole.MarkupLine($"echo baseline {baseline.AchievedPerSecond:N0}/s (p99 {F(RunRecord.Ms(baseline.All, 99))} ms); ratio {Ratio(run, baseline)}");
        }
        if (verdict is not null)
        {
            AnsiConsole.MarkupLine(verdict.Passed
                ? $"[green]correctness: PASS[/] ({verdict.MembersChecked} balances, {verdict.LedgersChecked} ledgers, {verdict.DuplicatesChecked} duplicates checked)"
                : $"[red]correctness: FAIL[/] ({verdict.Problems.Count} problems; first: {Markup.Escape(verdict.Problems[0])})");
        }
    }

    public static void Write(string folder, string commandLine, RunRecord run, RunRecord? baseline, Verdict? verdict)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "report.md"), Markdown(commandLine, run, baseline, verdict));
        File.WriteAllText(Path.Combine(folder, "report.html"), Html(commandLine, run, baseline, verdict));
        File.WriteAllText(Path.Combine(folder, "summary.json"), JsonSerializer.Serialize(Summary(run, baseline, verdict), Indented));
    }

    private static object Summary(RunRecord run, RunRecord? baseline, Verdict? verdict) => new
    {
        scenario = run.Name, offered = run.Offered, offeredPerSecond = run.Offered / run.Options.Duration.TotalSeconds, achievedPerSecond = run.AchievedPerSecond,
        ok = run.OkCount, errors = run.ErrorCount, dropped = run.DroppedCount, statuses = run.Statuses,
        latencyMs = new { p50 = RunRecord.Ms(run.All, 50), p90 = RunRecord.Ms(run.All, 90), p99 = RunRecord.Ms(run.All, 99), p999 = RunRecord.Ms(run.All, 99.9), max = run.All.GetMaxValue() / 1000.0 },
        operations = run.ByOperation.ToDictionary(p => p.Key, p => new { count = p.Value.TotalCount, p50 = RunRecord.Ms(p.Value, 50), p99 = RunRecord.Ms(p.Value, 99), p999 = RunRecord.Ms(p.Value, 99.9) }),
        baseline = baseline is null ? null : new { achievedPerSecond = baseline.AchievedPerSecond, p99 = RunRecord.Ms(baseline.All, 99), ratio = run.AchievedPerSecond / Math.Max(1, baseline.AchievedPerSecond) },
        correctness = verdict is null ? null : new { passed = verdict.Passed, verdict.MembersChecked, verdict.LedgersChecked, verdict.DuplicatesChecked, problems = verdict.Problems.Take(50) },
        machine = Machine(),
    };

    private static string Markdown(string commandLine, RunRecord run, RunRecord? baseline, Verdict? verdict)
    {
        var md = new StringBuilder();
        md.AppendLine(Invariant, $"# Load test: {run.Name}").AppendLine();
        md.AppendLine(Invariant, $"`{commandLine}`").AppendLine();
        md.AppendLine(Invariant, $"Machine: {Machine()}").AppendLine();
        md.AppendLine(Invariant, $"Open model: {run.Options.RatePerSecond:N0}/s{(run.Options.RampToPerSecond is { } to ? $" rising to {to:N0}/s" : "")} for {run.Options.Duration.TotalSeconds:0} s after {run.Options.Warmup.TotalSeconds:0} s warm-up; latency from each request's scheduled send time.").AppendLine();
        md.AppendLine("| offered/s | achieved/s | ok | errors | dropped |").AppendLine("|---:|---:|---:|---:|---:|");
        md.AppendLine(Invariant, $"| {run.Offered / run.Options.Duration.TotalSeconds:N0} | {run.AchievedPerSecond:N0} | {run.OkCount:N0} | {run.ErrorCount:N0} {Statuses(run)} | {run.DroppedCount:N0} |").AppendLine();
        md.AppendLine("| operation | count | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |").AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var (op, h) in run.ByOperation.OrderBy(p => p.Key, StringComparer.Ordinal).Append(new("all", run.All)))
        {
            md.AppendLine(Invariant, $"| {op} | {h.TotalCount:N0} | {F(RunRecord.Ms(h, 50))} | {F(RunRecord.Ms(h, 90))} | {F(RunRecord.Ms(h, 99))} | {F(RunRecord.Ms(h, 99.9))} | {F(h.GetMaxValue() / 1000.0)} |");
        }
        md.AppendLine();
        if (baseline is not null) md.AppendLine(Invariant, $"Bare gRPC echo baseline in the same run: {baseline.AchievedPerSecond:N0}/s achieved at the same offered rate (p99 {F(RunRecord.Ms(baseline.All, 99))} ms); ratio {Ratio(run, baseline)}.").AppendLine();
        if (verdict is not null)
        {
            md.AppendLine(Invariant, $"Correctness: **{(verdict.Passed ? "PASS" : "FAIL")}** — {verdict.MembersChecked} balances, {verdict.LedgersChecked} ledgers and {verdict.DuplicatesChecked} duplicate replies checked against the replies received.");
            foreach (var problem in verdict.Problems.Take(20)) md.AppendLine(Invariant, $"- {problem}");
            md.AppendLine();
        }
        md.AppendLine("Charts: report.html (throughput per second, p50/p99 per second, latency percentiles).");
        return md.ToString();
    }

    private static string Html(string commandLine, RunRecord run, RunRecord? baseline, Verdict? verdict)
    {
        var series = run.Series();
        var html = new StringBuilder();
        html.Append("<!doctype html><html><head><meta charset=\"utf-8\"><title>Load test: ").Append(Esc(run.Name)).Append("</title><style>")
            .Append("body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}th:first-child,td:first-child{text-align:left}code{background:#f4f4f4;padding:2px 4px}.pass{color:#070}.fail{color:#b00}")
            .Append("</style></head><body>");
        html.Append("<h1>Load test: ").Append(Esc(run.Name)).Append("</h1><p><code>").Append(Esc(commandLine)).Append("</code></p><p>").Append(Esc(Machine())).Append("</p>");
        html.Append(Invariant, $"<p>Offered {run.Offered / run.Options.Duration.TotalSeconds:N0}/s, achieved {run.AchievedPerSecond:N0}/s, ok {run.OkCount:N0}, errors {run.ErrorCount:N0} {Esc(Statuses(run))}, dropped {run.DroppedCount:N0}.");
        if (baseline is not null) html.Append(Invariant, $" Echo baseline {baseline.AchievedPerSecond:N0}/s; ratio {Esc(Ratio(run, baseline))}.");
        html.Append("</p>");
        if (verdict is not null)
        {
            html.Append("<p class=\"").Append(verdict.Passed ? "pass" : "fail").Append(Invariant, $"\">Correctness: {(verdict.Passed ? "PASS" : "FAIL")} ({verdict.MembersChecked} balances, {verdict.LedgersChecked} ledgers, {verdict.DuplicatesChecked} duplicates)</p>");
        }
        html.Append("<table><tr><th>operation</th><th>count</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th></tr>");
        foreach (var (op, h) in run.ByOperation.OrderBy(p => p.Key, StringComparer.Ordinal).Append(new("all", run.All)))
        {
            html.Append(Invariant, $"<tr><td>{Esc(op)}</td><td>{h.TotalCount:N0}</td><td>{F(RunRecord.Ms(h, 50))}</td><td>{F(RunRecord.Ms(h, 90))}</td><td>{F(RunRecord.Ms(h, 99))}</td><td>{F(RunRecord.Ms(h, 99.9))}</td><td>{F(h.GetMaxValue() / 1000.0)}</td></tr>");
        }
        html.Append("</table>");
        html.Append("<h2>Throughput (completed per second)</h2>").Append(LineChart([("completed/s", "#1f77b4", series.Select(s => (double)s.Completed).ToArray())], "requests/s"));
        html.Append("<h2>Latency per second (ms)</h2>").Append(LineChart([("p50", "#2ca02c", series.Select(s => s.P50Ms).ToArray()), ("p99", "#d62728", series.Select(s => s.P99Ms).ToArray())], "ms"));
        double[] percentiles = [50, 75, 90, 95, 99, 99.9, 99.99, 100];
        html.Append("<h2>Latency by percentile (ms)</h2>").Append(BarChart(percentiles.Select(p => ($"p{p.ToString(Invariant)}", p >= 100 ? run.All.GetMaxValue() / 1000.0 : RunRecord.Ms(run.All, p))).ToArray(),
            baseline is null ? null : percentiles.Select(p => p >= 100 ? baseline.All.GetMaxValue() / 1000.0 : RunRecord.Ms(baseline.All, p)).ToArray()));
        html.Append("</body></html>");
        return html.ToString();
    }

    private static string LineChart((string Name, string Color, double[] Values)[] lines, string unit)
    {
        const int width = 900, height = 260, left = 60, bottom = 30, top = 10;
        var max = Math.Max(1, lines.SelectMany(l => l.Values).DefaultIfEmpty(1).Max()) * 1.1;
        var count = Math.Max(2, lines.Max(l => l.Values.Length));
        var svg = new StringBuilder();
        svg.Append(Invariant, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-size=\"11\">");
        for (var g = 0; g <= 4; g++)
        {
            var y = top + (height - top - bottom) * g / 4.0;
            svg.Append(Invariant, $"<line x1=\"{left}\" x2=\"{width}\" y1=\"{y:0.#}\" y2=\"{y:0.#}\" stroke=\"#eee\"/><text x=\"{left - 6}\" y=\"{y + 4:0.#}\" text-anchor=\"end\">{max * (4 - g) / 4:0.#}</text>");
        }
        svg.Append(Invariant, $"<text x=\"{left}\" y=\"{height - 8}\">0 s</text><text x=\"{width - 4}\" y=\"{height - 8}\" text-anchor=\"end\">{count - 1} s</text><text x=\"4\" y=\"12\">{Esc(unit)}</text>");
        var legendX = left + 10;
        foreach (var (name, color, values) in lines)
        {
            var points = string.Join(" ", values.Select((v, i) => $"{(left + (width - left) * i / (double)(count - 1)).ToString("0.#", Invariant)},{(top + (height - top - bottom) * (1 - v / max)).ToString("0.#", Invariant)}"));
            svg.Append(Invariant, $"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{points}\"/><text x=\"{legendX}\" y=\"{top + 12}\" fill=\"{color}\">{Esc(name)}</text>");
            legendX += 80;
        }
        return svg.Append("</svg>").ToString();
    }

    private static string BarChart((string Label, double Value)[] bars, double[]? baseline)
    {
        const int width = 900, height = 260, left = 60, bottom = 30, top = 20;
        var max = Math.Max(0.001, bars.Select(b => b.Value).Concat(baseline ?? []).Max()) * 1.15;
        var slot = (width - left) / (double)bars.Length;
        var svg = new StringBuilder();
        svg.Append(Invariant, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-size=\"11\">");
        for (var i = 0; i < bars.Length; i++)
        {
            var x = left + slot * i;
            var h = (height - top - bottom) * bars[i].Value / max;
            svg.Append(Invariant, $"<rect x=\"{x + 6:0.#}\" y=\"{height - bottom - h:0.#}\" width=\"{slot / 2 - 8:0.#}\" height=\"{h:0.#}\" fill=\"#1f77b4\"/>");
            svg.Append(Invariant, $"<text x=\"{x + slot / 4:0.#}\" y=\"{height - bottom - h - 4:0.#}\" text-anchor=\"middle\">{bars[i].Value:0.##}</text>");
            if (baseline is not null)
            {
                var hb = (height - top - bottom) * baseline[i] / max;
                svg.Append(Invariant, $"<rect x=\"{x + slot / 2:0.#}\" y=\"{height - bottom - hb:0.#}\" width=\"{slot / 2 - 8:0.#}\" height=\"{hb:0.#}\" fill=\"#aaa\"/>");
            }
            svg.Append(Invariant, $"<text x=\"{x + slot / 2:0.#}\" y=\"{height - 10}\" text-anchor=\"middle\">{Esc(bars[i].Label)}</text>");
        }
        svg.Append(Invariant, $"<text x=\"{left}\" y=\"12\" fill=\"#1f77b4\">engine</text>");
        if (baseline is not null) svg.Append(Invariant, $"<text x=\"{left + 60}\" y=\"12\" fill=\"#888\">echo baseline</text>");
        return svg.Append("</svg>").ToString();
    }

    private static string Ratio(RunRecord run, RunRecord baseline) =>
        (run.AchievedPerSecond / Math.Max(1, baseline.AchievedPerSecond)).ToString("P0", Invariant) + " of echo";

    private static string Statuses(RunRecord run) => string.Join(", ", run.Statuses.Where(s => s.Key != "OK").Select(s => $"{s.Key} {s.Value}"));

    public static string Machine() =>
        $"{Environment.ProcessorCount} cores, {GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1L << 30)} GiB, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}";

    private static string F(double value) => value.ToString("0.00", Invariant);

    private static string Esc(string text) => System.Net.WebUtility.HtmlEncode(text);
}
