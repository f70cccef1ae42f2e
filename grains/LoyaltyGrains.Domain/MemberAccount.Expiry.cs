namespace LoyaltyGrains.Domain;

/// <summary>Housekeeping on every touch: pending authorizations, parked reversals and bonus lots past their time.</summary>
public sealed partial class MemberAccount
{
    /// <summary>Releases every pending authorization older than the hold period (rule "pending expiry", on next touch).</summary>
    public void ExpirePending(ProgramConfig program, DateTimeOffset now)
    {
        var cutoff = now.AddDays(-program.AuthorizationHoldDays).UtcTicks;
        if (_oldestOpenTicks >= cutoff) return;
        List<PurchaseRecord>? expired = null;
        var oldestLeft = long.MaxValue;
        foreach (var purchase in State.Purchases.Values)
        {
            if (purchase.State != PurchaseState.Pending) continue;
            var ticks = purchase.OccurredAt.UtcTicks;
            if (ticks < cutoff) (expired ??= []).Add(purchase);
            else oldestLeft = Math.Min(oldestLeft, ticks);
        }
        _oldestOpenTicks = oldestLeft;
        // Oldest first, ties by id: the order the rows are written in does not depend on the map's order.
        expired?.Sort(static (a, b) => a.OccurredAt.UtcTicks != b.OccurredAt.UtcTicks
            ? a.OccurredAt.UtcTicks.CompareTo(b.OccurredAt.UtcTicks) : string.CompareOrdinal(a.PurchaseId, b.PurchaseId));
        if (expired is null) return;
        foreach (var purchase in expired)
        {
            var release = PendingReversal.AtExpiry(purchase.PendingLines, purchase.CategoryReservedMinor);
            var pendingDelta = -AccrualCalculator.Sum(purchase.PendingLines);
            ReturnBudget(purchase.PendingLines, []);
            Record(new LedgerEntry
            {
                MessageId = "expire:" + MemberId + ":" + purchase.PurchaseId, Kind = EntryKind.ExpirePending,
                CardId = purchase.CardId, PurchaseId = purchase.PurchaseId, AmountMinor = purchase.RemainingAuthorizedMinor,
                Mcc = purchase.Mcc, Category = purchase.Category, MerchantId = purchase.MerchantId, Currency = purchase.Currency,
                OccurredAt = now, RecordedAt = now, PendingDeltaMinor = pendingDelta, Breakdown = Negate(purchase.PendingLines),
                PurchaseMonth = purchase.Month, CategoryCapDeltaMinor = release.CategoryCapDeltaMinor,
            });
        }
    }

    /// <summary>Housekeeping every touch does first: pending authorizations past the hold, parked reversals past it, bonus lots past expiry.</summary>
    public void Touch(ProgramConfig program, DateTimeOffset now)
    {
        ExpirePending(program, now);
        ExpireParkedReversals(program, now);
        ExpireLots(now);
    }

    /// <summary>Rule "parked reversals": a reversal whose authorization has not come within the hold period is dropped.</summary>
    public void ExpireParkedReversals(ProgramConfig program, DateTimeOffset now)
    {
        if (State.ParkedReversals is not { Count: > 0 } parked) return;
        var cutoff = now.AddDays(-program.AuthorizationHoldDays);
        List<(string AuthorizationId, ParkedReversal Reversal)>? expired = null;
        foreach (var (authorizationId, reversals) in parked)
        {
            foreach (var reversal in reversals)
            {
                if (reversal.RecordedAt < cutoff) (expired ??= []).Add((authorizationId, reversal));
            }
        }
        if (expired is null) return;
        foreach (var (authorizationId, reversal) in expired.OrderBy(e => e.Reversal.RecordedAt).ThenBy(e => e.Reversal.TransactionId, StringComparer.Ordinal))
        {
            Record(new LedgerEntry
            {
                MessageId = "expire-parked:" + MemberId + ":" + reversal.TransactionId, Kind = EntryKind.ParkedReversalExpired,
                CardId = reversal.CardId, PurchaseId = authorizationId, AmountMinor = reversal.AmountMinor,
                OccurredAt = now, RecordedAt = now, Detail = reversal.TransactionId,
            });
        }
    }

    private int ParkedReversalCount()
    {
        if (State.ParkedReversals is null) return 0;
        var count = 0;
        foreach (var reversals in State.ParkedReversals.Values) count += reversals.Count;
        return count;
    }

    /// <summary>Rule "expiry": lots past their date are written off, oldest first, on next touch or sweep.</summary>
    public void ExpireLots(DateTimeOffset now)
    {
        long expiredMinor = 0;
        foreach (ref readonly var lot in State.Lots.AsSpan())
        {
            if (lot.ExpiresAt > now) break;
            expiredMinor += lot.AmountMinor;
        }
        if (expiredMinor == 0) return;
        Record(new LedgerEntry
        {
            MessageId = $"expire-lots:{MemberId}:{State.Sequence + 1}", Kind = EntryKind.ExpireLots,
            OccurredAt = now, RecordedAt = now, AmountMinor = expiredMinor, AvailableDeltaMinor = -expiredMinor,
            Breakdown = [new AccrualLine("expiry", -expiredMinor)],
        });
    }

    /// <summary>Bonuses made available now expire at the start of the day after the same date M months on (program calendar).</summary>
    public static DateTimeOffset LotExpiry(ProgramConfig program, DateTimeOffset now)
    {
        var offset = TimeSpan.FromMinutes(program.UtcOffsetMinutes);
        var localDate = now.ToOffset(offset).Date;
        return new DateTimeOffset(localDate.AddMonths(program.ExpiryMonths).AddDays(1), offset).ToUniversalTime();
    }

    /// <summary>The lot expiring next and when: what a balance shows as "expiring soon".</summary>
    public (long AmountMinor, DateTimeOffset? At) NextExpiry() =>
        State.Lots.Length == 0 ? (0, null) : (State.Lots[0].AmountMinor, State.Lots[0].ExpiresAt);
}
