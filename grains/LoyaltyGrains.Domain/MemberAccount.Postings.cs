namespace LoyaltyGrains.Domain;

/// <summary>Processor and partner postings: authorize, capture (and force post), reverse, refund, redeem, quote — each decided into ledger entries.</summary>
public sealed partial class MemberAccount
{
    public Result<PostingOutcome> Authorize(AuthorizeCommand command, ProgramHistory programs, MccCatalogue catalogue, DateTimeOffset now,
        IReadOnlyList<CampaignGrant>? grants = null, IReadOnlyList<LedgerEntry>? coldRows = null, LedgerEntry? ledgerRow = null)
    {
        var fingerprint = FingerprintOf(command);
        if (CheckProcessed(command.TransactionId, fingerprint, coldRows, ledgerRow) is { } seen) return seen;
        if (!State.Enrolled) return NotEnrolled();
        // After the duplicate check: a retry of an authorization made before a block still gets its original reply.
        if (command.Card == CardStanding.Blocked) return Fail(RejectionKind.FailedPrecondition, $"card_id: card '{command.CardId}' is blocked");
        Touch(programs.At(now), now);

        var program = programs.At(command.OccurredAt);
        if (!program.AcceptsCurrency(command.Currency))
        {
            return Fail(RejectionKind.InvalidArgument, $"currency: '{command.Currency}' is not accepted by the program");
        }
        if (FindPurchase(command.TransactionId, coldRows, byMessageId: false) is { } existing)
        {
            // The purchase was force-posted before its authorization arrived: record it, earn nothing twice.
            return RecordPosting(new LedgerEntry
            {
                MessageId = command.TransactionId, Kind = EntryKind.AuthorizeLate,
                CardId = command.CardId, PurchaseId = existing.PurchaseId, AmountMinor = command.AmountMinor, Mcc = command.Mcc,
                Category = existing.Category, MerchantId = command.MerchantId, Currency = command.Currency,
                OccurredAt = command.OccurredAt, RecordedAt = now, Fingerprint = fingerprint,
            });
        }

        var month = program.MonthOf(command.OccurredAt);
        FreezeTier(program, month, now);
        var accrual = Price(program, catalogue, command.AmountMinor, command.Mcc, command.MerchantId, command.OccurredAt, month, reservedMinor: 0, grants);
        var outcome = RecordPosting(new LedgerEntry
        {
            MessageId = command.TransactionId, Kind = EntryKind.Authorize,
            CardId = command.CardId, PurchaseId = command.TransactionId, AmountMinor = command.AmountMinor, Mcc = command.Mcc,
            Category = accrual.Category, MerchantId = command.MerchantId, Currency = command.Currency, OccurredAt = command.OccurredAt,
            RecordedAt = now, Fingerprint = fingerprint, PendingDeltaMinor = accrual.TotalMinor, Breakdown = accrual.Lines,
            PurchaseMonth = month.Value, CategoryCapDeltaMinor = accrual.CategoryCapConsumedMinor,
        });
        if (outcome.IsOk) ApplyParkedReversals(command.TransactionId, now);
        return outcome;
    }

