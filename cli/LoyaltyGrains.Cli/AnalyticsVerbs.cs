using System.CommandLine;
using System.Globalization;
using Google.Protobuf;
using LoyaltyGrains.Analytics;
using LoyaltyGrains.Analytics.Replay;
using LoyaltyGrains.Analytics.Reports;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Gateway.Grpc;
using Npgsql;

namespace LoyaltyGrains.Cli;

/// <summary>
/// `stats` and `whatif` (PostgreSQL mode, LOYALTY_POSTGRES): programme figures of a period and the what-if replay of a
/// candidate programme over a past window, each written as a report folder (report.html, one CSV per table,
/// summary.md) and printed as Markdown; progress on stderr. Days are UTC, both included. Figures and columns:
/// docs/ANALYTICS.md. Exit 0 on success, 2 on bad arguments or input, 1 when the database fails.
/// </summary>
public static class AnalyticsVerbs
{
    public static Command CreateStats()
    {
        var from = CliOptions.Day("--from", "first UTC day of the period");
        var to = CliOptions.Day("--to", "last UTC day of the period (included)");
        var tier = new Option<string>("--tier") { Description = "only members of this tier", HelpName = "ID" };
        var category = new Option<string>("--category") { Description = "only purchases of this category", HelpName = "NAME" };
        var partner = new Option<string>("--partner") { Description = "only this partner's rows", HelpName = "ID" };
        var campaign = new Option<string>("--campaign") { Description = "only this campaign's rows", HelpName = "ID" };
        var offset = CliOptions.Number("--utc-offset-minutes", "the programme's calendar offset for month and cohort boundaries", ProgramConfig.Default.UtcOffsetMinutes, -840, 840);
        var outDir = new Option<string>("--out") { Description = "the report folder (default analytics/stats-FROM-TO)", HelpName = "DIR" };
        var command = new Command("stats", "Programme figures of a period from the PostgreSQL ledger (LOYALTY_POSTGRES): activity, retention, cohorts, spend and cashback " +
            "by category/tier/campaign/funder, liability, breakage, redemption. Writes report.html, CSVs and summary.md; prints the Markdown.")
        {
            from, to, tier, category, partner, campaign, offset, outDir,
        };
        command.SetAction(async (parsed, cancellation) =>
        {
            var (start, end) = Window(parsed.GetValue(from), parsed.GetValue(to));
            var request = new StatsRequest(start, end)
            {
                Tier = parsed.GetValue(tier) ?? "", Category = parsed.GetValue(category) ?? "", Partner = parsed.GetValue(partner) ?? "",
                Campaign = parsed.GetValue(campaign) ?? "", UtcOffsetMinutes = parsed.GetValue(offset),
            };
            if (request.Validate() is { Count: > 0 } errors) throw new CommandLineException(string.Join("; ", errors));
            var postgres = CliOptions.Postgres("analytics read the PostgreSQL ledger");
            var folder = parsed.GetValue(outDir) ?? Path.Combine("analytics", $"stats-{parsed.GetValue(from):yyyy-MM-dd}-{parsed.GetValue(to):yyyy-MM-dd}");
            var progress = new CliProgress("stats", parsed.InvocationConfiguration.Error);
            await using var source = NpgsqlDataSource.Create(AnalyticsDatabase.ForAnalytics(postgres));
            var started = System.Diagnostics.Stopwatch.StartNew();
            var stats = await progress.StepAsync("computing the figures from the ledger", () => StatsQuery.RunAsync(source, request));
            var filters = string.Join(", ", new[] { ("tier", request.Tier), ("category", request.Category), ("partner", request.Partner), ("campaign", request.Campaign) }
                .Where(f => f.Item2.Length > 0).Select(f => $"{f.Item1} = {f.Item2}"));
            var intro = string.Create(CultureInfo.InvariantCulture,
                $"Ledger period {start:yyyy-MM-dd HH:mm} .. {end:yyyy-MM-dd HH:mm} UTC (end excluded); filters: {(filters.Length == 0 ? "none" : filters)}. Computed by SQL on the ledger in {started.Elapsed.TotalSeconds:0.0} s.");
            var markdown = await progress.StepAsync($"writing the report to {folder}",
                () => AnalyticsReport.WriteAsync(folder, "Programme statistics", intro, AnalyticsReport.StatsTables(stats), AnalyticsReport.StatsCharts(stats)));
            await parsed.InvocationConfiguration.Output.WriteLineAsync(markdown);
            return LoyaltyCommandLine.Success;
        });
        return command;
    }

