using LoyaltyGrains.Contracts;

namespace LoyaltyGrains.Grains.Settlement;

/// <summary>
/// Where partner events wait (the outbox, filled in the same commit as their ledger entries) and where partners' day
/// totals are kept. PostgreSQL in durable mode, process memory in the embedded default.
/// </summary>
public interface IPartnerSettlementStore
{
    /// <summary>
    /// The oldest undelivered events (by event id) of the partners in queue <paramref name="queue"/> of
    /// <paramref name="queueCount"/> (<see cref="PartnerStreams.QueueOf"/>), leaving out the events named (on their way).
    /// </summary>
    Task<IReadOnlyList<PartnerEvent>> ReadUndeliveredAsync(int max, int queue, int queueCount, IReadOnlyCollection<long> skipEvents, CancellationToken cancellationToken);

    /// <summary>
    /// In one commit: removes those of the events still in the outbox and adds their amounts (as stored, not as sent) to
    /// the partner's day totals. Events no longer there were applied before, so a redelivery counts nothing. Returns the
    /// number applied now.
    /// </summary>
    Task<int> ApplyAsync(string partnerId, IReadOnlyList<PartnerEvent> events, CancellationToken cancellationToken);

    /// <summary>Day totals for UTC days in [fromDay, toDay).</summary>
    Task<IReadOnlyList<PayoutDay>> ReadPayoutsAsync(string partnerId, DateTime fromDay, DateTime toDay, CancellationToken cancellationToken);

    /// <summary>Undelivered events (of one partner, or all when null) and the oldest one's ledger time.</summary>
    Task<(long Events, DateTime? OldestRecordedAtUtc)> UndeliveredAsync(string? partnerId, CancellationToken cancellationToken);
}
