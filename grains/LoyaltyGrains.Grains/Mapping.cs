using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Grains;

/// <summary>Domain ↔ contract messages.</summary>
public static class Mapping
{
    public static PostingResult ToResult(PostingOutcome outcome) => new(outcome.TransactionId, outcome.Duplicate, outcome.MemberId,
        outcome.CardId, outcome.AccruedMinor, outcome.PendingAfterMinor, outcome.AvailableAfterMinor, ToItems(outcome.Breakdown));

    public static BreakdownItem[] ToItems(AccrualLine[] lines)
    {
        var items = new BreakdownItem[lines.Length];
        for (var i = 0; i < lines.Length; i++) items[i] = new BreakdownItem(lines[i].Rule, lines[i].AmountMinor, lines[i].RateBps, lines[i].PartnerId);
        return items;
    }

    public static StatementLine ToStatementLine(LedgerEntry entry) => new(entry.Sequence, entry.MessageId, KindName(entry.Kind), entry.CardId,
        entry.AmountMinor, entry.AccruedMinor, entry.PendingDeltaMinor, entry.AvailableDeltaMinor, entry.Mcc, entry.Category, entry.MerchantId,
        entry.OccurredAt, entry.RecordedAt, ToItems(entry.Breakdown));

    public static string KindName(EntryKind kind) => kind switch
    {
        EntryKind.Enroll => "enroll",
        EntryKind.Authorize => "authorize",
        EntryKind.Capture => "capture",
        EntryKind.ForcePost => "force_post",
        EntryKind.Reverse => "reverse",
        EntryKind.ReverseParked => "reverse_parked",
        EntryKind.ReverseApplied => "reverse_applied",
        EntryKind.Refund => "refund",
        EntryKind.ExpirePending => "expire_pending",
        EntryKind.ChooseCategories => "choose_categories",
        EntryKind.Redeem => "redeem",
        EntryKind.RedeemRefund => "redeem_refund",
        EntryKind.AuthorizeLate => "authorize_late",
        EntryKind.TierAssigned => "tier_assigned",
        EntryKind.ActivateCampaign => "activate_campaign",
        EntryKind.ExpireLots => "expire_lots",
        EntryKind.ReferralBonus => "referral_bonus",
        _ => kind.ToString(),
    };
}