    public Result<PostingOutcome> Capture(CaptureCommand command, ProgramHistory programs, MccCatalogue catalogue, DateTimeOffset now,
        IReadOnlyList<CampaignGrant>? forcePostGrants = null, IReadOnlyList<LedgerEntry>? coldRows = null, LedgerEntry? ledgerRow = null)
    {
        // Only what the processor sent: a field it left out (time, currency) is filled here, never fingerprinted.
        var fingerprint = FingerprintOf(command);
        if (CheckProcessed(command.TransactionId, fingerprint, coldRows, ledgerRow) is { } seen) return seen;
        if (!State.Enrolled) return NotEnrolled();
        Touch(programs.At(now), now);

        var purchase = command.AuthorizationId.Length == 0 ? null : FindPurchase(command.AuthorizationId, coldRows, byMessageId: false);
        if (purchase is null)
        {
            if (command.Mcc < 0)
            {
                if (command.AuthorizationId.Length == 0) return Fail(RejectionKind.InvalidArgument, "mcc: required for a capture without authorization_id (a force post)");
                return Fail(RejectionKind.NotFound,
                    $"authorization_id: '{command.AuthorizationId}' is not known for this card; send mcc and merchant_id to force post");
            }
            return ForcePost(command, fingerprint, programs, catalogue, now, forcePostGrants);
        }
        if (purchase.CardId != command.CardId)
        {
            return Fail(RejectionKind.InvalidArgument, $"card_id: authorization '{purchase.PurchaseId}' was made on another card");
        }
        if (command.Currency.Length > 0 && command.Currency != purchase.Currency)
        {
            return Fail(RejectionKind.InvalidArgument, $"currency: '{command.Currency}' does not match the authorization's '{purchase.Currency}'");
        }
        switch (purchase.State)
        {
            case PurchaseState.Reversed:
                return Fail(RejectionKind.FailedPrecondition, $"authorization_id: '{purchase.PurchaseId}' was reversed; it cannot be captured");
            case PurchaseState.Captured:
                return Fail(RejectionKind.FailedPrecondition,
                    $"authorization_id: '{purchase.PurchaseId}' was already captured by '{purchase.CaptureId}'; refund or post a new purchase");
        }

        var program = programs.At(purchase.OccurredAt);
        if (purchase.State == PurchaseState.Pending)
        {
            var limitMinor = purchase.RemainingAuthorizedMinor + Money.ApplyBps(purchase.RemainingAuthorizedMinor, program.CaptureMarginBps);
            if (command.AmountMinor > limitMinor)
            {
                return Fail(RejectionKind.FailedPrecondition,
                    $"amount_minor: {command.AmountMinor} exceeds the authorized {purchase.RemainingAuthorizedMinor} plus the {program.CaptureMarginBps} bps capture margin");
            }
        }
        // An expired authorization is still captured: the purchase happened, so the late clearing earns base and
        // category cashback in full; its campaign budget went back at expiry, so campaign lines are not restored.
        var month = new MonthKey(purchase.Month);
        var accrual = Price(program, catalogue, command.AmountMinor, purchase.Mcc, purchase.MerchantId, purchase.OccurredAt, month,
            purchase.CategoryReservedMinor, CampaignGrants.AtCapture(purchase.PendingLines, purchase.RemainingAuthorizedMinor, command.AmountMinor));
        var pendingDelta = -AccrualCalculator.Sum(purchase.PendingLines);
        ReturnBudget(purchase.PendingLines, accrual.Lines);
        var outcome = RecordPosting(new LedgerEntry
        {
            MessageId = command.TransactionId, Kind = EntryKind.Capture,
            CardId = command.CardId, PurchaseId = purchase.PurchaseId, AmountMinor = command.AmountMinor, Mcc = purchase.Mcc,
            Category = purchase.Category, MerchantId = purchase.MerchantId, Currency = purchase.Currency, OccurredAt = command.OccurredAt ?? now,
            RecordedAt = now, Fingerprint = fingerprint, PendingDeltaMinor = pendingDelta, AvailableDeltaMinor = accrual.TotalMinor,
            Breakdown = accrual.Lines, PurchaseMonth = month.Value,
            CategoryCapDeltaMinor = PurchasePricing.CaptureCategoryCapDelta(accrual, purchase.CategoryReservedMinor), SpendDeltaMinor = command.AmountMinor,
            LotExpiresAt = LotExpiry(programs.At(now), now),
        });
        if (outcome.IsOk && !accrual.Excluded) EarnReferral(programs.At(now), now);
        return outcome;
    }

