using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Tests.Domain;

/// <summary>
/// A member's committed ledger rows as the grain sees them, for domain tests: what the account decided is taken here,
/// and a purchase that left the account's memory is read back the way MemberGrain reads it.
/// </summary>
public sealed class MemberRows
{
    private readonly Dictionary<string, LedgerEntry> _byMessage = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<LedgerEntry>> _byPurchase = new(StringComparer.Ordinal);

    public List<LedgerEntry> Rows { get; } = [];

    /// <summary>Commits what the account's last decision recorded.</summary>
    public void Take(MemberAccount account)
    {
        foreach (var entry in account.Uncommitted)
        {
            Rows.Add(entry);
            _byMessage[entry.MessageId] = entry;
            if (!_byPurchase.TryGetValue(entry.PurchaseId, out var list)) _byPurchase[entry.PurchaseId] = list = [];
            list.Add(entry);
        }
        account.ClearUncommitted();
    }

    /// <summary>The row recorded under a message id (the ledger's unique key), if any.</summary>
    public LedgerEntry? Row(string messageId) => _byMessage.GetValueOrDefault(messageId);

    /// <summary>
    /// MemberGrain's cold read: the rows of the purchase the reference's own row belongs to, from that row on; when no
    /// row has that id, the rows of a purchase with that id (a force post naming its authorization).
    /// </summary>
    public IReadOnlyList<LedgerEntry>? Cold(string? reference)
    {
        if (reference is null) return null;
        if (!_byMessage.TryGetValue(reference, out var first)) return _byPurchase.GetValueOrDefault(reference)?.ToArray() ?? [];
        return _byPurchase[first.PurchaseId].Where(e => e.Sequence >= first.Sequence).ToArray();
    }
}
