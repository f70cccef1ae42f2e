namespace LoyaltyGrains.Domain;

/// <summary>Apply: the only place state changes, including what leaves memory; and rebuilding a settled purchase from its rows.</summary>
public sealed partial class MemberAccount
{
    /// <summary>Applies one committed (or replayed) entry. The only place state changes.</summary>
    public void Apply(LedgerEntry entry)
    {
        if (entry.Sequence != State.Sequence + 1)
        {
            throw new InvalidOperationException($"member {MemberId}: entry {entry.MessageId} has sequence {entry.Sequence}, expected {State.Sequence + 1}");
        }
        switch (entry.Kind)
        {
            case EntryKind.Enroll: ApplyEnroll(entry); break;
            case EntryKind.Authorize: ApplyAuthorize(entry); break;
            case EntryKind.ForcePost: ApplyForcePost(entry); break;
            case EntryKind.Capture: ApplyCapture(entry); break;
            case EntryKind.Reverse or EntryKind.ReverseApplied or EntryKind.ExpirePending: ApplyReversal(entry); break;
            case EntryKind.ReverseParked: ApplyParked(entry); break;
            case EntryKind.ParkedReversalExpired: ApplyParkedExpired(entry); break;
            case EntryKind.Refund: ApplyRefund(entry); break;
            case EntryKind.ChooseCategories: Month(entry.PurchaseMonth).ChosenCategories = entry.Detail.Length == 0 ? [] : entry.Detail.Split(','); break;
            case EntryKind.AuthorizeLate: break;
            case EntryKind.TierAssigned: Month(entry.PurchaseMonth).TierId = entry.Detail; break;
            case EntryKind.ActivateCampaign: (State.ActivatedCampaigns ??= new()).Add(entry.Detail); break;
            case EntryKind.ExpireLots: break;
            case EntryKind.ReferralBonus:
                if (entry.Detail == MemberId) State.ReferralEarned = true;
                else (State.ReferralsCredited ??= new()).Add(entry.Detail);
                break;
            case EntryKind.Redeem: (State.Redemptions ??= new())[entry.MessageId] = RedemptionFrom(entry); break;
            case EntryKind.RedeemRefund: ApplyRedeemRefund(entry); break;
            default: throw new InvalidOperationException($"member {MemberId}: entry {entry.MessageId} has unknown kind {entry.Kind}");
        }
        if (entry.Kind != EntryKind.Capture) CountCampaignLines(entry.Breakdown, sign: 1);
        State.PendingMinor += entry.PendingDeltaMinor;
        MoveLots(State.AvailableMinor, State.AvailableMinor + entry.AvailableDeltaMinor, entry.LotExpiresAt);
        State.AvailableMinor += entry.AvailableDeltaMinor;
        if (entry.PurchaseMonth != 0 && (entry.CategoryCapDeltaMinor != 0 || entry.SpendDeltaMinor != 0))
        {
            var month = Month(entry.PurchaseMonth);
            month.CategoryCapUsedMinor += entry.CategoryCapDeltaMinor;
            month.CapturedSpendMinor += entry.SpendDeltaMinor;
        }
        State.Sequence = entry.Sequence;
        if (entry.Sequence % DedupePruneEveryEntries == 0)
        {
            PruneSettled(entry.RecordedAt);
            PruneProcessed(entry.RecordedAt);
        }
        if (IsProcessorMessage(entry.Kind))
        {
            State.Processed[entry.MessageId] = new ProcessedMessage
            {
                Fingerprint = entry.Fingerprint, Sequence = entry.Sequence, RecordedAt = entry.RecordedAt,
                CardId = entry.CardId, AccruedMinor = entry.AccruedMinor, PendingAfterMinor = entry.PendingAfterMinor,
                AvailableAfterMinor = entry.AvailableAfterMinor, Breakdown = entry.Breakdown,
                PurchaseId = entry.PurchaseId,
            };
        }
        // Invariant, checked on both sides: the figures written with the entry are the figures the projection reaches.
        if (State.PendingMinor != entry.PendingAfterMinor || State.AvailableMinor != entry.AvailableAfterMinor)
        {
            throw new InvalidOperationException(
                $"member {MemberId}: after entry {entry.MessageId} (seq {entry.Sequence}) pending/available are {State.PendingMinor}/{State.AvailableMinor}, the entry says {entry.PendingAfterMinor}/{entry.AvailableAfterMinor}");
        }
    }