    private Result<PostingOutcome> ForcePost(CaptureCommand command, long fingerprint, ProgramHistory programs, MccCatalogue catalogue, DateTimeOffset now,
        IReadOnlyList<CampaignGrant>? grants)
    {
        if (command.MerchantId.Length == 0) return Fail(RejectionKind.InvalidArgument, "merchant_id: required for a force post (capture without authorization)");
        var occurredAt = command.OccurredAt ?? now;
        var program = programs.At(occurredAt);
        var currency = command.Currency.Length > 0 ? command.Currency : program.Currencies[0];
        if (!program.AcceptsCurrency(currency))
        {
            return Fail(RejectionKind.InvalidArgument, $"currency: '{currency}' is not accepted by the program");
        }
        var purchaseId = command.AuthorizationId.Length > 0 ? command.AuthorizationId : command.TransactionId;
        var month = program.MonthOf(occurredAt);
        FreezeTier(program, month, now);
        var accrual = Price(program, catalogue, command.AmountMinor, command.Mcc, command.MerchantId, occurredAt, month, reservedMinor: 0, grants);
        var outcome = RecordPosting(new LedgerEntry
        {
            MessageId = command.TransactionId, Kind = EntryKind.ForcePost,
            CardId = command.CardId, PurchaseId = purchaseId, AmountMinor = command.AmountMinor, Mcc = command.Mcc,
            Category = accrual.Category, MerchantId = command.MerchantId, Currency = currency, OccurredAt = occurredAt,
            RecordedAt = now, Fingerprint = fingerprint, AvailableDeltaMinor = accrual.TotalMinor, Breakdown = accrual.Lines,
            PurchaseMonth = month.Value, CategoryCapDeltaMinor = accrual.CategoryCapConsumedMinor, SpendDeltaMinor = command.AmountMinor,
            LotExpiresAt = LotExpiry(programs.At(now), now),
        });
        if (outcome.IsOk && !accrual.Excluded) EarnReferral(programs.At(now), now);
        return outcome;
    }

    public Result<PostingOutcome> Reverse(ReverseCommand command, ProgramHistory programs, DateTimeOffset now, IReadOnlyList<LedgerEntry>? coldRows = null,
        LedgerEntry? ledgerRow = null)
    {
        var fingerprint = FingerprintOf(command);
        if (CheckProcessed(command.TransactionId, fingerprint, coldRows, ledgerRow) is { } seen) return seen;
        if (!State.Enrolled) return NotEnrolled();
        Touch(programs.At(now), now);

        var purchase = FindPurchase(command.AuthorizationId, coldRows, byMessageId: false);
        if (purchase is null)
        {
            // The reversal overtook its authorization: record it now, apply it when the authorization arrives — within
            // bounds: a member holds at most so many (rule "parked reversals"), and each expires after the hold period.
            if (ParkedReversalCount() >= Limits.ParkedReversalsMax)
            {
                return Fail(RejectionKind.ResourceExhausted,
                    $"authorization_id: not known, and {Limits.ParkedReversalsMax} reversals already wait for their authorizations on this member");
            }
            return RecordPosting(new LedgerEntry
            {
                MessageId = command.TransactionId, Kind = EntryKind.ReverseParked,
                CardId = command.CardId, PurchaseId = command.AuthorizationId, AmountMinor = command.AmountMinor,
                OccurredAt = command.OccurredAt ?? now, RecordedAt = now, Fingerprint = fingerprint,
            });
        }
        if (purchase.CardId != command.CardId)
        {
            return Fail(RejectionKind.InvalidArgument, $"card_id: authorization '{purchase.PurchaseId}' was made on another card");
        }
        switch (purchase.State)
        {
            case PurchaseState.Captured:
                return Fail(RejectionKind.FailedPrecondition, $"authorization_id: '{purchase.PurchaseId}' is already captured; use Refund");
            case PurchaseState.Reversed:
                return Fail(RejectionKind.FailedPrecondition, $"authorization_id: '{purchase.PurchaseId}' is already fully reversed");
            case PurchaseState.Expired:
                return Fail(RejectionKind.FailedPrecondition, $"authorization_id: '{purchase.PurchaseId}' expired after the hold period; nothing is pending");
        }
        if (command.AmountMinor > purchase.RemainingAuthorizedMinor)
        {
            return Fail(RejectionKind.FailedPrecondition,
                $"amount_minor: {command.AmountMinor} exceeds the remaining authorized {purchase.RemainingAuthorizedMinor}");
        }
        return RecordPosting(ReversalEntry(purchase, command.TransactionId, EntryKind.Reverse, command.CardId, command.AmountMinor,
            command.OccurredAt ?? now, now, fingerprint));
    }

