namespace LoyaltyGrains.Contracts;

/// <summary>
/// A partner's settlement: its per-day payouts. Implemented by the partner grain (same key as <see cref="IPartnerGrain"/>),
/// which also consumes the partner's event stream, so one activation orders a partner's writes.
/// </summary>
[Alias("lg.IPartnerSettlementGrain")]
public interface IPartnerSettlementGrain : IGrainWithStringKey
{

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
