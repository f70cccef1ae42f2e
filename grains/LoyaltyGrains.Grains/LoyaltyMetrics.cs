using System.Diagnostics.Metrics;

namespace LoyaltyGrains.Grains;

/// <summary>The engine's own instruments (meter "LoyaltyGrains"), exported by the host (Prometheus on /metrics).</summary>
public static class LoyaltyMetrics
{
    public const string MeterName = "LoyaltyGrains";

    private static readonly Meter Meter = new(MeterName, "1.0");

    /// <summary>Postings by kind (authorize, capture, ...) and outcome (accepted, duplicate, rejected).</summary>
    public static readonly Counter<long> Postings = Meter.CreateCounter<long>("loyalty.postings", "{message}", "Processor and app postings by kind and outcome");

    public static readonly Histogram<double> LedgerCommitMs = Meter.CreateHistogram<double>("loyalty.ledger.commit.duration", "ms",
        "Time a member waited for its ledger entries to be committed (group commit included)");

    public static readonly Counter<long> LedgerEntries = Meter.CreateCounter<long>("loyalty.ledger.entries", "{entry}", "Ledger entries committed by member grains");

    public static readonly Counter<long> CampaignLeaseCalls = Meter.CreateCounter<long>("loyalty.campaign.lease_calls", "{call}",
        "Calls from this silo's budget leases to campaign grains (acquire and return)");

    public static readonly Counter<long> ColdPurchaseReads = Meter.CreateCounter<long>("loyalty.member.cold_purchase_reads", "{read}",
        "Ledger reads of a settled purchase a message named after it left its member's memory (old refunds, late clearings)");

    public static void Posting(string kind, string outcome) =>
        Postings.Add(1, new KeyValuePair<string, object?>("kind", kind), new KeyValuePair<string, object?>("outcome", outcome));
}
