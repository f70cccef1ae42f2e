using System.CommandLine;

namespace LoyaltyGrains.Cli;

/// <summary>`export`: per-partner payout statements, the double-entry journal and their reconciliation as CSV (<see cref="SettlementExport"/>).</summary>
public static class ExportVerb
{
    public static Command Create()
    {
        var from = CliOptions.Day("--from", "first UTC day exported");
        var to = CliOptions.Day("--to", "last UTC day exported (included)");
        var outDir = new Option<string>("--out") { Description = "the folder the CSV files go to (created; same-named files replaced)", HelpName = "DIR", Required = true };
        var engine = new Option<string>("--engine")
        {
            Description = "also reconcile against a running engine's Offers.GetPayouts (an admin token in LOYALTY_TOKEN)", HelpName = "URL",
        };
        var command = new Command("export", "Partner payout statements and the programme's journal of the UTC days --from..--to, from the PostgreSQL ledger " +
            "(LOYALTY_POSTGRES), reconciled against the ledger and the delivered payouts (docs/SETTLEMENT.md). Exit 1 when something does not reconcile.")
        {
            from, to, outDir, engine,
        };
        command.SetAction(async (parsed, _) =>
        {
            var (first, last) = (parsed.GetValue(from), parsed.GetValue(to));
            AnalyticsVerbs.Window(first, last);
            var postgres = CliOptions.Postgres("the export reads the PostgreSQL ledger");
            var progress = new CliProgress("export", parsed.InvocationConfiguration.Error);
            return await SettlementExport.RunAsync(postgres, first, last, parsed.GetRequiredValue(outDir), parsed.GetValue(engine), progress, parsed.InvocationConfiguration.Output);
        });
        return command;
    }
}
