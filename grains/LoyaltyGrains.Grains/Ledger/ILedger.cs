using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Grains.Ledger;

/// <summary>
/// The append-only ledger: the source of truth and the idempotency record, committed together. Unique on MessageId
/// (a processor's transaction id is used once, system-wide) and on (MemberId, Sequence) (one writer per member).
/// </summary>
public interface ILedger
{
    /// <summary>
    /// Commits one member change (its entries, in sequence order) atomically and durably; returns only after commit.
    /// Throws <see cref="LedgerConflictException"/> when a message id or a member sequence is already taken.
    /// </summary>
    Task AppendAsync(IReadOnlyList<LedgerEntry> entries, CancellationToken cancellationToken = default);

    /// <summary>The member's entries with Sequence greater than <paramref name="afterSequence"/>, oldest first.</summary>
    Task<IReadOnlyList<LedgerEntry>> ReadMemberAsync(string memberId, long afterSequence, CancellationToken cancellationToken = default);

    /// <summary>Up to <paramref name="limit"/> entries with Sequence below <paramref name="beforeSequence"/>, newest first.</summary>
    Task<IReadOnlyList<LedgerEntry>> ReadMemberPageAsync(string memberId, long beforeSequence, int limit, CancellationToken cancellationToken = default);

    /// <summary>The entry recorded under a message id, or null.</summary>
    Task<LedgerEntry?> FindAsync(string messageId, CancellationToken cancellationToken = default);

    /// <summary>
    /// The member's entries of one purchase (or redemption) with Sequence at least <paramref name="fromSequence"/>,
    /// oldest first: how a member rebuilds a settled purchase that left its memory. The default reads the member's
    /// entries and filters; ledgers override it with a bounded read.
    /// </summary>
    async Task<IReadOnlyList<LedgerEntry>> ReadPurchaseAsync(string memberId, string purchaseId, long fromSequence, CancellationToken cancellationToken = default)
    {
        var entries = await ReadMemberAsync(memberId, fromSequence - 1, cancellationToken).ConfigureAwait(false);
        return entries.Where(e => e.PurchaseId == purchaseId).ToArray();
    }
}

public enum LedgerConflictKind
{
    /// <summary>The message id is already in the ledger (another member's message, or a retry from beyond memory).</summary>
    MessageId = 1,

    /// <summary>Another writer appended to this member first: this activation's view is stale.</summary>
    Sequence = 2,
}

public sealed class LedgerConflictException : Exception
{
    public LedgerConflictException()
    {
    }

    public LedgerConflictException(string message) : base(message)
    {
    }

    public LedgerConflictException(string message, Exception innerException) : base(message, innerException)
    {
    }

    public LedgerConflictException(LedgerConflictKind kind, string messageId, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
        MessageId = messageId;
    }

    public LedgerConflictKind Kind { get; }
    public string MessageId { get; } = "";
}

/// <summary>
/// The ledger could not confirm a commit in time: the database is unreachable, slow, or the caller's deadline passed.
/// When <see cref="NotCommitted"/> is false the outcome is unknown (the entries may still commit); either way the
/// processor's retry with the same transaction id is safe, and the member rebuilds from the ledger before deciding again.
/// </summary>
public sealed class LedgerUnavailableException : Exception
{
    public LedgerUnavailableException()
    {
    }

    public LedgerUnavailableException(string message) : base(message)
    {
    }

    public LedgerUnavailableException(string message, Exception innerException) : base(message, innerException)
    {
    }

    public LedgerUnavailableException(bool notCommitted, string message, Exception? innerException = null) : base(message, innerException) =>
        NotCommitted = notCommitted;

    /// <summary>True when the entries are known never to commit (they never reached the database and never will).</summary>
    public bool NotCommitted { get; }
}