    public Result<PostingOutcome> Refund(RefundCommand command, ProgramHistory programs, DateTimeOffset now, IReadOnlyList<LedgerEntry>? coldRows = null,
        LedgerEntry? ledgerRow = null)
    {
        var fingerprint = FingerprintOf(command);
        if (CheckProcessed(command.TransactionId, fingerprint, coldRows, ledgerRow) is { } seen) return seen;
        if (!State.Enrolled) return NotEnrolled();
        Touch(programs.At(now), now);

        if ((State.Redemptions?.GetValueOrDefault(command.OriginalTransactionId) ?? ColdRedemption(command.OriginalTransactionId, coldRows)) is { } redemption)
        {
            return RefundRedemption(command, redemption, fingerprint, programs.At(now), now);
        }
        var purchaseId = State.CaptureToPurchase?.TryGetValue(command.OriginalTransactionId, out var viaCapture) == true
            ? viaCapture : command.OriginalTransactionId;
        var purchase = FindPurchase(purchaseId, coldRows, byMessageId: true);
        if (purchase is null)
        {
            return Fail(RejectionKind.NotFound, $"original_transaction_id: '{command.OriginalTransactionId}' is not a known purchase of this card");
        }
        if (purchase.CardId != command.CardId)
        {
            return Fail(RejectionKind.InvalidArgument, $"card_id: purchase '{purchase.PurchaseId}' was made on another card");
        }
        if (purchase.State != PurchaseState.Captured)
        {
            return Fail(RejectionKind.FailedPrecondition, $"original_transaction_id: '{command.OriginalTransactionId}' is not captured; use Reverse");
        }
        var refundableMinor = purchase.CapturedMinor - purchase.RefundedMinor;
        if (command.AmountMinor > refundableMinor)
        {
            return Fail(RejectionKind.FailedPrecondition,
                $"amount_minor: {command.AmountMinor} exceeds the refundable {refundableMinor} (captured {purchase.CapturedMinor}, refunded {purchase.RefundedMinor})");
        }

        var clawback = Clawback.Of(purchase.CapturedLines, purchase.CapturedMinor, purchase.ClawedLines, purchase.RefundedMinor, command.AmountMinor);
        ReturnBudget(clawback.Taken, []);
        return RecordPosting(new LedgerEntry
        {
            MessageId = command.TransactionId, Kind = EntryKind.Refund,
            CardId = command.CardId, PurchaseId = purchase.PurchaseId, AmountMinor = command.AmountMinor, Mcc = purchase.Mcc,
            Category = purchase.Category, MerchantId = purchase.MerchantId, Currency = purchase.Currency, OccurredAt = command.OccurredAt ?? now,
            RecordedAt = now, Fingerprint = fingerprint, AvailableDeltaMinor = -clawback.TakenMinor, Breakdown = clawback.Breakdown,
            PurchaseMonth = purchase.Month, CategoryCapDeltaMinor = -clawback.CategoryCapReturnedMinor, SpendDeltaMinor = -command.AmountMinor,
        });
    }

    /// <summary>What an authorization of this purchase would earn now; changes nothing.</summary>
    public Accrual Quote(ProgramHistory programs, MccCatalogue catalogue, long amountMinor, int mcc, string merchantId, DateTimeOffset at,
        IReadOnlyList<CampaignGrant>? grants = null)
    {
        var program = programs.At(at);
        return Price(program, catalogue, amountMinor, mcc, merchantId, at, program.MonthOf(at), reservedMinor: 0, grants);
    }

    public Result<PostingOutcome> Redeem(RedeemCommand command, ProgramHistory programs, DateTimeOffset now, LedgerEntry? ledgerRow = null)
    {
        var fingerprint = FingerprintOf(command);
        if (CheckProcessed(command.TransactionId, fingerprint, ledgerRow: ledgerRow) is { } seen) return seen;
        if (!State.Enrolled) return NotEnrolled();
        Touch(programs.At(now), now);
        // Rule "redemption": pay with available bonuses only; never an overdraft.
        if (command.AmountMinor > State.AvailableMinor)
        {
            return Fail(RejectionKind.FailedPrecondition, $"amount_minor: {command.AmountMinor} exceeds the available {Math.Max(0, State.AvailableMinor)}");
        }
        return RecordPosting(new LedgerEntry
        {
            MessageId = command.TransactionId, Kind = EntryKind.Redeem,
            PurchaseId = command.TransactionId, AmountMinor = command.AmountMinor, PartnerId = command.PartnerId, OccurredAt = now, RecordedAt = now,
            Fingerprint = fingerprint, AvailableDeltaMinor = -command.AmountMinor,
            Breakdown = [new AccrualLine("redeem", -command.AmountMinor, 0, command.PartnerId)],
        });
    }