    /// <summary>Pruned as part of Apply, keyed to entry times, so a replay prunes exactly as the live member did.</summary>
    /// <remarks>
    /// By age (<see cref="DedupeMemory"/>) and by count: beyond <see cref="ProcessedKeptMax"/> the oldest records leave,
    /// except those of a purchase or redemption still in memory (a retry of its messages must not be decided again
    /// against it). A busy member's memory and snapshot are so bounded by what is open, not by its rate of traffic.
    /// </remarks>
    private void PruneProcessed(DateTimeOffset recordedAt)
    {
        var cutoff = recordedAt - DedupeMemory;
        List<string>? old = null;
        foreach (var (id, processed) in State.Processed)
        {
            if (processed.RecordedAt < cutoff) (old ??= []).Add(id);
        }
        if (old is not null) foreach (var id in old) State.Processed.Remove(id);
        var excess = State.Processed.Count - ProcessedKeptMax;
        if (excess <= 0 || KeepSettled) return;
        List<(long Sequence, string Id)>? leaving = null;
        foreach (var (id, processed) in State.Processed)
        {
            if (processed.PurchaseId is not { } purchaseId || InMemory(purchaseId)) continue;
            (leaving ??= []).Add((processed.Sequence, id));
        }
        if (leaving is null) return;
        leaving.Sort((a, b) => a.Sequence.CompareTo(b.Sequence));
        for (var i = 0; i < Math.Min(excess, leaving.Count); i++) State.Processed.Remove(leaving[i].Id);
    }

    private bool InMemory(string purchaseId) =>
        purchaseId.Length > 0 && (State.Purchases.ContainsKey(purchaseId) || State.Redemptions?.ContainsKey(purchaseId) == true);

    private void CountCampaignLines(AccrualLine[] lines, int sign)
    {
        foreach (var line in lines)
        {
            if (line.AmountMinor == 0 || !line.Rule.StartsWith(CampaignRule.RulePrefix, StringComparison.Ordinal)) continue;
            var campaignId = line.Rule[CampaignRule.RulePrefix.Length..];
            var accrued = State.CampaignAccrued ??= new();
            accrued[campaignId] = accrued.GetValueOrDefault(campaignId) + sign * line.AmountMinor;
            if (sign > 0 && line.AmountMinor > 0) (State.JoinedCampaigns ??= new()).Add(campaignId);
        }
    }

    /// <summary>Keeps lots summing to max(0, available): gains beyond any debt form a lot, losses consume the oldest lots.</summary>
    private void MoveLots(long availableBefore, long availableAfter, DateTimeOffset lotExpiresAt)
    {
        var before = Math.Max(0, availableBefore);
        var after = Math.Max(0, availableAfter);
        var lots = State.Lots;
        if (after > before)
        {
            if (lots.Length > 0 && lots[^1].ExpiresAt == lotExpiresAt) lots[^1].AmountMinor += after - before;
            else State.Lots = [.. lots, new BonusLot { ExpiresAt = lotExpiresAt, AmountMinor = after - before }];
            return;
        }
        var toConsume = before - after;
        var consumed = 0;
        while (toConsume > 0)
        {
            ref var oldest = ref lots[consumed];
            var taken = Math.Min(oldest.AmountMinor, toConsume);
            oldest.AmountMinor -= taken;
            toConsume -= taken;
            if (oldest.AmountMinor == 0) consumed++;
        }
        if (consumed > 0) State.Lots = lots[consumed..];
    }

    private static bool IsProcessorMessage(EntryKind kind) => kind is EntryKind.Authorize or EntryKind.Capture or EntryKind.ForcePost
        or EntryKind.Reverse or EntryKind.ReverseParked or EntryKind.Refund or EntryKind.AuthorizeLate or EntryKind.Redeem or EntryKind.RedeemRefund;

    private void ApplyEnroll(LedgerEntry entry)
    {
        var (tier, premium, referredBy) = ParseEnrollDetail(entry.Detail);
        if (entry.PurchaseMonth != 0) Month(entry.PurchaseMonth).TierId = tier;
        State.Enrolled = true;
        State.TierId = tier;
        State.Premium = premium;
        State.ReferredBy = referredBy;
        State.EnrolledAt = entry.OccurredAt;
    }

