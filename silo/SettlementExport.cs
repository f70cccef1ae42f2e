using System.Globalization;
using LoyaltyGrains.Persistence;

namespace LoyaltyGrains.Silo;

/// <summary>
/// The `export` verb: its arguments, then <see cref="SettlementExporter"/> (the SQL and the files) and the engine's
/// GetPayouts over gRPC when asked. `export --from YYYY-MM-DD --to YYYY-MM-DD --out DIR` (PostgreSQL mode, LOYALTY_POSTGRES): per-partner payout statements
/// and the programme's double-entry journal for the UTC days from..to (both included), as CSV, computed from the ledger
/// (the truth) and reconciled against it and against the delivered payouts. Columns: docs/SETTLEMENT.md.
/// With `--engine URL` (and a token with the admin role in LOYALTY_TOKEN), it also asks the running engine's
/// Offers.GetPayouts for every partner and reconciles those figures too.
/// Exit 0 when everything reconciles, 1 when something does not (the files are still written), 2 on bad arguments.
/// </summary>
public static class SettlementExport
{
    public static async Task<int> RunAsync(string[] args)
    {
        string? Arg(string name)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
        }
        if (!DateOnly.TryParseExact(Arg("--from") ?? "", "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var from)
            || !DateOnly.TryParseExact(Arg("--to") ?? "", "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var to)
            || to < from || Arg("--out") is not { Length: > 0 } outDir)
        {
            await Console.Error.WriteLineAsync("usage: export --from YYYY-MM-DD --to YYYY-MM-DD --out DIR [--engine URL]   (UTC days, both included; reads LOYALTY_POSTGRES, and LOYALTY_TOKEN with --engine)");
            return 2;
        }
        if (Environment.GetEnvironmentVariable("LOYALTY_POSTGRES") is not { Length: > 0 } postgres)
        {
            await Console.Error.WriteLineAsync("export: LOYALTY_POSTGRES is not set (the export reads the PostgreSQL ledger)");
            return 2;
        }
        var engineUrl = Arg("--engine");
        var result = await new SettlementExporter(postgres).ExportAsync(from, to, outDir,
            engineUrl is { Length: > 0 } ? (partners, start, end) => EnginePayoutsAsync(engineUrl, partners, start, end) : null);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"export {from:yyyy-MM-dd}..{to:yyyy-MM-dd}: {result.Partners} partners, {result.PayoutLines} payout lines, " +
            $"{result.JournalLines} journal lines, {result.ReconciliationChecks} reconciliation checks, {result.Problems.Count} not reconciled -> {outDir}"));
        foreach (var problem in result.Problems) await Console.Error.WriteLineAsync("export: not reconciled: " + problem);
        return result.Reconciled ? 0 : 1;
    }

    /// <summary>What the running engine's GetPayouts answers for every partner of the period (net per day, undelivered events).</summary>
    private static async Task<EnginePayouts> EnginePayoutsAsync(string url, IReadOnlyList<string> partners, DateTime start, DateTime end)
    {
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(url);
        var offers = new LoyaltyGrains.Gateway.V1.Offers.OffersClient(channel);
        var headers = new Grpc.Core.Metadata();
        if (Environment.GetEnvironmentVariable("LOYALTY_TOKEN") is { Length: > 0 } token) headers.Add("authorization", "Bearer " + token);
        var result = new EnginePayouts([], new Dictionary<string, long>(StringComparer.Ordinal));
        foreach (var partner in partners)
        {
            var statement = await offers.GetPayoutsAsync(new LoyaltyGrains.Gateway.V1.GetPayoutsRequest
            {
                PartnerId = partner, From = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTime(start), To = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTime(end),
            }, headers, DateTime.UtcNow.AddSeconds(30));
            foreach (var line in statement.Lines) result.Net[(partner, DateOnly.ParseExact(line.Day, "yyyy-MM-dd", CultureInfo.InvariantCulture))] = line.NetMinor;
            result.Undelivered[partner] = statement.UndeliveredEvents;
        }
        return result;
    }
}