    public static Command CreateWhatIf()
    {
        var program = new Option<string>("--program") { Description = "the candidate programme: a loyalty.v1.Program as JSON (as SetProgram takes it), or 'default'", HelpName = "FILE.json|default", Required = true };
        var from = CliOptions.Day("--from", "first UTC day whose captured purchases are replayed");
        var to = CliOptions.Day("--to", "last UTC day replayed (included)");
        var top = CliOptions.Number("--top", "how many of the most affected members to list", 20, 0, 1000);
        var lookback = CliOptions.Number("--lookback-months", "months of history replayed before --from to rebuild caps and tiers", 1, 0, 12);
        var outDir = new Option<string>("--out") { Description = "the report folder (default analytics/whatif-FROM-TO)", HelpName = "DIR" };
        var command = new Command("whatif", "What a candidate programme would have cost: every captured purchase of a past window replayed through it with the engine's " +
            "calculator (LOYALTY_POSTGRES; nothing is written to the database). Writes report.html, CSVs and summary.md; prints the Markdown.")
        {
            program, from, to, top, lookback, outDir,
        };
        command.SetAction(async (parsed, cancellation) =>
        {
            var (start, end) = Window(parsed.GetValue(from), parsed.GetValue(to));
            var programPath = parsed.GetRequiredValue(program);
            ProgramConfig candidate;
            try
            {
                candidate = await ReadProgramAsync(programPath);
            }
            catch (Exception ex) when (ex is IOException or InvalidProtocolBufferException or InvalidJsonException or Grpc.Core.RpcException or UnauthorizedAccessException)
            {
                throw new CommandLineException($"--program {programPath}: {ex.Message}");
            }
            var request = new WhatIfRequest(candidate, start, end) { TopMembers = parsed.GetValue(top), LookbackMonths = parsed.GetValue(lookback) };
            if (request.Validate(MccCatalogue.Default) is { Count: > 0 } errors) throw new CommandLineException(string.Join("; ", errors));
            var postgres = CliOptions.Postgres("the replay reads the PostgreSQL ledger");
            var folder = parsed.GetValue(outDir) ?? Path.Combine("analytics", $"whatif-{parsed.GetValue(from):yyyy-MM-dd}-{parsed.GetValue(to):yyyy-MM-dd}");
            var progress = new CliProgress("whatif", parsed.InvocationConfiguration.Error);
            await using var source = NpgsqlDataSource.Create(AnalyticsDatabase.ForAnalytics(postgres));
            var rows = new Progress<long>(count => progress.Write(string.Create(CultureInfo.InvariantCulture, $"{count:N0} rows replayed")));
            var result = await progress.StepAsync("replaying the window", () => WhatIfReplay.RunAsync(source, request, MccCatalogue.Default, rows));
            var intro = string.Create(CultureInfo.InvariantCulture,
                $"Candidate {programPath} replayed over the captured purchases recorded {start:yyyy-MM-dd HH:mm} .. {end:yyyy-MM-dd HH:mm} UTC (end excluded), " +
                $"month state rebuilt from {result.ReplayedFrom:yyyy-MM-dd HH:mm} UTC; nothing was written. {result.Run.RowsRead:N0} rows, {result.Run.Members:N0} members in " +
                $"{result.Run.Elapsed.TotalSeconds:0.0} s ({result.Run.RowsPerSecond:N0} rows/s), peak working set {result.Run.PeakWorkingSetBytes / (1024 * 1024)} MiB.");
            var markdown = await progress.StepAsync($"writing the report to {folder}",
                () => AnalyticsReport.WriteAsync(folder, "What-if replay", intro, AnalyticsReport.WhatIfTables(result), AnalyticsReport.WhatIfCharts(result)));
            await parsed.InvocationConfiguration.Output.WriteLineAsync(markdown);
            return LoyaltyCommandLine.Success;
        });
        return command;
    }

    /// <summary>A programme as SetProgram takes it (loyalty.v1.Program in protobuf JSON), or "default": the engine's built-in programme.</summary>
    public static async Task<ProgramConfig> ReadProgramAsync(string path)
    {
        if (path == "default") return ProgramConfig.Default;
        var json = await File.ReadAllTextAsync(path);
        var program = new JsonParser(JsonParser.Settings.Default.WithIgnoreUnknownFields(false)).Parse<Gateway.V1.Program>(json);
        return ProtoMapping.ToDomain(program);
    }

    /// <summary>--from and --to as UTC days, both included: [from 00:00, to + 1 day 00:00).</summary>
    public static (DateTimeOffset From, DateTimeOffset To) Window(DateOnly from, DateOnly to)
    {
        if (to < from) throw new CommandLineException($"--to {to:yyyy-MM-dd} is before --from {from:yyyy-MM-dd}");
        return (new DateTimeOffset(from.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero), new DateTimeOffset(to.AddDays(1).ToDateTime(TimeOnly.MinValue), TimeSpan.Zero));
    }
}
