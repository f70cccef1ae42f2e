using System.Diagnostics.Metrics;

namespace LoyaltyGrains.Grains;

/// <summary>The engine's own instruments (meter "LoyaltyGrains"), exported by the host (Prometheus on /metrics).</summary>
public static class LoyaltyMetrics
{
    public const string MeterName = "LoyaltyGrains";

    private static readonly Meter Meter = new(MeterName, "1.0");

    /// <summary>Postings by kind (authorize, capture, ...) and outcome (accepted, duplicate, rejected).</summary>
    public static readonly Counter<long> Postings = Meter.CreateCounter<long>("loyalty.postings", "{message}", "Processor and app postings by kind and outcome");

    /// <summary>
    /// Bucket boundaries of every duration, in seconds: 100 µs to 10 s, so sub-millisecond commits and queue waits are
    /// told apart (the SDK's default boundaries put everything under 5 ms in one bucket).
    /// </summary>
    public static readonly double[] SecondsBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    public static readonly Histogram<double> LedgerCommitSeconds = Seconds(Meter, "loyalty.ledger.commit.duration",
        "Time a member waited for its ledger entries to be committed (group commit included)");

    public static readonly Counter<long> LedgerEntries = Meter.CreateCounter<long>("loyalty.ledger.entries", "{entry}", "Ledger entries committed by member grains");

    public static readonly Counter<long> CampaignLeaseCalls = Meter.CreateCounter<long>("loyalty.campaign.lease_calls", "{call}",
        "Calls from this silo's budget leases to campaign grains (acquire and return)");

    public static readonly Counter<long> ColdPurchaseReads = Meter.CreateCounter<long>("loyalty.member.cold_purchase_reads", "{read}",
        "Ledger reads of a settled purchase a message named after it left its member's memory (old refunds, late clearings)");

    /// <summary>A duration histogram in seconds with <see cref="SecondsBuckets"/> (advice the exporter follows).</summary>
    public static Histogram<double> Seconds(Meter meter, string name, string description) =>
        meter.CreateHistogram(name, "s", description, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });

    public static void Posting(string kind, string outcome) =>
        Postings.Add(1, new KeyValuePair<string, object?>("kind", kind), new KeyValuePair<string, object?>("outcome", outcome));
}