    private void ApplyAuthorize(LedgerEntry entry)
    {
        var purchase = AuthorizedPurchase(entry);
        State.Purchases[entry.PurchaseId] = purchase;
        _oldestOpenTicks = Math.Min(_oldestOpenTicks, purchase.OccurredAt.UtcTicks);
    }

    private void ApplyForcePost(LedgerEntry entry)
    {
        State.Purchases[entry.PurchaseId] = ForcePostedPurchase(entry);
        (State.CaptureToPurchase ??= new())[entry.MessageId] = entry.PurchaseId;
    }

    private void ApplyCapture(LedgerEntry entry)
    {
        if (State.Purchases.TryGetValue(entry.PurchaseId, out var purchase))
        {
            // Campaign accrual moves from the pending lines to the captured ones.
            CountCampaignLines(purchase.PendingLines, sign: -1);
        }
        else
        {
            // The late clearing of an expired authorization that left memory: nothing of it was pending any more, and
            // a capture is refundable, so it comes back as a captured purchase.
            State.Purchases[entry.PurchaseId] = purchase = PurchaseFromRow(entry);
        }
        CountCampaignLines(entry.Breakdown, sign: 1);
        CaptureInto(purchase, entry);
        (State.CaptureToPurchase ??= new())[entry.MessageId] = entry.PurchaseId;
    }

    private void ApplyReversal(LedgerEntry entry)
    {
        var purchase = State.Purchases[entry.PurchaseId];
        ReverseInto(purchase, entry);
        if (purchase.State != PurchaseState.Pending)
        {
            // Settled: no message can change it any more; a late one reads its ledger rows.
            if (!KeepSettled) State.Purchases.Remove(purchase.PurchaseId);
        }
        if (entry.Kind == EntryKind.ReverseApplied) State.ParkedReversals?.Remove(entry.PurchaseId);
    }

    private static PurchaseRecord AuthorizedPurchase(LedgerEntry entry) => new()
    {
        PurchaseId = entry.PurchaseId, CardId = entry.CardId, Mcc = entry.Mcc, Category = entry.Category, MerchantId = entry.MerchantId,
        Currency = entry.Currency, OccurredAt = entry.OccurredAt, Month = entry.PurchaseMonth, State = PurchaseState.Pending,
        AuthorizedMinor = entry.AmountMinor, RemainingAuthorizedMinor = entry.AmountMinor, AuthorizedLines = entry.Breakdown,
        PendingLines = entry.Breakdown, CategoryReservedMinor = entry.CategoryCapDeltaMinor,
    };

    private static PurchaseRecord ForcePostedPurchase(LedgerEntry entry) => new()
    {
        PurchaseId = entry.PurchaseId, CardId = entry.CardId, Mcc = entry.Mcc, Category = entry.Category, MerchantId = entry.MerchantId,
        Currency = entry.Currency, OccurredAt = entry.OccurredAt, Month = entry.PurchaseMonth, State = PurchaseState.Captured,
        CaptureId = entry.MessageId, CapturedMinor = entry.AmountMinor, CapturedLines = entry.Breakdown,
        ClawedLines = Clawback.NothingClawed(entry.Breakdown), CategoryReservedMinor = entry.CategoryCapDeltaMinor, CapturedAt = entry.RecordedAt,
    };

    /// <summary>A purchase known from a later row only (its capture): what a refund needs is on that row.</summary>
    private static PurchaseRecord PurchaseFromRow(LedgerEntry entry) => new()
    {
        PurchaseId = entry.PurchaseId, CardId = entry.CardId, Mcc = entry.Mcc, Category = entry.Category, MerchantId = entry.MerchantId,
        Currency = entry.Currency, OccurredAt = entry.OccurredAt, Month = entry.PurchaseMonth, State = PurchaseState.Expired,
    };

    /// <summary>A capture keeps only what a refund needs: the authorization's lines are done with.</summary>
    private static void CaptureInto(PurchaseRecord purchase, LedgerEntry entry)
    {
        purchase.State = PurchaseState.Captured;
        purchase.CaptureId = entry.MessageId;
        purchase.CapturedMinor = entry.AmountMinor;
        purchase.CapturedLines = entry.Breakdown;
        purchase.ClawedLines = Clawback.NothingClawed(entry.Breakdown);
        purchase.AuthorizedLines = [];
        purchase.PendingLines = [];
        purchase.RemainingAuthorizedMinor = 0;
        purchase.CategoryReservedMinor += entry.CategoryCapDeltaMinor;
        purchase.CapturedAt = entry.RecordedAt;
    }

