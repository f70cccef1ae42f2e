using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Grains.Ledger;

/// <summary>
/// The embedded default's ledger: same contract as the PostgreSQL one (uniqueness, atomic appends, paging), kept in
/// process memory, so it is lost when the process stops. Bounded only by memory: for demos and tests.
/// </summary>
public sealed class InMemoryLedger(Settlement.InMemoryPartnerSettlement? settlement = null) : ILedger
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, LedgerEntry> _byMessageId = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<LedgerEntry>> _byMember = new(StringComparer.Ordinal);

    public int Count
    {
        get
        {
            lock (_gate) return _byMessageId.Count;
        }
    }

    public Task AppendAsync(IReadOnlyList<LedgerEntry> entries, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            foreach (var entry in entries)
            {
                if (_byMessageId.ContainsKey(entry.MessageId))
                {
                    return Task.FromException(new LedgerConflictException(LedgerConflictKind.MessageId, entry.MessageId,
                        $"message id '{entry.MessageId}' is already in the ledger"));
                }
            }
            var expected = entries.Count == 0 ? 0 : entries[0].Sequence;
            var list = MemberList(entries.Count == 0 ? "" : entries[0].MemberId);
            var last = list.Count == 0 ? 0 : list[^1].Sequence;
            if (entries.Count > 0 && expected != last + 1)
            {
                return Task.FromException(new LedgerConflictException(LedgerConflictKind.Sequence, entries[0].MessageId,
                    $"member '{entries[0].MemberId}' is at sequence {last}, append starts at {expected}"));
            }
            foreach (var entry in entries)
            {
                _byMessageId.Add(entry.MessageId, entry);
                MemberList(entry.MemberId).Add(entry);
            }
            settlement?.AddCommitted(entries); // under the ledger's lock: an entry and its partner events appear together
        }
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<LedgerEntry>> ReadMemberAsync(string memberId, long afterSequence, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            IReadOnlyList<LedgerEntry> result = _byMember.TryGetValue(memberId, out var list)
                ? list.Where(e => e.Sequence > afterSequence).ToArray() : [];
            return Task.FromResult(result);
        }
    }

    public Task<IReadOnlyList<LedgerEntry>> ReadMemberPageAsync(string memberId, long beforeSequence, int limit, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            IReadOnlyList<LedgerEntry> result = _byMember.TryGetValue(memberId, out var list)
                ? list.Where(e => e.Sequence < beforeSequence).OrderByDescending(e => e.Sequence).Take(limit).ToArray() : [];
            return Task.FromResult(result);
        }
    }

    public Task<LedgerEntry?> FindAsync(string messageId, CancellationToken cancellationToken = default)
    {
        lock (_gate) return Task.FromResult(_byMessageId.GetValueOrDefault(messageId));
    }

    public Task<IReadOnlyList<LedgerEntry>> ReadPurchaseAsync(string memberId, string purchaseId, long fromSequence, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            IReadOnlyList<LedgerEntry> result = _byMember.TryGetValue(memberId, out var list)
                ? list.Where(e => e.Sequence >= fromSequence && e.PurchaseId == purchaseId).ToArray() : [];
            return Task.FromResult(result);
        }
    }

    private List<LedgerEntry> MemberList(string memberId)
    {
        if (!_byMember.TryGetValue(memberId, out var list)) _byMember[memberId] = list = [];
        return list;
    }
}
