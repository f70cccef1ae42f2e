using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace LoyaltyGrains.LoadTests;

/// <summary>
/// Live progress: a Spectre live table redrawn once a second on a terminal; one plain line a second otherwise
/// (CI logs, redirected output), so the same run reads well in both.
/// </summary>
public sealed class ProgressView(bool interactive, Action<string> log)
{
    public async Task<RunRecord> RunAsync(string name, Func<Action<ProgressSnapshot>, Task<RunRecord>> body)
    {
        if (!interactive)
        {
            return await body(s => log(Line(s)));
        }
        RunRecord? result = null;
        await AnsiConsole.Live(Render(new ProgressSnapshot(name, "starting", 0, 1, 0, 0, 0, 0, 0, 0, 0))).AutoClear(false).StartAsync(async context =>
        {
            result = await body(s =>
            {
                context.UpdateTarget(Render(s));
            });
        });
        return result!;
    }

    private static string Line(ProgressSnapshot s) => string.Create(CultureInfo.InvariantCulture,
        $"{s.Name}: {s.Phase} {s.ElapsedSeconds:0}/{s.TotalSeconds:0} s, rate {s.RatePerSecond:N0}/s, sent {s.Sent:N0}, in flight {s.InFlight:N0}, ok {s.Ok:N0}, errors {s.Errors:N0}, dropped {s.Dropped:N0}, p99 last second {s.P99LastSecondMs:0.00} ms");

    private static IRenderable Render(ProgressSnapshot s)
    {
        var fraction = s.TotalSeconds <= 0 ? 0 : Math.Clamp(s.ElapsedSeconds / s.TotalSeconds, 0, 1);
        var bar = new string('█', (int)(fraction * 30)) + new string('░', 30 - (int)(fraction * 30));
        var table = new Table().Border(TableBorder.Rounded).Title($"[bold]{Markup.Escape(s.Name)}[/]")
            .AddColumns("phase", "time", "rate/s", "sent", "in flight", "ok", "errors", "dropped", "p99 last s");
        table.AddRow(Markup.Escape(s.Phase), string.Create(CultureInfo.InvariantCulture, $"{bar} {s.ElapsedSeconds:0}/{s.TotalSeconds:0} s"), N(s.RatePerSecond), N(s.Sent), N(s.InFlight), N(s.Ok),
            s.Errors > 0 ? $"[red]{N(s.Errors)}[/]" : "0", s.Dropped > 0 ? $"[yellow]{N(s.Dropped)}[/]" : "0", string.Create(CultureInfo.InvariantCulture, $"{s.P99LastSecondMs:0.00} ms"));
        return table;
    }

    private static string N(double value) => value.ToString("N0", CultureInfo.InvariantCulture);
}