    private static void ReverseInto(PurchaseRecord purchase, LedgerEntry entry)
    {
        purchase.RemainingAuthorizedMinor -= entry.AmountMinor;
        purchase.PendingLines = AddLines(purchase.PendingLines, entry.Breakdown);
        purchase.CategoryReservedMinor += entry.CategoryCapDeltaMinor;
        if (entry.Kind == EntryKind.ExpirePending) purchase.State = PurchaseState.Expired;
        else if (purchase.RemainingAuthorizedMinor == 0) purchase.State = PurchaseState.Reversed;
    }

    private static void RefundInto(PurchaseRecord purchase, LedgerEntry entry)
    {
        purchase.RefundedMinor += entry.AmountMinor;
        purchase.ClawedLines = AddLines(purchase.ClawedLines, Negate(entry.Breakdown));
        purchase.CategoryReservedMinor += entry.CategoryCapDeltaMinor;
    }

    /// <summary>
    /// The purchase a message names: from memory, else rebuilt from its ledger rows (oldest first) exactly as memory
    /// would have held it, so the decision is the same. <paramref name="byMessageId"/>: the reference may also be the
    /// id of one of its rows (a refund naming the capture).
    /// </summary>
    private PurchaseRecord? FindPurchase(string reference, IReadOnlyList<LedgerEntry>? coldRows, bool byMessageId)
    {
        if (State.Purchases.TryGetValue(reference, out var hot)) return hot;
        if (coldRows is null) return null;
        var purchaseId = reference;
        if (byMessageId)
        {
            foreach (var row in coldRows)
            {
                if (row.MessageId == reference) purchaseId = row.PurchaseId;
            }
        }
        PurchaseRecord? purchase = null;
        foreach (var row in coldRows)
        {
            if (row.MemberId != MemberId || row.PurchaseId != purchaseId) continue;
            switch (row.Kind)
            {
                case EntryKind.Authorize: purchase = AuthorizedPurchase(row); break;
                case EntryKind.ForcePost: purchase = ForcePostedPurchase(row); break;
                case EntryKind.Capture: CaptureInto(purchase ??= PurchaseFromRow(row), row); break;
                case EntryKind.Reverse or EntryKind.ReverseApplied or EntryKind.ExpirePending when purchase is not null: ReverseInto(purchase, row); break;
                case EntryKind.Refund when purchase is not null: RefundInto(purchase, row); break;
            }
        }
        return purchase;
    }

    /// <summary>A redemption memory no longer holds, rebuilt from its ledger rows; null when the rows are not one.</summary>
    private RedemptionRecord? ColdRedemption(string redemptionId, IReadOnlyList<LedgerEntry>? coldRows)
    {
        if (coldRows is null) return null;
        RedemptionRecord? redemption = null;
        foreach (var row in coldRows)
        {
            if (row.MemberId != MemberId || row.PurchaseId != redemptionId) continue;
            if (row.Kind == EntryKind.Redeem) redemption = RedemptionFrom(row);
            else if (row.Kind == EntryKind.RedeemRefund && redemption is not null) redemption.RestoredMinor += row.AmountMinor;
        }
        return redemption;
    }

    private static RedemptionRecord RedemptionFrom(LedgerEntry entry) =>
        new() { PartnerId = entry.PartnerId, AmountMinor = entry.AmountMinor, RedeemedAt = entry.RecordedAt };

    private void ApplyParked(LedgerEntry entry)
    {
        var parkedReversals = State.ParkedReversals ??= new();
        if (!parkedReversals.TryGetValue(entry.PurchaseId, out var list)) parkedReversals[entry.PurchaseId] = list = [];
        list.Add(new ParkedReversal { TransactionId = entry.MessageId, CardId = entry.CardId, AmountMinor = entry.AmountMinor, RecordedAt = entry.RecordedAt });
    }