    private Result<PostingOutcome> RefundRedemption(RefundCommand command, RedemptionRecord redemption, long fingerprint, ProgramConfig program, DateTimeOffset now)
    {
        var restorableMinor = redemption.AmountMinor - redemption.RestoredMinor;
        if (command.AmountMinor > restorableMinor)
        {
            return Fail(RejectionKind.FailedPrecondition,
                $"amount_minor: {command.AmountMinor} exceeds the restorable {restorableMinor} of redemption '{command.OriginalTransactionId}'");
        }
        // Restored bonuses form a fresh lot: the original lots were consumed and their dates are gone.
        return RecordPosting(new LedgerEntry
        {
            MessageId = command.TransactionId, Kind = EntryKind.RedeemRefund,
            CardId = command.CardId, PurchaseId = command.OriginalTransactionId, AmountMinor = command.AmountMinor, PartnerId = redemption.PartnerId,
            OccurredAt = command.OccurredAt ?? now, RecordedAt = now, Fingerprint = fingerprint, AvailableDeltaMinor = command.AmountMinor,
            Breakdown = [new AccrualLine("redeem", command.AmountMinor, 0, redemption.PartnerId)],
            LotExpiresAt = LotExpiry(program, now),
        });
    }

    private void ApplyParkedReversals(string authorizationId, DateTimeOffset now)
    {
        if (State.ParkedReversals is null || !State.ParkedReversals.TryGetValue(authorizationId, out var parked)) return;
        var purchase = State.Purchases[authorizationId];
        // Several early partial reversals add up; any full one (amount 0) reverses all that remains.
        var amount = 0L;
        foreach (var reversal in parked)
        {
            amount = reversal.AmountMinor == 0 ? purchase.RemainingAuthorizedMinor : Math.Min(purchase.RemainingAuthorizedMinor, amount + reversal.AmountMinor);
        }
        Record(ReversalEntry(purchase, "reverse-applied:" + MemberId + ":" + authorizationId, EntryKind.ReverseApplied, purchase.CardId,
            amount == purchase.RemainingAuthorizedMinor ? 0 : amount, now, now, fingerprint: 0));
    }

    private LedgerEntry ReversalEntry(PurchaseRecord purchase, string messageId, EntryKind kind, string cardId, long amountMinor,
        DateTimeOffset occurredAt, DateTimeOffset now, long fingerprint)
    {
        var reversedMinor = amountMinor == 0 ? purchase.RemainingAuthorizedMinor : amountMinor;
        var remainingAfter = purchase.RemainingAuthorizedMinor - reversedMinor;
        var reversal = PendingReversal.Of(purchase.AuthorizedLines, purchase.AuthorizedMinor, remainingAfter, purchase.CategoryReservedMinor);
        var delta = DifferenceKeepingShape(reversal.PendingLines, purchase.PendingLines);
        var pendingDelta = AccrualCalculator.Sum(delta);
        ReturnBudget(purchase.PendingLines, reversal.PendingLines);
        return new LedgerEntry
        {
            MessageId = messageId, Kind = kind, CardId = cardId,
            PurchaseId = purchase.PurchaseId, AmountMinor = reversedMinor, Mcc = purchase.Mcc, Category = purchase.Category,
            MerchantId = purchase.MerchantId, Currency = purchase.Currency, OccurredAt = occurredAt, RecordedAt = now,
            Fingerprint = fingerprint, PendingDeltaMinor = pendingDelta, Breakdown = delta, PurchaseMonth = purchase.Month,
            CategoryCapDeltaMinor = reversal.CategoryCapDeltaMinor,
        };
    }

