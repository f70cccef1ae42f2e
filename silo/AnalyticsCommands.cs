using System.Globalization;
using Google.Protobuf;
using LoyaltyGrains.Analytics;
using LoyaltyGrains.Analytics.Replay;
using LoyaltyGrains.Analytics.Reports;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Gateway.Grpc;
using Npgsql;

namespace LoyaltyGrains.Silo;

/// <summary>
/// `stats` and `whatif` (PostgreSQL mode, LOYALTY_POSTGRES): programme figures of a period and the what-if replay of a
/// candidate programme over a past window, each written as a report folder (report.html, one CSV per table,
/// summary.md) and printed as Markdown. Days are UTC, both included. Figures and columns: docs/ANALYTICS.md.
/// Exit 0 on success, 2 on bad arguments or input, 1 when the database fails.
/// </summary>
public static class AnalyticsCommands
{
    private const string StatsUsage =
        "usage: stats --from YYYY-MM-DD --to YYYY-MM-DD [--tier ID] [--category NAME] [--partner ID] [--campaign ID] [--utc-offset-minutes 180] [--out DIR]";

    private const string WhatIfUsage =
        "usage: whatif --program FILE.json|default --from YYYY-MM-DD --to YYYY-MM-DD [--top 20] [--lookback-months 1] [--out DIR]";

    public static async Task<int> StatsAsync(string[] args)
    {
        var options = Options.Parse(args);
        if (options.Window() is not { } window || options.Unknown(["--from", "--to", "--tier", "--category", "--partner", "--campaign", "--utc-offset-minutes", "--out"]) is not null)
        {
            return await Fail(StatsUsage);
        }
        var (from, to) = window;
        var request = new StatsRequest(from, to)
        {
            Tier = options["--tier"] ?? "", Category = options["--category"] ?? "", Partner = options["--partner"] ?? "", Campaign = options["--campaign"] ?? "",
            UtcOffsetMinutes = int.TryParse(options["--utc-offset-minutes"] ?? "180", NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var offset) ? offset : int.MinValue,
        };
        if (request.Validate() is { Count: > 0 } errors) return await Fail("stats: " + string.Join("; ", errors));
        if (Database() is not { } postgres) return await Fail("stats: LOYALTY_POSTGRES is not set (analytics read the PostgreSQL ledger)");
        var outDir = options["--out"] ?? Path.Combine("analytics", $"stats-{options["--from"]}-{options["--to"]}");
        await using var source = NpgsqlDataSource.Create(AnalyticsDatabase.ForAnalytics(postgres));
        var started = System.Diagnostics.Stopwatch.StartNew();
        ProgramStats stats;
        try
        {
            stats = await StatsQuery.RunAsync(source, request);
        }
        catch (NpgsqlException ex)
        {
            await Console.Error.WriteLineAsync("stats: the database failed: " + ex.Message);
            return 1;
        }
        var filters = string.Join(", ", new[] { ("tier", request.Tier), ("category", request.Category), ("partner", request.Partner), ("campaign", request.Campaign) }
            .Where(f => f.Item2.Length > 0).Select(f => $"{f.Item1} = {f.Item2}"));
        var intro = string.Create(CultureInfo.InvariantCulture,
            $"Ledger period {from:yyyy-MM-dd HH:mm} .. {to:yyyy-MM-dd HH:mm} UTC (end excluded); filters: {(filters.Length == 0 ? "none" : filters)}. Computed by SQL on the ledger in {started.Elapsed.TotalSeconds:0.0} s.");
        var markdown = await AnalyticsReport.WriteAsync(outDir, "Programme statistics", intro, AnalyticsReport.StatsTables(stats), AnalyticsReport.StatsCharts(stats));
        Console.WriteLine(markdown);
        return 0;
    }

