using System.Text.Json.Serialization;
namespace LoyaltyGrains.Domain;

public enum PurchaseState
{
    Pending = 1,
    Captured = 2,
    Reversed = 3,
    Expired = 4,
}

/// <summary>
/// A card purchase from authorization to capture, reversal, refunds or expiry. Memory holds it only while the next
/// message may need it (open, or captured within <see cref="MemberAccount.CaptureMemory"/>); a settled purchase lives
/// in the ledger and is rebuilt from its rows when a late message names it.
/// </summary>
public sealed class PurchaseRecord
{
    // Times as UTC ticks (8 bytes, not a 16-byte DateTimeOffset): a member may hold hundreds of recent purchases.
    private long _occurredAtTicks;
    private long _capturedAtTicks;

    public string PurchaseId { get; set; } = "";
    public string CardId { get; set; } = "";
    public int Mcc { get; set; }
    public string Category { get; set; } = "";
    public string MerchantId { get; set; } = "";
    public string Currency { get; set; } = "";
    public DateTimeOffset OccurredAt { get => new(_occurredAtTicks, TimeSpan.Zero); set => _occurredAtTicks = value.UtcTicks; }
    public int Month { get; set; }
    public PurchaseState State { get; set; }
    public long AuthorizedMinor { get; set; }
    public long RemainingAuthorizedMinor { get; set; }
    public AccrualLine[] AuthorizedLines { get; set; } = [];
    public AccrualLine[] PendingLines { get; set; } = [];
    /// <summary>Category cashback of this purchase counted against its month's cap (pending or captured).</summary>
    public long CategoryReservedMinor { get; set; }
    public string CaptureId { get; set; } = "";
    public long CapturedMinor { get; set; }
    public AccrualLine[] CapturedLines { get; set; } = [];
    public long RefundedMinor { get; set; }
    public AccrualLine[] ClawedLines { get; set; } = [];
    /// <summary>When the capture was recorded: the captured purchase leaves memory <see cref="MemberAccount.CaptureMemory"/> later.</summary>
    public DateTimeOffset CapturedAt { get => new(_capturedAtTicks, TimeSpan.Zero); set => _capturedAtTicks = value.UtcTicks; }
}

/// <summary>What a member has in one program month.</summary>
public sealed class MonthState
{
    /// <summary>The tier frozen for this month on the member's first event in it (rule "tier").</summary>
    public string TierId { get; set; } = "";
    public string[] ChosenCategories { get; set; } = [];
    /// <summary>Category (non-base) cashback counted against the monthly cap, pending included.</summary>
    public long CategoryCapUsedMinor { get; set; }
    public long CapturedSpendMinor { get; set; }
}

/// <summary>A reversal that came before its authorization.</summary>
public sealed class ParkedReversal
{
    public string TransactionId { get; set; } = "";
    public string CardId { get; set; } = "";
    public long AmountMinor { get; set; }
    public DateTimeOffset RecordedAt { get; set; }
}

/// <summary>
/// The idempotency record of one processed message: its payload fingerprint, and what its reply said (the breakdown
/// array is the one the purchase holds, not a copy). A small struct in the member's map, no object of its own; the
/// member id is the member's own and not repeated (snapshots written with it still read: unknown names are skipped).
/// </summary>
public struct ProcessedMessage
{
    private long _recordedAtTicks;

    public long Fingerprint { get; set; }
    public long Sequence { get; set; }
    public DateTimeOffset RecordedAt { readonly get => new(_recordedAtTicks, TimeSpan.Zero); set => _recordedAtTicks = value.UtcTicks; }
    public string CardId { get; set; }
    public long AccruedMinor { get; set; }
    public long PendingAfterMinor { get; set; }
    public long AvailableAfterMinor { get; set; }
    public AccrualLine[] Breakdown { get; set; }
    /// <summary>
    /// The purchase (or redemption) the message was about: while that is in memory its records stay too, so a retry
    /// of any of its messages is answered from memory. Null in snapshots written before it was kept: such records
    /// leave memory by age only.
    /// </summary>
    public string? PurchaseId { get; set; }

    public readonly PostingOutcome ToOutcome(string transactionId, string memberId) =>
        new(transactionId, Duplicate: true, memberId, CardId ?? "", AccruedMinor, PendingAfterMinor, AvailableAfterMinor, Breakdown ?? []);
}

