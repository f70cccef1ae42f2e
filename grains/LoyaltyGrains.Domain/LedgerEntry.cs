namespace LoyaltyGrains.Domain;

/// <summary>What one ledger row records. Stored as its number: never renumber.</summary>
public enum EntryKind
{
    Enroll = 1,
    Authorize = 2,
    Capture = 3,
    ForcePost = 4,
    Reverse = 5,
    /// <summary>A reversal that arrived before its authorization: recorded, applied when the authorization arrives.</summary>
    ReverseParked = 6,
    /// <summary>A parked reversal applied to its authorization on arrival.</summary>
    ReverseApplied = 7,
    Refund = 8,
    /// <summary>A pending authorization past the hold period, released on next touch.</summary>
    ExpirePending = 9,
    ChooseCategories = 10,
    Redeem = 11,
    RedeemRefund = 12,
    /// <summary>An authorization arriving after its purchase was already force-posted: recorded, earns nothing.</summary>
    AuthorizeLate = 13,
    /// <summary>The member's tier for a month, frozen on its first event of the month.</summary>
    TierAssigned = 14,
    /// <summary>The member opted in to a campaign that requires activation (a partner club).</summary>
    ActivateCampaign = 15,
    /// <summary>Bonus lots past their expiry, written off first-in-first-out.</summary>
    ExpireLots = 16,
    /// <summary>A referral bonus: the referred member's own, or its referrer's (Detail names the referred member).</summary>
    ReferralBonus = 17,
    /// <summary>A parked reversal whose authorization never came within the hold period: dropped (Detail: its transaction id).</summary>
    ParkedReversalExpired = 18,
}

/// <summary>
/// One append-only ledger row: the single commit of a member's change and of its idempotency record. Every field
/// the projection needs is here, so a member is rebuilt by applying its entries in sequence order.
/// </summary>
public sealed record LedgerEntry
{
    /// <summary>
    /// Per-member sequence, 1-based, gap-free; unique with MemberId so two writers of a member collide. Stamped, with
    /// MemberId and the balances after, when the member records the entry.
    /// </summary>
    public long Sequence { get; init; }

    /// <summary>The processor's transaction id, or a derived id ("expire:…", "enroll:…") for engine-made entries.</summary>
    public required string MessageId { get; init; }

    public required EntryKind Kind { get; init; }
    public string MemberId { get; init; } = "";
    public string CardId { get; init; } = "";

    /// <summary>The purchase (authorization id, force-post id or redemption id) this entry belongs to.</summary>
    public string PurchaseId { get; init; } = "";

    /// <summary>The message's own amount: purchase, capture, reversal, refund or redemption.</summary>
    public long AmountMinor { get; init; }

    public long PendingDeltaMinor { get; init; }
    public long AvailableDeltaMinor { get; init; }
    public long PendingAfterMinor { get; init; }
    public long AvailableAfterMinor { get; init; }

    /// <summary>This entry's change, line by line; sums to the accrued figure of the reply.</summary>
    public AccrualLine[] Breakdown { get; init; } = [];

    public int Mcc { get; init; } = -1;
    public string Category { get; init; } = "";
    public string MerchantId { get; init; } = "";
    public string Currency { get; init; } = "";
    public string PartnerId { get; init; } = "";
    public DateTimeOffset OccurredAt { get; init; }
    public DateTimeOffset RecordedAt { get; init; }

    /// <summary>Hash of the request payload: the same id with another payload is a conflict, not a retry.</summary>
    public long Fingerprint { get; init; }

    /// <summary>The purchase's month (program calendar) that cap and spend deltas count in.</summary>
    public int PurchaseMonth { get; init; }
    public long CategoryCapDeltaMinor { get; init; }
    public long SpendDeltaMinor { get; init; }

    /// <summary>When bonuses this entry makes available expire (positive available deltas only).</summary>
    public DateTimeOffset LotExpiresAt { get; init; }

    /// <summary>Kind-specific text: tier and flags on Enroll, "month:cat1,cat2" on ChooseCategories.</summary>
    public string Detail { get; init; } = "";

    /// <summary>The reply's "accrued": + accrual, − void, clawback or redemption.</summary>
    public long AccruedMinor => Kind switch
    {
        EntryKind.Capture or EntryKind.ForcePost or EntryKind.Refund or EntryKind.Redeem or EntryKind.RedeemRefund
            or EntryKind.ExpireLots or EntryKind.ReferralBonus => AvailableDeltaMinor,
        _ => PendingDeltaMinor,
    };
}