    private void ApplyParkedExpired(LedgerEntry entry)
    {
        if (State.ParkedReversals is null || !State.ParkedReversals.TryGetValue(entry.PurchaseId, out var list)) return;
        list.RemoveAll(reversal => reversal.TransactionId == entry.Detail);
        if (list.Count == 0) State.ParkedReversals.Remove(entry.PurchaseId);
        if (State.ParkedReversals.Count == 0) State.ParkedReversals = null;
    }

    private void ApplyRefund(LedgerEntry entry)
    {
        // A capture that already left memory stays out: its next refund reads its rows again, this one included.
        if (!State.Purchases.TryGetValue(entry.PurchaseId, out var purchase)) return;
        RefundInto(purchase, entry);
        if (purchase.RefundedMinor == purchase.CapturedMinor && !KeepSettled) Forget(purchase);
    }

    private void ApplyRedeemRefund(LedgerEntry entry)
    {
        if (State.Redemptions?.GetValueOrDefault(entry.PurchaseId) is not { } redemption) return;
        redemption.RestoredMinor += entry.AmountMinor;
        if (redemption.RestoredMinor == redemption.AmountMinor && !KeepSettled) RemoveRedemption(entry.PurchaseId);
    }

    private void Forget(PurchaseRecord purchase)
    {
        State.Purchases.Remove(purchase.PurchaseId);
        if (State.CaptureToPurchase is { } captures)
        {
            captures.Remove(purchase.CaptureId);
            if (captures.Count == 0) State.CaptureToPurchase = null;
        }
    }

    private void RemoveRedemption(string redemptionId)
    {
        State.Redemptions!.Remove(redemptionId);
        if (State.Redemptions.Count == 0) State.Redemptions = null;
    }

    /// <summary>
    /// Lets settled history leave memory (rule "hot state"): captures and redemptions recorded more than
    /// <see cref="CaptureMemory"/> ago, and months before the newest few that no purchase in memory belongs to. Runs in
    /// Apply at fixed sequences, keyed to entry times, so a replay prunes exactly as the live member did.
    /// </summary>
    private void PruneSettled(DateTimeOffset recordedAt)
    {
        if (KeepSettled) return;
        var cutoff = recordedAt - CaptureMemory;
        List<PurchaseRecord>? old = null;
        foreach (var purchase in State.Purchases.Values)
        {
            if (purchase.State == PurchaseState.Captured && purchase.CapturedAt < cutoff) (old ??= []).Add(purchase);
        }
        if (old is not null) foreach (var purchase in old) Forget(purchase);
        // By count too: the most recent captures stay; older ones are refunded from their rows like those past the age.
        List<PurchaseRecord>? captured = null;
        foreach (var purchase in State.Purchases.Values)
        {
            if (purchase.State == PurchaseState.Captured) (captured ??= []).Add(purchase);
        }
        if (captured is { Count: > CapturedKeptMax })
        {
            captured.Sort(static (a, b) => a.CapturedAt != b.CapturedAt ? a.CapturedAt.CompareTo(b.CapturedAt) : string.CompareOrdinal(a.PurchaseId, b.PurchaseId));
            for (var i = 0; i < captured.Count - CapturedKeptMax; i++) Forget(captured[i]);
        }
        if (State.Redemptions is { } redemptions)
        {
            foreach (var id in redemptions.Where(r => r.Value.RedeemedAt < cutoff).Select(r => r.Key).ToArray()) RemoveRedemption(id);
            if (State.Redemptions is { Count: > CapturedKeptMax } many)
            {
                var leaving = many.OrderBy(r => r.Value.RedeemedAt).ThenBy(r => r.Key, StringComparer.Ordinal).Take(many.Count - CapturedKeptMax).Select(r => r.Key).ToArray();
                foreach (var id in leaving) RemoveRedemption(id);
            }
        }
        if (State.Months.Count <= MonthsKeptBeforeNewest + 1) return;
        var keepFrom = new MonthKey(State.Months.Keys.Max());
        for (var i = 0; i < MonthsKeptBeforeNewest; i++) keepFrom = keepFrom.Previous();
        var inUse = new HashSet<int>();
        foreach (var purchase in State.Purchases.Values) inUse.Add(purchase.Month);
        foreach (var month in State.Months.Keys.Where(m => m < keepFrom.Value && !inUse.Contains(m)).ToArray()) State.Months.Remove(month);
    }
}