    private Accrual Price(ProgramConfig program, MccCatalogue catalogue, long amountMinor, int mcc, string merchantId, DateTimeOffset at,
        MonthKey month, long reservedMinor, IReadOnlyList<CampaignGrant>? grants = null) =>
        AccrualCalculator.Compute(program, catalogue, new PurchaseFacts(amountMinor, mcc, merchantId, at), Facts(program, month, reservedMinor), grants);

    private MemberFacts Facts(ProgramConfig program, MonthKey month, long reservedMinor)
    {
        var monthState = State.Months.GetValueOrDefault(month.Value);
        return PurchasePricing.Facts(TierFor(program, month), State.Premium, monthState?.ChosenCategories ?? [],
            monthState?.CategoryCapUsedMinor ?? 0, reservedMinor);
    }

    /// <summary>Records budget given back: what campaign lines had before minus what they keep after.</summary>
    private void ReturnBudget(IReadOnlyList<AccrualLine> before, IReadOnlyList<AccrualLine> after)
    {
        foreach (var line in before)
        {
            if (!line.Rule.StartsWith(CampaignRule.RulePrefix, StringComparison.Ordinal)) continue;
            var returned = line.AmountMinor - AccrualCalculator.CampaignSum(after, line.Rule);
            if (returned > 0) (_budgetReturns ??= []).Add(new BudgetReturn(line.Rule[CampaignRule.RulePrefix.Length..], returned));
        }
    }

    /// <summary>A message's payload fingerprint: a retry with the same one is a duplicate, with another a conflicting id.</summary>
    public static long FingerprintOf(AuthorizeCommand command) => Fingerprint.Start("authorize").Add(command.CardId).Add(command.AmountMinor)
        .Add(command.Currency).Add(command.Mcc).Add(command.MerchantId).Add(command.OccurredAt.UtcTicks).Value;

    // Only what the processor sent: a field it left out (time, currency) is filled in by the decision, never fingerprinted.
    public static long FingerprintOf(CaptureCommand command) => Fingerprint.Start("capture").Add(command.AuthorizationId).Add(command.CardId)
        .Add(command.AmountMinor).Add(command.OccurredAt?.UtcTicks ?? 0).Add(command.Mcc).Add(command.MerchantId).Add(command.Currency).Value;

    public static long FingerprintOf(ReverseCommand command) =>
        Fingerprint.Start("reverse").Add(command.AuthorizationId).Add(command.CardId).Add(command.AmountMinor).Value;

    public static long FingerprintOf(RefundCommand command) =>
        Fingerprint.Start("refund").Add(command.OriginalTransactionId).Add(command.CardId).Add(command.AmountMinor).Value;

    public static long FingerprintOf(RedeemCommand command) => Fingerprint.Start("redeem").Add(command.PartnerId).Add(command.AmountMinor).Value;

    /// <summary>
    /// The idempotency rule, the one place it is written: a message id seen before (in memory, in the rows read for a
    /// decision, or found taken when the ledger refused an append) answers the same message — same member, same
    /// non-zero payload fingerprint — with its original figures (DUPLICATE), and anything else as a used id
    /// (ALREADY_EXISTS). <paramref name="original"/> null: the id is taken by a row that could not be read.
    /// </summary>
    public static Result<PostingOutcome> AnswerSeenId(string memberId, string transactionId, long fingerprint, LedgerEntry? original) =>
        original is not null && original.MemberId == memberId && IsSameMessage(original.Fingerprint, fingerprint)
            ? PostingOutcome.From(original, duplicate: true)
            : AlreadyUsed(transactionId);

    private static bool IsSameMessage(long recordedFingerprint, long fingerprint) => recordedFingerprint == fingerprint && fingerprint != 0;

