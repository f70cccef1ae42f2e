using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Grains.Settlement;

/// <summary>
/// The embedded default's outbox and payouts: the in-memory ledger adds events under its own lock, in the same step as
/// the entries, so payouts work there exactly as in PostgreSQL mode (and are lost with the process, like the ledger).
/// </summary>
public sealed class InMemoryPartnerSettlement : IPartnerSettlementStore
{
    private readonly Lock _gate = new();
    private readonly SortedDictionary<long, PartnerEvent> _outbox = [];
    private readonly Dictionary<(string Partner, DateTime Day), PayoutDay> _days = [];
    private readonly List<PartnerShare> _shares = [];
    private long _lastEventId;

    /// <summary>Adds the events of committed entries; called by the in-memory ledger inside its commit.</summary>
    public void AddCommitted(IReadOnlyList<LedgerEntry> entries)
    {
        lock (_gate)
        {
            foreach (var entry in entries)
            {
                _shares.Clear();
                PartnerShares.Of(entry, _shares);
                foreach (var share in _shares)
                {
                    var id = ++_lastEventId;
                    _outbox[id] = new PartnerEvent(id, share.PartnerId, entry.RecordedAt.UtcDateTime, share.AccruedMinor, share.ClawedBackMinor, share.RedeemedMinor);
                }
            }
        }
    }

    public Task<IReadOnlyList<PartnerEvent>> ReadUndeliveredAsync(int max, int queue, int queueCount, IReadOnlyCollection<long> skipEvents, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            IReadOnlyList<PartnerEvent> events = [.. _outbox.Values
                .Where(e => !skipEvents.Contains(e.EventId) && PartnerStreams.QueueOf(e.PartnerId, queueCount) == queue).Take(max)];
            return Task.FromResult(events);
        }
    }

    public Task<int> ApplyAsync(string partnerId, IReadOnlyList<PartnerEvent> events, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var applied = 0;
            foreach (var sent in events)
            {
                if (!_outbox.TryGetValue(sent.EventId, out var stored) || stored.PartnerId != partnerId) continue;
                _outbox.Remove(sent.EventId);
                var key = (partnerId, stored.RecordedAtUtc.Date);
                var day = _days.GetValueOrDefault(key) ?? new PayoutDay(key.Date, 0, 0, 0, 0);
                _days[key] = day with
                {
                    AccruedMinor = day.AccruedMinor + stored.AccruedMinor, ClawedBackMinor = day.ClawedBackMinor + stored.ClawedBackMinor,
                    RedeemedMinor = day.RedeemedMinor + stored.RedeemedMinor, Events = day.Events + 1,
                };
                applied++;
            }
            return Task.FromResult(applied);
        }
    }

    public Task<IReadOnlyList<PayoutDay>> ReadPayoutsAsync(string partnerId, DateTime fromDay, DateTime toDay, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            IReadOnlyList<PayoutDay> days = [.. _days.Where(d => d.Key.Partner == partnerId && d.Key.Day >= fromDay && d.Key.Day < toDay)
                .Select(d => d.Value).OrderBy(d => d.Day)];
            return Task.FromResult(days);
        }
    }

    public Task<(long Events, DateTime? OldestRecordedAtUtc)> UndeliveredAsync(string? partnerId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var pending = _outbox.Values.Where(e => partnerId is null || e.PartnerId == partnerId).ToArray();
            return Task.FromResult<(long, DateTime?)>((pending.Length, pending.Length == 0 ? null : pending.Min(e => e.RecordedAtUtc)));
        }
    }
}
