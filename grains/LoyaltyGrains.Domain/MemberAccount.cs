namespace LoyaltyGrains.Domain;

/// <summary>
/// A member's accrual lifecycle (docs/RULES.md) as an event-sourced state machine. Each command is decided
/// against the current state into ledger entries; Apply is the only way state changes, so replaying the ledger
/// rebuilds exactly the same member. Pure: time and program come in as arguments.
/// </summary>
public sealed partial class MemberAccount
{
    // Both exist only between a decision and its commit: a million idle members would otherwise each keep two lists
    // (and the entries' array) from their last message.
    private List<LedgerEntry>? _uncommitted;

    private List<BudgetReturn>? _budgetReturns;

    public MemberAccount(string memberId) : this(new MemberState { MemberId = memberId })
    {
    }

    public MemberAccount(MemberState state) => State = state;

    public MemberState State { get; }

    public string MemberId => State.MemberId;

    /// <summary>
    /// Keeps settled purchases, redemptions and old months in memory as the engine once did. Only for tests that check
    /// the hot state decides exactly as the whole history would; never set in the engine.
    /// </summary>
    public bool KeepSettled { get; init; }

    /// <summary>
    /// A captured purchase (and a redemption) stays in memory this long after it was recorded, so a refund needs no
    /// ledger read; an older one is refunded from its ledger rows (the caller reads them: <see cref="ColdReference"/>).
    /// </summary>
    public static readonly TimeSpan CaptureMemory = TimeSpan.FromDays(45);

    /// <summary>
    /// Months kept before the newest one in memory, besides months of purchases in memory: a tier reads the previous
    /// month, and the late clearing of an expired authorization is priced with its month's tier and cap. A clearing
    /// more than a year late finds its month gone and is priced as a month without events (entry tier, cap unused).
    /// </summary>
    public const int MonthsKeptBeforeNewest = 12;

    // No earlier open authorization than this (UTC ticks; long.MaxValue: none): expiry looks at the open ones only when
    // the hold period has passed this mark, so a touch costs one comparison, never a walk over the purchases in memory.
    // A lower bound, not exact (a capture or reversal does not raise it); a walk that finds nothing to expire sets it
    // again. Derived from State on first use, never serialized: 8 bytes where a sorted index cost ~100 per purchase.
    private long _oldestOpenTicks = long.MinValue;
    /// <summary>Entries recorded (decided and applied) by the last command, which the host must write to the ledger before replying.</summary>
    public IReadOnlyList<LedgerEntry> Uncommitted => _uncommitted ?? (IReadOnlyList<LedgerEntry>)[];

    /// <summary>Campaign budget the last command gave back (reversals, refunds, expiry); returned to leases after commit.</summary>
    public IReadOnlyList<BudgetReturn> BudgetReturns => _budgetReturns ?? (IReadOnlyList<BudgetReturn>)[];

    public void ClearUncommitted()
    {
        _uncommitted = null;
        _budgetReturns = null;
    }

    public MemberCampaignFacts CampaignFacts => State.ActivatedCampaigns is null && State.CampaignAccrued is null && State.JoinedCampaigns is null
        ? MemberCampaignFacts.None
        : new(State.ActivatedCampaigns ?? MemberCampaignFacts.None.Activated, State.CampaignAccrued ?? MemberCampaignFacts.None.Accrued,
            State.JoinedCampaigns ?? MemberCampaignFacts.None.Joined);

    /// <summary>The campaigns a purchase would claim (before budget), for the caller to reserve from leases.</summary>
    public List<CampaignClaim> PlanCampaigns(ProgramHistory programs, MccCatalogue catalogue, IReadOnlyList<CampaignRule> campaigns,
        long amountMinor, int mcc, string merchantId, DateTimeOffset occurredAt)
    {
        var program = programs.At(occurredAt);
        var month = program.MonthOf(occurredAt);
        return AccrualCalculator.PlanCampaigns(program, catalogue, new PurchaseFacts(amountMinor, mcc, merchantId, occurredAt),
            Facts(program, month, reservedMinor: 0), campaigns, CampaignFacts);
    }

    public bool HasProcessed(string transactionId) => State.Processed.ContainsKey(transactionId);

    /// <summary>Whether a capture would be a force post (no known authorization, MCC given): only then it claims campaigns.</summary>
    public bool IsForcePost(string authorizationId, int mcc, IReadOnlyList<LedgerEntry>? coldRows = null) =>
        mcc >= 0 && (authorizationId.Length == 0 || FindPurchase(authorizationId, coldRows, byMessageId: false) is null);

    /// <summary>
    /// The purchase or redemption a capture, reversal or refund names when memory no longer holds it (settled, or
    /// captured before <see cref="CaptureMemory"/>): the decision then needs its ledger rows, which the caller reads and
    /// passes in. Null when memory decides alone (a retry, an unknown member, a purchase in memory). Not a decision.
    /// </summary>
    public string? ColdReference(string transactionId, string reference)
    {
        if (reference.Length == 0 || !State.Enrolled || State.Processed.ContainsKey(transactionId)) return null;
        if (State.Purchases.ContainsKey(reference) || State.CaptureToPurchase?.ContainsKey(reference) == true
            || State.Redemptions?.ContainsKey(reference) == true) return null;
        return reference;
    }

    /// <summary>
    /// Like <see cref="ColdReference"/> for an authorization: its id names a force-posted purchase memory may no longer
    /// hold only when the authorization is older than <see cref="CaptureMemory"/> (an authorization arrives with its
    /// purchase; a force post is recorded after it), so a timely authorization never reads the ledger.
    /// </summary>
    public string? ColdAuthorization(string transactionId, DateTimeOffset occurredAt, DateTimeOffset now) =>
        State.Enrolled && !State.Processed.ContainsKey(transactionId) && !State.Purchases.ContainsKey(transactionId) && occurredAt < now - CaptureMemory
            ? transactionId : null;

    /// <summary>
    /// Processed messages stay in memory this long; an older retry is recognised by the ledger's unique message id
    /// (the grain then answers DUPLICATE from the ledger row). Keeps a long-lived member's memory bounded.
    /// </summary>
    public static readonly TimeSpan DedupeMemory = TimeSpan.FromDays(45);

    public const int DedupePruneEveryEntries = 64;

    /// <summary>
    /// Captured purchases (and redemptions) kept in memory at most, the most recent: a member with a heavy card (a
    /// merchant's, a hot test card) would otherwise hold every capture of the last <see cref="CaptureMemory"/>, and its
    /// snapshot with them. Refunds of older ones read their rows, as after the age limit.
    /// </summary>
    public const int CapturedKeptMax = 32;

    /// <summary>
    /// Idempotency records kept in memory at most (besides those of purchases still in memory); an older retry is
    /// recognised by the ledger's unique message id, as after <see cref="DedupeMemory"/>.
    /// </summary>
    public const int ProcessedKeptMax = 128;
}

/// <summary>Campaign budget a reversal, refund or expiry gave back.</summary>
public readonly record struct BudgetReturn(string CampaignId, long AmountMinor);

/// <summary>Either a value or a rejection; no exceptions for expected refusals.</summary>
public readonly struct Result<T>
{
    private Result(T? value, Rejection? rejection)
    {
        Value = value;
        Rejection = rejection;
    }

    public T? Value { get; }
    public Rejection? Rejection { get; }
    public bool IsOk => Rejection is null;

    public static implicit operator Result<T>(T value) => new(value, null);

    public static implicit operator Result<T>(Rejection rejection) => new(default, rejection);
}
