using System.Globalization;
using System.Text;
using Spectre.Console;

namespace LoyaltyGrains.LoadTests;

/// <summary>A small table rendered alike on the console, in Markdown and in HTML.</summary>
public sealed record TextTable(string Title, string[] Header, IReadOnlyList<string[]> Rows)
{
    public void WriteConsole()
    {
        var table = new Table().Title($"[bold]{Markup.Escape(Title)}[/]").Border(TableBorder.Rounded).AddColumns([.. Header.Select(Markup.Escape)]);
        foreach (var c in table.Columns.Skip(1)) c.RightAligned();
        foreach (var row in Rows) table.AddRow([.. row.Select(Markup.Escape)]);
        AnsiConsole.Write(table);
    }

    public string Markdown()
    {
        var md = new StringBuilder();
        md.Append("| ").AppendJoin(" | ", Header).AppendLine(" |");
        md.Append("|---").Append(string.Concat(Enumerable.Repeat("|---:", Header.Length - 1))).AppendLine("|");
        foreach (var row in Rows) md.Append("| ").AppendJoin(" | ", row).AppendLine(" |");
        return md.ToString();
    }

    public string Html()
    {
        static string Esc(string text) => System.Net.WebUtility.HtmlEncode(text);
        var html = new StringBuilder("<table><tr>");
        foreach (var h in Header) html.Append("<th>").Append(Esc(h)).Append("</th>");
        html.Append("</tr>");
        foreach (var row in Rows)
        {
            html.Append("<tr>");
            for (var i = 0; i < row.Length; i++) html.Append(i == 0 ? "<td class=\"l\">" : "<td>").Append(Esc(row[i])).Append("</td>");
            html.Append("</tr>");
        }
        return html.Append("</table>").ToString();
    }
}

/// <summary>
/// CPU µs per request per process for a run and its echo baseline, and the ratios the targets are stated in:
/// engine CPU per request / echo server CPU per call, and the tool's CPU per request / the echo client's (the tool in
/// the echo run) per call.
/// </summary>
public static class CpuReport
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>What one request of the scenario is, for the ratio's wording.</summary>
    public static string RequestName(string scenario) => scenario switch
    {
        "authorize" => "durable Authorize",
        "balance" => "GetBalance",
        "echo" => "echo call",
        _ => "RPC",
    };

    public static TextTable? Table(RunReport report)
    {
        if (report.Run.Cpu is null && report.Baseline?.Cpu is null) return null;
        var rows = new List<string[]>();
        void Add(string run, RunRecord r)
        {
            foreach (var g in r.Cpu ?? [])
            {
                rows.Add([run, g.Group, g.Processes.ToString(Invariant), (100 * g.CoreShare).ToString("0.0", Invariant), Micros(g.PerRequest(r.RpcCount)), r.RpcCount.ToString("N0", Invariant)]);
            }
        }
        if (report.Scenario != "echo") Add(report.Scenario, report.Run);
        if (report.Baseline is { } echo) Add("echo", echo);
        return new TextTable("CPU per request over the measured window (/proc utime+stime)", ["run", "process", "processes", "% of a core", "µs per request", "requests"], rows);
    }

    public static IReadOnlyList<string> Ratios(RunReport report)
    {
        var lines = new List<string>();
        if (report.Baseline is not { } echo || report.Scenario == "echo") return lines;
        var what = RequestName(report.Scenario);
        var engine = report.Run.CpuPerRpc(CpuGroups.Engine);
        var server = echo.CpuPerRpc(CpuGroups.EchoServer);
        if (double.IsFinite(engine) && double.IsFinite(server))
        {
            lines.Add($"engine CPU per {what} / echo server CPU per call: {Ratio(engine, server)} ({Micros(engine)} / {Micros(server)} µs)");
        }
        var tool = report.Run.CpuPerRpc(CpuGroups.Tool);
        var client = echo.CpuPerRpc(CpuGroups.Tool);
        if (double.IsFinite(tool) && double.IsFinite(client))
        {
            lines.Add($"tool CPU per {what} / echo client CPU per call: {Ratio(tool, client)} ({Micros(tool)} / {Micros(client)} µs)");
        }
        return lines;
    }

    public static object? Json(RunRecord record) => record.Cpu?.Select(g => new
    {
        g.Group, g.Description, g.Processes, CpuMs = g.CpuMicros / 1000, g.WindowSeconds, g.CoreShare, Requests = record.RpcCount, MicrosPerRequest = Finite(g.PerRequest(record.RpcCount)),
    }).ToArray();

    public static double? Finite(double value) => double.IsFinite(value) ? Math.Round(value, 2) : null;

    public static string Micros(double value) => double.IsFinite(value) ? value.ToString("0.0", Invariant) : "–";

    public static string Ratio(double a, double b) => double.IsFinite(a) && double.IsFinite(b) && b > 0 ? (a / b).ToString("0.00", Invariant) + "×" : "–";
}
