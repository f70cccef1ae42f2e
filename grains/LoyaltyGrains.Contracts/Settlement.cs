namespace LoyaltyGrains.Contracts;

/// <summary>
/// A partner's settlement: the events of its ledger lines, applied once each, and its per-day payouts. Implemented by
/// the partner grain (same key as <see cref="IPartnerGrain"/>), so one activation orders a partner's writes.
/// </summary>
[Alias("lg.IPartnerSettlementGrain")]
public interface IPartnerSettlementGrain : IGrainWithStringKey
{
    /// <summary>
    /// Applies events to the partner's day totals and removes them from the outbox in one commit; events already
    /// applied (a redelivery after a crash, or another silo's delivery) are skipped. Returns how many were new.
    /// </summary>
    [Alias("Apply")] Task<int> Apply(PartnerEvent[] events);

    /// <summary>Per-day totals for UTC days in [fromDay, toDay), days without events left out.</summary>
    [Alias("GetPayouts")] Task<PayoutReport> GetPayouts(DateTime fromDay, DateTime toDay);
}

/// <summary>One ledger entry's change to one partner's settlement (amounts in minor units).</summary>
[GenerateSerializer, Immutable, Alias("lg.PartnerEvent")]
public sealed record PartnerEvent(
    [property: Id(0)] long EventId,
    [property: Id(1)] string PartnerId,
    [property: Id(2)] DateTime RecordedAtUtc,
    [property: Id(3)] long AccruedMinor,
    [property: Id(4)] long ClawedBackMinor,
    [property: Id(5)] long RedeemedMinor);

[GenerateSerializer, Immutable, Alias("lg.PayoutDay")]
public sealed record PayoutDay(
    [property: Id(0)] DateTime Day,
    [property: Id(1)] long AccruedMinor,
    [property: Id(2)] long ClawedBackMinor,
    [property: Id(3)] long RedeemedMinor,
    [property: Id(4)] long Events)
{
    public long NetMinor => AccruedMinor - ClawedBackMinor - RedeemedMinor;
}

/// <param name="CompleteThroughUtc">Every ledger entry recorded before this time is in the days (none is still on its way).</param>
/// <param name="UndeliveredEvents">The partner's events committed to the ledger but not yet applied.</param>
[GenerateSerializer, Immutable, Alias("lg.PayoutReport")]
public sealed record PayoutReport(
    [property: Id(0)] string PartnerId,
    [property: Id(1)] PayoutDay[] Days,
    [property: Id(2)] DateTime CompleteThroughUtc,
    [property: Id(3)] long UndeliveredEvents);
