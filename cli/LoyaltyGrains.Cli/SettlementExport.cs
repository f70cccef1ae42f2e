using System.Globalization;
using LoyaltyGrains.Persistence;

namespace LoyaltyGrains.Cli;

/// <summary>
/// The `export` verb's work (ExportVerb: --from YYYY-MM-DD --to YYYY-MM-DD --out DIR; PostgreSQL mode, LOYALTY_POSTGRES):
/// <see cref="SettlementExporter"/> writes the per-partner payout statements and the programme's double-entry journal
/// for the UTC days from..to (both included) as CSV, reconciled against the ledger and the delivered payouts
/// (columns: docs/SETTLEMENT.md). With `--engine URL` (and a token with the admin role in LOYALTY_TOKEN), it also asks
/// the running engine's Offers.GetPayouts for every partner and reconciles those figures too.
/// Exit 0 when everything reconciles, 1 when something does not (the files are still written) or the database fails
/// (then nothing is written), 2 on bad arguments.
/// </summary>
public static class SettlementExport
{
    /// <summary>
    /// Writes the files into a staging folder next to <paramref name="outDir"/> and moves them in only when all are
    /// written: a failure (the database down mid-way) leaves no folder and no half of an export behind.
    /// </summary>
    public static async Task<int> RunAsync(string postgres, DateOnly from, DateOnly to, string outDir, string? engineUrl, CliProgress progress, TextWriter output)
    {
        var target = Path.GetFullPath(outDir);
        var staging = Path.Combine(Path.GetDirectoryName(target) ?? ".", $".{Path.GetFileName(target)}.partial-{Environment.ProcessId}");
        try
        {
            var result = await progress.StepAsync("statements, journal and reconciliation", () => new SettlementExporter(postgres).ExportAsync(from, to, staging,
                engineUrl is { Length: > 0 } url ? (partners, start, end) => EnginePayoutsAsync(url, partners, start, end) : null));
            Publish(staging, target);
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"export {from:yyyy-MM-dd}..{to:yyyy-MM-dd}: {result.Partners} partners, {result.PayoutLines} payout lines, " +
                $"{result.JournalLines} journal lines, {result.ReconciliationChecks} reconciliation checks, {result.Problems.Count} not reconciled -> {outDir}"));
            foreach (var problem in result.Problems) progress.Write("not reconciled: " + problem);
            return result.Reconciled ? 0 : 1;
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
    }

    /// <summary>The staged files into the target folder (created, or its same-named files replaced).</summary>
    private static void Publish(string staging, string target)
    {
        if (!Directory.Exists(target))
        {
            Directory.Move(staging, target);
            return;
        }
        foreach (var file in Directory.GetFiles(staging)) File.Move(file, Path.Combine(target, Path.GetFileName(file)), overwrite: true);
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