/// <summary>
/// The member's projection of its ledger entries: plain data, so a snapshot is just this object serialized.
/// </summary>
public sealed class MemberState
{
    /// <summary>The snapshot format that wrote this state (<see cref="MemberSnapshotFormat"/>); 0 for snapshots written before versions.</summary>
    public int FormatVersion { get; set; }

    private long _enrolledAtTicks;

    // What few members ever hold (parked reversals, campaigns, redemptions, referrals) in one object made on first use:
    // one reference per member instead of six. The properties below read and write through it, same JSON names.
    private RareMemberState? _rare;

    private RareMemberState? Rare(bool create) => create ? _rare ??= new RareMemberState() : _rare;

    public string MemberId { get; set; } = "";
    public bool Enrolled { get; set; }
    public bool Premium { get; set; }
    public string TierId { get; set; } = "";
    public string ReferredBy { get; set; } = "";
    public DateTimeOffset EnrolledAt { get => new(_enrolledAtTicks, TimeSpan.Zero); set => _enrolledAtTicks = value.UtcTicks; }
    public long Sequence { get; set; }
    public long AvailableMinor { get; set; }
    public long PendingMinor { get; set; }
    /// <summary>Open authorizations and recent captures only (hot state); settled purchases are read from the ledger.</summary>
    public CompactDictionary<string, PurchaseRecord> Purchases { get; set; } = new();
    // Compact maps and sets, not dictionaries: a member usually holds one or two of each (docs/DATA.md, "member in
    // memory"). The ones below stay null until first needed: most members never redeem, refund, join a campaign or
    // refer anyone (the target is a million active members per silo).
    /// <summary>Capture transaction id → purchase id, so a refund may name either.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public CompactDictionary<string, string>? CaptureToPurchase { get; set; }
    public CompactDictionary<int, MonthState> Months { get; set; } = new();
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public CompactDictionary<string, List<ParkedReversal>>? ParkedReversals { get => _rare?.ParkedReversals; set => Rare(value is not null)?.ParkedReversals = value; }
    public CompactDictionary<string, ProcessedMessage> Processed { get; set; } = new();
    /// <summary>Campaign id → net bonus accrued from it (per-member caps; refunds give headroom back).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public CompactDictionary<string, long>? CampaignAccrued { get => _rare?.CampaignAccrued; set => Rare(value is not null)?.CampaignAccrued = value; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public CompactSet? ActivatedCampaigns { get => _rare?.ActivatedCampaigns; set => Rare(value is not null)?.ActivatedCampaigns = value; }
    /// <summary>Campaigns whose first-N member slot this member holds.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public CompactSet? JoinedCampaigns { get => _rare?.JoinedCampaigns; set => Rare(value is not null)?.JoinedCampaigns = value; }
    /// <summary>Available bonuses by expiry, oldest first; they always sum to max(0, AvailableMinor).</summary>
    public BonusLot[] Lots { get; set; } = [];
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public CompactDictionary<string, RedemptionRecord>? Redemptions { get => _rare?.Redemptions; set => Rare(value is not null)?.Redemptions = value; }
    /// <summary>This member's own referral bonus (for its first captured purchase) was granted.</summary>
    public bool ReferralEarned { get; set; }
    /// <summary>Referred members this member was credited for, as referrer.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public CompactSet? ReferralsCredited { get => _rare?.ReferralsCredited; set => Rare(value is not null)?.ReferralsCredited = value; }
}

/// <summary>The part of a member's state few members ever have (see <see cref="MemberState"/>).</summary>
internal sealed class RareMemberState
{
    public CompactDictionary<string, List<ParkedReversal>>? ParkedReversals;
    public CompactDictionary<string, long>? CampaignAccrued;
    public CompactSet? ActivatedCampaigns;
    public CompactSet? JoinedCampaigns;
    public CompactDictionary<string, RedemptionRecord>? Redemptions;
    public CompactSet? ReferralsCredited;
}

/// <summary>Bonuses that became available together and expire together (rule "expiry").</summary>
public struct BonusLot
{
    public DateTimeOffset ExpiresAt { get; set; }
    public long AmountMinor { get; set; }
}

/// <summary>A payment with bonuses at a partner, and how much of it refunds restored.</summary>
public sealed class RedemptionRecord
{
    public string PartnerId { get; set; } = "";
    public long AmountMinor { get; set; }
    public long RestoredMinor { get; set; }
    /// <summary>When it was recorded: it leaves memory <see cref="MemberAccount.CaptureMemory"/> later, as a capture does.</summary>
    public DateTimeOffset RedeemedAt { get; set; }
}