    /// <summary>
    /// The answer to a message whose id this member already saw: from the record in memory, else from the rows the caller
    /// read (the purchase's, or the ledger's row under this very id). Null: the id is new, decide.
    /// </summary>
    private Result<PostingOutcome>? CheckProcessed(string transactionId, long fingerprint, IReadOnlyList<LedgerEntry>? coldRows = null,
        LedgerEntry? ledgerRow = null)
    {
        if (State.Processed.TryGetValue(transactionId, out var processed))
        {
            return IsSameMessage(processed.Fingerprint, fingerprint) ? processed.ToOutcome(transactionId, MemberId) : AlreadyUsed(transactionId);
        }
        // A retry older than memory: the rows the caller read may hold the message itself. It is the same message
        // (DUPLICATE with the original figures) or another one under a used id, never a new decision.
        if (ledgerRow is not null) return AnswerSeenId(MemberId, transactionId, fingerprint, ledgerRow);
        if (coldRows is null) return null;
        foreach (var row in coldRows)
        {
            if (row.MessageId == transactionId && row.MemberId == MemberId) return AnswerSeenId(MemberId, transactionId, fingerprint, row);
        }
        return null;
    }

    /// <summary>The refusal of a message id already used for another message.</summary>
    public static Rejection AlreadyUsed(string transactionId) =>
        Fail(RejectionKind.AlreadyExists, $"transaction_id: '{transactionId}' was already used for a different message");

    /// <summary>
    /// Records an accepted posting (applied to memory at once, left in <see cref="Uncommitted"/> for the host to write),
    /// unless it would take a balance past the engine's maximum (rule "balance bounds").
    /// </summary>
    private Result<PostingOutcome> RecordPosting(LedgerEntry entry)
    {
        entry = Next(entry);
        if (Math.Abs(entry.AvailableAfterMinor) > Limits.BalanceMinorMax || Math.Abs(entry.PendingAfterMinor) > Limits.BalanceMinorMax)
        {
            return Fail(RejectionKind.FailedPrecondition,
                $"amount_minor: the member's balance would pass the maximum of {Limits.BalanceMinorMax} minor units; nothing was recorded");
        }
        Apply(entry);
        (_uncommitted ??= new List<LedgerEntry>(2)).Add(entry);
        return PostingOutcome.From(entry, duplicate: false);
    }

    /// <summary>
    /// The one factory of the next ledger entry: a decision gives what changes (kind, ids, deltas, lines); the member's
    /// next sequence, its id and the balances after the deltas are stamped here, so no decision can get them wrong.
    /// </summary>
    private LedgerEntry Next(LedgerEntry entry) => entry with
    {
        Sequence = State.Sequence + 1, MemberId = MemberId,
        PendingAfterMinor = State.PendingMinor + entry.PendingDeltaMinor, AvailableAfterMinor = State.AvailableMinor + entry.AvailableDeltaMinor,
    };

    private void Record(LedgerEntry entry)
    {
        entry = Next(entry);
        Apply(entry);
        (_uncommitted ??= new List<LedgerEntry>(2)).Add(entry);
    }

    private Rejection NotEnrolled() => Fail(RejectionKind.NotFound, $"member_id: member '{MemberId}' is not enrolled");

    private static Rejection Fail(RejectionKind kind, string message) => new(kind, message);

    private static AccrualLine[] Negate(AccrualLine[] lines)
    {
        var negated = new AccrualLine[lines.Length];
        for (var i = 0; i < lines.Length; i++) negated[i] = lines[i] with { AmountMinor = -lines[i].AmountMinor };
        return negated;
    }

    /// <summary>a − b keeping every line (zeros included), so per-line running totals stay aligned.</summary>
    private static AccrualLine[] DifferenceKeepingShape(AccrualLine[] a, AccrualLine[] b)
    {
        var result = new AccrualLine[a.Length];
        for (var i = 0; i < a.Length; i++) result[i] = a[i] with { AmountMinor = a[i].AmountMinor - b[i].AmountMinor };
        return result;
    }

    /// <summary>Adds delta lines to running lines by rule.</summary>
    private static AccrualLine[] AddLines(AccrualLine[] running, AccrualLine[] delta)
    {
        var result = (AccrualLine[])running.Clone();
        foreach (var line in delta)
        {
            var index = Array.FindIndex(result, l => l.Rule == line.Rule);
            if (index < 0) throw new InvalidOperationException($"delta line '{line.Rule}' has no running line");
            result[index] = result[index] with { AmountMinor = result[index].AmountMinor + line.AmountMinor };
        }
        return result;
    }
}