    public static async Task<int> WhatIfAsync(string[] args)
    {
        var options = Options.Parse(args);
        if (options.Window() is not { } window || options["--program"] is not { Length: > 0 } programPath
            || options.Unknown(["--program", "--from", "--to", "--top", "--lookback-months", "--out"]) is not null)
        {
            return await Fail(WhatIfUsage);
        }
        var (from, to) = window;
        ProgramConfig candidate;
        try
        {
            candidate = await ReadProgramAsync(programPath);
        }
        catch (Exception ex) when (ex is IOException or InvalidProtocolBufferException or InvalidJsonException or Grpc.Core.RpcException or UnauthorizedAccessException)
        {
            return await Fail($"whatif: {programPath}: {ex.Message}");
        }
        var request = new WhatIfRequest(candidate, from, to)
        {
            TopMembers = Int(options["--top"], 20),
            LookbackMonths = Int(options["--lookback-months"], 1),
        };
        if (request.Validate(MccCatalogue.Default) is { Count: > 0 } errors) return await Fail("whatif: " + string.Join("; ", errors));
        if (Database() is not { } postgres) return await Fail("whatif: LOYALTY_POSTGRES is not set (the replay reads the PostgreSQL ledger)");
        var outDir = options["--out"] ?? Path.Combine("analytics", $"whatif-{options["--from"]}-{options["--to"]}");
        await using var source = NpgsqlDataSource.Create(AnalyticsDatabase.ForAnalytics(postgres));
        WhatIfResult result;
        try
        {
            var progress = new Progress<long>(rows => Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"whatif: {rows:N0} rows replayed")));
            result = await WhatIfReplay.RunAsync(source, request, MccCatalogue.Default, progress);
        }
        catch (NpgsqlException ex)
        {
            await Console.Error.WriteLineAsync("whatif: the database failed: " + ex.Message);
            return 1;
        }
        var intro = string.Create(CultureInfo.InvariantCulture,
            $"Candidate {programPath} replayed over the captured purchases recorded {from:yyyy-MM-dd HH:mm} .. {to:yyyy-MM-dd HH:mm} UTC (end excluded), " +
            $"month state rebuilt from {result.ReplayedFrom:yyyy-MM-dd HH:mm} UTC; nothing was written. {result.Run.RowsRead:N0} rows, {result.Run.Members:N0} members in " +
            $"{result.Run.Elapsed.TotalSeconds:0.0} s ({result.Run.RowsPerSecond:N0} rows/s), peak working set {result.Run.PeakWorkingSetBytes / (1024 * 1024)} MiB.");
        var markdown = await AnalyticsReport.WriteAsync(outDir, "What-if replay", intro, AnalyticsReport.WhatIfTables(result), AnalyticsReport.WhatIfCharts(result));
        Console.WriteLine(markdown);
        return 0;
    }

    /// <summary>A programme as SetProgram takes it (loyalty.v1.Program in protobuf JSON), or "default": the engine's built-in programme.</summary>
    public static async Task<ProgramConfig> ReadProgramAsync(string path)
    {
        if (path == "default") return ProgramConfig.Default;
        var json = await File.ReadAllTextAsync(path);
        var program = new JsonParser(JsonParser.Settings.Default.WithIgnoreUnknownFields(false)).Parse<Gateway.V1.Program>(json);
        return ProtoMapping.ToDomain(program);
    }

    private static int Int(string? text, int fallback) =>
        text is null ? fallback : int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : -1;

    private static string? Database() => Environment.GetEnvironmentVariable("LOYALTY_POSTGRES") is { Length: > 0 } postgres ? postgres : null;

    private static async Task<int> Fail(string message)
    {
        await Console.Error.WriteLineAsync(message);
        return 2;
    }

    /// <summary>"--name value" pairs.</summary>
    private sealed class Options(Dictionary<string, string> values)
    {
        public string? this[string name] => values.GetValueOrDefault(name);

        public static Options Parse(string[] args)
        {
            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            for (var i = 0; i < args.Length; i++)
            {
                values[args[i]] = i + 1 < args.Length ? args[++i] : "";
            }
            return new Options(values);
        }

        public string? Unknown(string[] known) => values.Keys.FirstOrDefault(k => !known.Contains(k));

        /// <summary>--from and --to as UTC days, both included: [from 00:00, to + 1 day 00:00).</summary>
        public (DateTimeOffset From, DateTimeOffset To)? Window()
        {
            if (!DateOnly.TryParseExact(this["--from"] ?? "", "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var from)
                || !DateOnly.TryParseExact(this["--to"] ?? "", "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var to)
                || to < from)
            {
                return null;
            }
            return (new DateTimeOffset(from.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero), new DateTimeOffset(to.AddDays(1).ToDateTime(TimeOnly.MinValue), TimeSpan.Zero));
        }
    }
}
