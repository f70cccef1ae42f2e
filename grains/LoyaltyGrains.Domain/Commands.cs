namespace LoyaltyGrains.Domain;

/// <summary>
/// A processor's or partner's posting: decided by <see cref="MemberAccount.Decide"/> after what it needs was gathered
/// (<see cref="MemberAccount.NeedsOf"/>, <see cref="MemberAccount.ClaimsOf"/>). Idempotent on its transaction id.
/// </summary>
public abstract record PostingCommand(string TransactionId);

/// <summary>Card: what the member knows of the card named (the domain refuses a blocked card, after duplicates).</summary>
public sealed record AuthorizeCommand(string TransactionId, string CardId, long AmountMinor, string Currency, int Mcc,
    string MerchantId, DateTimeOffset OccurredAt, CardStanding Card = CardStanding.Active) : PostingCommand(TransactionId);

/// <summary>The card an authorization names, as its card grain told the member (only a card of this member gets here).</summary>
public enum CardStanding
{
    Active = 0,
    Blocked = 1,
}

/// <summary>
/// AuthorizationId empty (or unknown, with Mcc given) = force post. OccurredAt null and Currency "" = not sent by the
/// processor: the decision uses the clock and the authorization's (or the program's first) currency, while the
/// idempotency fingerprint covers only what was sent.
/// </summary>
public sealed record CaptureCommand(string TransactionId, string AuthorizationId, string CardId, long AmountMinor,
    DateTimeOffset? OccurredAt, int Mcc, string MerchantId, string Currency) : PostingCommand(TransactionId);

/// <summary>AmountMinor 0 = the whole remaining authorized amount. OccurredAt null = not sent (the clock is used).</summary>
public sealed record ReverseCommand(string TransactionId, string AuthorizationId, string CardId, long AmountMinor, DateTimeOffset? OccurredAt)
    : PostingCommand(TransactionId);

/// <summary>OccurredAt null = not sent (the clock is used).</summary>
public sealed record RefundCommand(string TransactionId, string OriginalTransactionId, string CardId, long AmountMinor, DateTimeOffset? OccurredAt)
    : PostingCommand(TransactionId);

public sealed record RedeemCommand(string TransactionId, string PartnerId, long AmountMinor) : PostingCommand(TransactionId);

public sealed record EnrollCommand(string MemberId, bool Premium, string ReferredBy, string TierId);

public sealed record ChooseCategoriesCommand(MonthKey Month, IReadOnlyList<string> Categories);

/// <summary>Why a command was refused; the gateway maps each to its gRPC status.</summary>
public enum RejectionKind
{
    InvalidArgument = 1,
    NotFound = 2,
    AlreadyExists = 3,
    FailedPrecondition = 4,
    /// <summary>A per-member bound is reached; the values match the contract's RejectionCode.</summary>
    ResourceExhausted = 7,
}

public sealed record Rejection(RejectionKind Kind, string Message);

/// <summary>The result of a posting: ACCEPTED or DUPLICATE with the original figures.</summary>
public sealed record PostingOutcome(string TransactionId, bool Duplicate, string MemberId, string CardId, long AccruedMinor,
    long PendingAfterMinor, long AvailableAfterMinor, AccrualLine[] Breakdown)
{
    public static PostingOutcome From(LedgerEntry entry, bool duplicate) => new(entry.MessageId, duplicate, entry.MemberId,
        entry.CardId, entry.AccruedMinor, entry.PendingAfterMinor, entry.AvailableAfterMinor, entry.Breakdown);
}

/// <summary>Stable 64-bit FNV-1a over a request's canonical fields (string.GetHashCode is per-process).</summary>
public struct Fingerprint
{
    private const ulong Offset = 14695981039346656037UL;
    private const ulong Prime = 1099511628211UL;
    private ulong _hash;

    public static Fingerprint Start(string kind) => new Fingerprint { _hash = Offset }.Add(kind);

    // A hash wraps by definition: unchecked in a project that checks all other arithmetic.
    public Fingerprint Add(string value)
    {
        unchecked
        {
            foreach (var ch in value)
            {
                _hash = (_hash ^ (byte)ch) * Prime;
                _hash = (_hash ^ (byte)(ch >> 8)) * Prime;
            }
            _hash = (_hash ^ 0xFF) * Prime; // field separator, so ("ab","c") differs from ("a","bc")
        }
        return this;
    }

    public Fingerprint Add(long value)
    {
        unchecked
        {
            for (var i = 0; i < 8; i++)
            {
                _hash = (_hash ^ (byte)(value >> (i * 8))) * Prime;
            }
        }
        return this;
    }

    public readonly long Value => unchecked((long)_hash);
}
