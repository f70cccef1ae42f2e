namespace LoyaltyGrains.Domain;

/// <summary>
/// A member's accrual lifecycle (DESIGN.md section 3) as an event-sourced state machine. Each command is decided
/// against the current state into ledger entries; Apply is the only way state changes, so replaying the ledger
/// rebuilds exactly the same member. Pure: time and program come in as arguments.
/// </summary>
public sealed class MemberAccount
{
    private readonly List<LedgerEntry> _uncommitted = [];
    private readonly List<BudgetReturn> _budgetReturns = [];

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

    // Open authorizations by (occurred_at, id): expiry looks at the oldest only, never at the whole history. Derived
    // from State, built on first use, so it is never serialized.
    private SortedSet<(long Ticks, string PurchaseId)>? _open;

    private static readonly Comparer<(long Ticks, string PurchaseId)> OpenOrder = Comparer<(long Ticks, string PurchaseId)>.Create(
        static (a, b) => a.Ticks != b.Ticks ? a.Ticks.CompareTo(b.Ticks) : string.CompareOrdinal(a.PurchaseId, b.PurchaseId));

    private SortedSet<(long Ticks, string PurchaseId)> Open
    {
        get
        {
            if (_open is not null) return _open;
            _open = new SortedSet<(long, string)>(OpenOrder);
            foreach (var purchase in State.Purchases.Values)
            {
                if (purchase.State == PurchaseState.Pending) _open.Add(OpenKey(purchase));
            }
            return _open;
        }
    }

    private static (long, string) OpenKey(PurchaseRecord purchase) => (purchase.OccurredAt.UtcTicks, purchase.PurchaseId);

    /// <summary>Entries decided and applied by the last command, which the caller must commit before replying.</summary>
    public IReadOnlyList<LedgerEntry> Uncommitted => _uncommitted;

    /// <summary>Campaign budget the last command gave back (reversals, refunds, expiry); returned to leases after commit.</summary>
    public IReadOnlyList<BudgetReturn> BudgetReturns => _budgetReturns;

    public void ClearUncommitted()
    {
        _uncommitted.Clear();
        _budgetReturns.Clear();
    }

    /// <summary>Rule "tier": the month's frozen tier, or the one its first event would freeze (previous month's spend, premium).</summary>
    public TierRule TierFor(ProgramConfig program, MonthKey month)
    {
        if (State.Months.TryGetValue(month.Value, out var monthState) && monthState.TierId.Length > 0 && program.FindTier(monthState.TierId) is { } frozen)
        {
            return frozen;
        }
        var previousSpend = State.Months.TryGetValue(month.Previous().Value, out var previous) ? previous.CapturedSpendMinor : 0;
        return program.TierForSpend(previousSpend, State.Premium);
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

    public MonthState Month(int month) =>
        State.Months.TryGetValue(month, out var state) ? state : State.Months[month] = new MonthState();

    // ------------------------------------------------------------------ commands

    public Result<MemberState> Enroll(EnrollCommand command, ProgramConfig program, DateTimeOffset now)
    {
        if (State.Enrolled)
        {
            var same = State.Premium == command.Premium && State.ReferredBy == command.ReferredBy
                && (command.TierId.Length == 0 || command.TierId == State.TierId);
            return same ? State : Fail(RejectionKind.AlreadyExists, $"member_id '{MemberId}' is already enrolled with other settings");
        }
        if (command.TierId.Length > 0 && program.FindTier(command.TierId) is null)
        {
            return Fail(RejectionKind.InvalidArgument, $"tier: '{command.TierId}' is not a tier of program version {program.Version}");
        }
        if (command.ReferredBy == MemberId) return Fail(RejectionKind.InvalidArgument, "referred_by: a member cannot refer itself");
        var tier = command.TierId.Length > 0 ? command.TierId : program.EntryTier.TierId;
        Record(new LedgerEntry
        {
            Sequence = State.Sequence + 1, MessageId = "enroll:" + MemberId, Kind = EntryKind.Enroll, MemberId = MemberId,
            OccurredAt = now, RecordedAt = now, PendingAfterMinor = State.PendingMinor, AvailableAfterMinor = State.AvailableMinor,
            Detail = EnrollDetail(tier, command.Premium, command.ReferredBy), PurchaseMonth = command.TierId.Length > 0 ? program.MonthOf(now).Value : 0,
        });
        return State;
    }

    public Result<PostingOutcome> Authorize(AuthorizeCommand command, ProgramHistory programs, MccCatalogue catalogue, DateTimeOffset now,
        IReadOnlyList<CampaignGrant>? grants = null, IReadOnlyList<LedgerEntry>? coldRows = null)
    {
        var fingerprint = Fingerprint.Start("authorize").Add(command.CardId).Add(command.AmountMinor).Add(command.Currency)
            .Add(command.Mcc).Add(command.MerchantId).Add(command.OccurredAt.UtcTicks).Value;
        if (CheckProcessed(command.TransactionId, fingerprint) is { } seen) return seen;
        if (!State.Enrolled) return NotEnrolled();
        // After the duplicate check: a retry of an authorization made before a block still gets its original reply.
        switch (command.Card)
        {
            case CardStanding.Blocked: return Fail(RejectionKind.FailedPrecondition, $"card_id: card '{command.CardId}' is blocked");
            case CardStanding.OtherMember: return Fail(RejectionKind.NotFound, $"card_id: card '{command.CardId}' is not issued to member '{MemberId}'");
        }
        Touch(programs.At(now), now);

        var program = programs.At(command.OccurredAt);
        if (!program.AcceptsCurrency(command.Currency))
        {
            return Fail(RejectionKind.InvalidArgument, $"currency: '{command.Currency}' is not accepted by the program");
        }
        if (FindPurchase(command.TransactionId, coldRows, byMessageId: false) is { } existing)
        {
            // The purchase was force-posted before its authorization arrived: record it, earn nothing twice.
            return Commit(new LedgerEntry
            {
                Sequence = State.Sequence + 1, MessageId = command.TransactionId, Kind = EntryKind.AuthorizeLate, MemberId = MemberId,
                CardId = command.CardId, PurchaseId = existing.PurchaseId, AmountMinor = command.AmountMinor, Mcc = command.Mcc,
                Category = existing.Category, MerchantId = command.MerchantId, Currency = command.Currency,
                OccurredAt = command.OccurredAt, RecordedAt = now, Fingerprint = fingerprint,
                PendingAfterMinor = State.PendingMinor, AvailableAfterMinor = State.AvailableMinor,
            });
        }

        var month = program.MonthOf(command.OccurredAt);
        FreezeTier(program, month, now);
        var accrual = Price(program, catalogue, command.AmountMinor, command.Mcc, command.MerchantId, command.OccurredAt, month, reservedMinor: 0, grants);
        var outcome = Commit(new LedgerEntry
        {
            Sequence = State.Sequence + 1, MessageId = command.TransactionId, Kind = EntryKind.Authorize, MemberId = MemberId,
            CardId = command.CardId, PurchaseId = command.TransactionId, AmountMinor = command.AmountMinor, Mcc = command.Mcc,
            Category = accrual.Category, MerchantId = command.MerchantId, Currency = command.Currency, OccurredAt = command.OccurredAt,
            RecordedAt = now, Fingerprint = fingerprint, PendingDeltaMinor = accrual.TotalMinor, Breakdown = accrual.Lines,
            PurchaseMonth = month.Value, CategoryCapDeltaMinor = accrual.CategoryCapConsumedMinor,
            PendingAfterMinor = State.PendingMinor + accrual.TotalMinor, AvailableAfterMinor = State.AvailableMinor,
        });
        if (outcome.IsOk) ApplyParkedReversals(command.TransactionId, now);
        return outcome;
    }

    public Result<PostingOutcome> Capture(CaptureCommand command, ProgramHistory programs, MccCatalogue catalogue, DateTimeOffset now,
        IReadOnlyList<CampaignGrant>? forcePostGrants = null, IReadOnlyList<LedgerEntry>? coldRows = null)
    {
        // Only what the processor sent: a field it left out (time, currency) is filled here, never fingerprinted.
        var fingerprint = Fingerprint.Start("capture").Add(command.AuthorizationId).Add(command.CardId).Add(command.AmountMinor)
            .Add(command.OccurredAt?.UtcTicks ?? 0).Add(command.Mcc).Add(command.MerchantId).Add(command.Currency).Value;
        if (CheckProcessed(command.TransactionId, fingerprint) is { } seen) return seen;
        if (!State.Enrolled) return NotEnrolled();
        Touch(programs.At(now), now);

        var purchase = command.AuthorizationId.Length == 0 ? null : FindPurchase(command.AuthorizationId, coldRows, byMessageId: false);
        if (purchase is null)
        {
            if (command.Mcc < 0)
            {
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
            purchase.CategoryReservedMinor, CapturedCampaignGrants(purchase, command.AmountMinor));
        var pendingDelta = -AccrualCalculator.Sum(purchase.PendingLines);
        ReturnBudget(purchase.PendingLines, accrual.Lines);
        var outcome = Commit(new LedgerEntry
        {
            Sequence = State.Sequence + 1, MessageId = command.TransactionId, Kind = EntryKind.Capture, MemberId = MemberId,
            CardId = command.CardId, PurchaseId = purchase.PurchaseId, AmountMinor = command.AmountMinor, Mcc = purchase.Mcc,
            Category = purchase.Category, MerchantId = purchase.MerchantId, Currency = purchase.Currency, OccurredAt = command.OccurredAt ?? now,
            RecordedAt = now, Fingerprint = fingerprint, PendingDeltaMinor = pendingDelta, AvailableDeltaMinor = accrual.TotalMinor,
            Breakdown = accrual.Lines, PurchaseMonth = month.Value,
            CategoryCapDeltaMinor = accrual.CategoryCapConsumedMinor - purchase.CategoryReservedMinor, SpendDeltaMinor = command.AmountMinor,
            PendingAfterMinor = State.PendingMinor + pendingDelta, AvailableAfterMinor = State.AvailableMinor + accrual.TotalMinor,
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
        var outcome = Commit(new LedgerEntry
        {
            Sequence = State.Sequence + 1, MessageId = command.TransactionId, Kind = EntryKind.ForcePost, MemberId = MemberId,
            CardId = command.CardId, PurchaseId = purchaseId, AmountMinor = command.AmountMinor, Mcc = command.Mcc,
            Category = accrual.Category, MerchantId = command.MerchantId, Currency = currency, OccurredAt = occurredAt,
            RecordedAt = now, Fingerprint = fingerprint, AvailableDeltaMinor = accrual.TotalMinor, Breakdown = accrual.Lines,
            PurchaseMonth = month.Value, CategoryCapDeltaMinor = accrual.CategoryCapConsumedMinor, SpendDeltaMinor = command.AmountMinor,
            PendingAfterMinor = State.PendingMinor, AvailableAfterMinor = State.AvailableMinor + accrual.TotalMinor,
            LotExpiresAt = LotExpiry(programs.At(now), now),
        });
        if (outcome.IsOk && !accrual.Excluded) EarnReferral(programs.At(now), now);
        return outcome;
    }

    public Result<PostingOutcome> Reverse(ReverseCommand command, ProgramHistory programs, DateTimeOffset now, IReadOnlyList<LedgerEntry>? coldRows = null)
    {
        var fingerprint = Fingerprint.Start("reverse").Add(command.AuthorizationId).Add(command.CardId).Add(command.AmountMinor).Value;
        if (CheckProcessed(command.TransactionId, fingerprint) is { } seen) return seen;
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
            return Commit(new LedgerEntry
            {
                Sequence = State.Sequence + 1, MessageId = command.TransactionId, Kind = EntryKind.ReverseParked, MemberId = MemberId,
                CardId = command.CardId, PurchaseId = command.AuthorizationId, AmountMinor = command.AmountMinor,
                OccurredAt = command.OccurredAt ?? now, RecordedAt = now, Fingerprint = fingerprint,
                PendingAfterMinor = State.PendingMinor, AvailableAfterMinor = State.AvailableMinor,
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
        return Commit(ReversalEntry(purchase, command.TransactionId, EntryKind.Reverse, command.CardId, command.AmountMinor,
            command.OccurredAt ?? now, now, fingerprint));
    }

    public Result<PostingOutcome> Refund(RefundCommand command, ProgramHistory programs, DateTimeOffset now, IReadOnlyList<LedgerEntry>? coldRows = null)
    {
        var fingerprint = Fingerprint.Start("refund").Add(command.OriginalTransactionId).Add(command.CardId).Add(command.AmountMinor).Value;
        if (CheckProcessed(command.TransactionId, fingerprint) is { } seen) return seen;
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

        // Proportional clawback, cumulative so that refunds adding up to the capture claw back exactly its accrual.
        var refundedAfter = purchase.RefundedMinor + command.AmountMinor;
        var clawedAfter = AccrualCalculator.Scale(purchase.CapturedLines, refundedAfter, purchase.CapturedMinor);
        var clawDelta = AccrualCalculator.Difference(clawedAfter, purchase.ClawedLines);
        var clawMinor = AccrualCalculator.Sum(clawDelta);
        var capReturned = AccrualCalculator.CategorySum(clawDelta);
        var breakdown = Negate(clawDelta);
        ReturnBudget(clawDelta, []);
        return Commit(new LedgerEntry
        {
            Sequence = State.Sequence + 1, MessageId = command.TransactionId, Kind = EntryKind.Refund, MemberId = MemberId,
            CardId = command.CardId, PurchaseId = purchase.PurchaseId, AmountMinor = command.AmountMinor, Mcc = purchase.Mcc,
            Category = purchase.Category, MerchantId = purchase.MerchantId, Currency = purchase.Currency, OccurredAt = command.OccurredAt ?? now,
            RecordedAt = now, Fingerprint = fingerprint, AvailableDeltaMinor = -clawMinor, Breakdown = breakdown,
            PurchaseMonth = purchase.Month, CategoryCapDeltaMinor = -capReturned, SpendDeltaMinor = -command.AmountMinor,
            PendingAfterMinor = State.PendingMinor, AvailableAfterMinor = State.AvailableMinor - clawMinor,
        });
    }

    public Result<MemberState> ChooseCategories(ChooseCategoriesCommand command, ProgramHistory programs, DateTimeOffset now)
    {
        if (!State.Enrolled) return NotEnrolled();
        var program = programs.At(now);
        var currentMonth = program.MonthOf(now);
        if (command.Month < currentMonth || command.Month > currentMonth.Next())
        {
            return Fail(RejectionKind.FailedPrecondition, $"month: categories can be chosen for {currentMonth} or {currentMonth.Next()} only, not {command.Month}");
        }
        // Rule "choice deadline": next month's categories are picked by the program's day of this month.
        if (command.Month == currentMonth.Next() && now.ToOffset(TimeSpan.FromMinutes(program.UtcOffsetMinutes)).Day > program.ChooseNextMonthByDay)
        {
            return Fail(RejectionKind.FailedPrecondition, $"month: categories for {command.Month} had to be chosen by the {program.ChooseNextMonthByDay}th of {currentMonth}");
        }
        Touch(program, now);
        var tier = TierFor(program, command.Month);
        var allowed = tier.CategoriesToChooseFor(State.Premium);
        if (command.Categories.Count > allowed)
        {
            return Fail(RejectionKind.InvalidArgument, $"categories: tier '{tier.TierId}' allows {allowed} categories, {command.Categories.Count} given");
        }
        var distinct = new HashSet<string>(StringComparer.Ordinal);
        foreach (var category in command.Categories)
        {
            if (!program.OfferedCategories.Contains(category))
            {
                return Fail(RejectionKind.InvalidArgument, $"categories: '{category}' is not offered this month");
            }
            if (!distinct.Add(category)) return Fail(RejectionKind.InvalidArgument, $"categories: '{category}' is given twice");
        }
        // Read, not created: only Apply adds months, so a replay holds the same ones (month pruning depends on them).
        var monthState = State.Months.GetValueOrDefault(command.Month.Value);
        var sorted = distinct.Order(StringComparer.Ordinal).ToArray();
        if ((monthState?.ChosenCategories ?? []).SequenceEqual(sorted)) return State;
        // Rule "category lock": once a purchase of the month earned category cashback, the choice is final.
        if (monthState?.CategoryCapUsedMinor > 0)
        {
            return Fail(RejectionKind.FailedPrecondition, $"month: categories for {command.Month} are locked: a purchase already earned category cashback");
        }
        Record(new LedgerEntry
        {
            Sequence = State.Sequence + 1, MessageId = $"choose:{MemberId}:{command.Month}:{State.Sequence + 1}",
            Kind = EntryKind.ChooseCategories, MemberId = MemberId, OccurredAt = now, RecordedAt = now, PurchaseMonth = command.Month.Value,
            Detail = string.Join(',', sorted), PendingAfterMinor = State.PendingMinor, AvailableAfterMinor = State.AvailableMinor,
        });
        return State;
    }

    /// <summary>Releases every pending authorization older than the hold period (rule "pending expiry", on next touch).</summary>
    public void ExpirePending(ProgramConfig program, DateTimeOffset now)
    {
        var cutoff = now.AddDays(-program.AuthorizationHoldDays).UtcTicks;
        List<PurchaseRecord>? expired = null;
        // Oldest first, and only the open ones: stops at the first authorization still within the hold.
        foreach (var (ticks, purchaseId) in Open)
        {
            if (ticks >= cutoff) break;
            (expired ??= []).Add(State.Purchases[purchaseId]);
        }
        if (expired is null) return;
        foreach (var purchase in expired)
        {
            var pendingDelta = -AccrualCalculator.Sum(purchase.PendingLines);
            ReturnBudget(purchase.PendingLines, []);
            Record(new LedgerEntry
            {
                Sequence = State.Sequence + 1, MessageId = "expire:" + MemberId + ":" + purchase.PurchaseId, Kind = EntryKind.ExpirePending,
                MemberId = MemberId, CardId = purchase.CardId, PurchaseId = purchase.PurchaseId, AmountMinor = purchase.RemainingAuthorizedMinor,
                Mcc = purchase.Mcc, Category = purchase.Category, MerchantId = purchase.MerchantId, Currency = purchase.Currency,
                OccurredAt = now, RecordedAt = now, PendingDeltaMinor = pendingDelta, Breakdown = Negate(purchase.PendingLines),
                PurchaseMonth = purchase.Month, CategoryCapDeltaMinor = -purchase.CategoryReservedMinor,
                PendingAfterMinor = State.PendingMinor + pendingDelta, AvailableAfterMinor = State.AvailableMinor,
            });
        }
    }

    /// <summary>What an authorization of this purchase would earn now; changes nothing.</summary>
    public Accrual Quote(ProgramHistory programs, MccCatalogue catalogue, long amountMinor, int mcc, string merchantId, DateTimeOffset at,
        IReadOnlyList<CampaignGrant>? grants = null)
    {
        var program = programs.At(at);
        return Price(program, catalogue, amountMinor, mcc, merchantId, at, program.MonthOf(at), reservedMinor: 0, grants);
    }

    public Result<PostingOutcome> Redeem(RedeemCommand command, ProgramHistory programs, DateTimeOffset now)
    {
        var fingerprint = Fingerprint.Start("redeem").Add(command.PartnerId).Add(command.AmountMinor).Value;
        if (CheckProcessed(command.TransactionId, fingerprint) is { } seen) return seen;
        if (!State.Enrolled) return NotEnrolled();
        Touch(programs.At(now), now);
        // Rule "redemption": pay with available bonuses only; never an overdraft.
        if (command.AmountMinor > State.AvailableMinor)
        {
            return Fail(RejectionKind.FailedPrecondition, $"amount_minor: {command.AmountMinor} exceeds the available {Math.Max(0, State.AvailableMinor)}");
        }
        return Commit(new LedgerEntry
        {
            Sequence = State.Sequence + 1, MessageId = command.TransactionId, Kind = EntryKind.Redeem, MemberId = MemberId,
            PurchaseId = command.TransactionId, AmountMinor = command.AmountMinor, PartnerId = command.PartnerId, OccurredAt = now, RecordedAt = now,
            Fingerprint = fingerprint, AvailableDeltaMinor = -command.AmountMinor,
            Breakdown = [new AccrualLine("redeem", -command.AmountMinor, 0, command.PartnerId)],
            PendingAfterMinor = State.PendingMinor, AvailableAfterMinor = State.AvailableMinor - command.AmountMinor,
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
        return Commit(new LedgerEntry
        {
            Sequence = State.Sequence + 1, MessageId = command.TransactionId, Kind = EntryKind.RedeemRefund, MemberId = MemberId,
            CardId = command.CardId, PurchaseId = command.OriginalTransactionId, AmountMinor = command.AmountMinor, PartnerId = redemption.PartnerId,
            OccurredAt = command.OccurredAt ?? now, RecordedAt = now, Fingerprint = fingerprint, AvailableDeltaMinor = command.AmountMinor,
            Breakdown = [new AccrualLine("redeem", command.AmountMinor, 0, redemption.PartnerId)],
            PendingAfterMinor = State.PendingMinor, AvailableAfterMinor = State.AvailableMinor + command.AmountMinor, LotExpiresAt = LotExpiry(program, now),
        });
    }

    /// <summary>Opts in to a campaign that requires activation (partner clubs). Idempotent.</summary>
    public Result<MemberState> ActivateCampaign(CampaignRule campaign, DateTimeOffset now)
    {
        if (!State.Enrolled) return NotEnrolled();
        if (now >= campaign.EndsAt) return Fail(RejectionKind.FailedPrecondition, $"campaign_id: campaign '{campaign.CampaignId}' has ended");
        if (!campaign.RequiresActivation || State.ActivatedCampaigns?.Contains(campaign.CampaignId) == true) return State;
        Record(new LedgerEntry
        {
            Sequence = State.Sequence + 1, MessageId = $"activate:{MemberId}:{campaign.CampaignId}", Kind = EntryKind.ActivateCampaign,
            MemberId = MemberId, OccurredAt = now, RecordedAt = now, Detail = campaign.CampaignId, PartnerId = campaign.PartnerId,
            PendingAfterMinor = State.PendingMinor, AvailableAfterMinor = State.AvailableMinor,
        });
        return State;
    }

    /// <summary>Credits this member, as referrer, for a referred member's first captured purchase. Idempotent.</summary>
    public Result<MemberState> CreditReferral(string referredMemberId, ProgramConfig program, DateTimeOffset now)
    {
        if (!State.Enrolled) return NotEnrolled();
        if (State.ReferralsCredited?.Contains(referredMemberId) == true || program.ReferralBonusMinor == 0) return State;
        Touch(program, now);
        Record(ReferralEntry($"referral:{MemberId}:{referredMemberId}", referredMemberId, program, now));
        return State;
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
                Sequence = State.Sequence + 1, MessageId = "expire-parked:" + MemberId + ":" + reversal.TransactionId, Kind = EntryKind.ParkedReversalExpired,
                MemberId = MemberId, CardId = reversal.CardId, PurchaseId = authorizationId, AmountMinor = reversal.AmountMinor,
                OccurredAt = now, RecordedAt = now, Detail = reversal.TransactionId,
                PendingAfterMinor = State.PendingMinor, AvailableAfterMinor = State.AvailableMinor,
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
        foreach (var lot in State.Lots)
        {
            if (lot.ExpiresAt > now) break;
            expiredMinor += lot.AmountMinor;
        }
        if (expiredMinor == 0) return;
        Record(new LedgerEntry
        {
            Sequence = State.Sequence + 1, MessageId = $"expire-lots:{MemberId}:{State.Sequence + 1}", Kind = EntryKind.ExpireLots,
            MemberId = MemberId, OccurredAt = now, RecordedAt = now, AmountMinor = expiredMinor, AvailableDeltaMinor = -expiredMinor,
            Breakdown = [new AccrualLine("expiry", -expiredMinor)],
            PendingAfterMinor = State.PendingMinor, AvailableAfterMinor = State.AvailableMinor - expiredMinor,
        });
    }

    /// <summary>The lot expiring next and when: what a balance shows as "expiring soon".</summary>
    public (long AmountMinor, DateTimeOffset? At) NextExpiry() =>
        State.Lots.Count == 0 ? (0, null) : (State.Lots[0].AmountMinor, State.Lots[0].ExpiresAt);

    /// <summary>Bonuses made available now expire at the start of the day after the same date M months on (program calendar).</summary>
    public static DateTimeOffset LotExpiry(ProgramConfig program, DateTimeOffset now)
    {
        var offset = TimeSpan.FromMinutes(program.UtcOffsetMinutes);
        var localDate = now.ToOffset(offset).Date;
        return new DateTimeOffset(localDate.AddMonths(program.ExpiryMonths).AddDays(1), offset).ToUniversalTime();
    }

    private void FreezeTier(ProgramConfig program, MonthKey month, DateTimeOffset now)
    {
        if (State.Months.TryGetValue(month.Value, out var monthState) && monthState.TierId.Length > 0) return;
        Record(new LedgerEntry
        {
            Sequence = State.Sequence + 1, MessageId = $"tier:{MemberId}:{month}", Kind = EntryKind.TierAssigned, MemberId = MemberId,
            OccurredAt = now, RecordedAt = now, PurchaseMonth = month.Value, Detail = TierFor(program, month).TierId,
            PendingAfterMinor = State.PendingMinor, AvailableAfterMinor = State.AvailableMinor,
        });
    }

    /// <summary>Rule "referral": a referred member's first captured purchase earns it the referral bonus, once.</summary>
    private void EarnReferral(ProgramConfig program, DateTimeOffset now)
    {
        if (State.ReferredBy.Length == 0 || State.ReferralEarned || program.ReferralBonusMinor == 0) return;
        Record(ReferralEntry($"referral:{MemberId}", MemberId, program, now));
    }

    private LedgerEntry ReferralEntry(string messageId, string referredMemberId, ProgramConfig program, DateTimeOffset now) => new()
    {
        Sequence = State.Sequence + 1, MessageId = messageId, Kind = EntryKind.ReferralBonus, MemberId = MemberId, OccurredAt = now,
        RecordedAt = now, Detail = referredMemberId, AmountMinor = program.ReferralBonusMinor, AvailableDeltaMinor = program.ReferralBonusMinor,
        Breakdown = [new AccrualLine("referral", program.ReferralBonusMinor)], LotExpiresAt = LotExpiry(program, now),
        PendingAfterMinor = State.PendingMinor, AvailableAfterMinor = State.AvailableMinor + program.ReferralBonusMinor,
    };

    // ------------------------------------------------------------------ projection

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
            case EntryKind.ActivateCampaign: (State.ActivatedCampaigns ??= new(StringComparer.Ordinal)).Add(entry.Detail); break;
            case EntryKind.ExpireLots: break;
            case EntryKind.ReferralBonus:
                if (entry.Detail == MemberId) State.ReferralEarned = true;
                else (State.ReferralsCredited ??= new(StringComparer.Ordinal)).Add(entry.Detail);
                break;
            case EntryKind.Redeem: (State.Redemptions ??= new(StringComparer.Ordinal))[entry.MessageId] = RedemptionFrom(entry); break;
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
            PruneProcessed(entry.RecordedAt);
            PruneSettled(entry.RecordedAt);
        }
        if (IsProcessorMessage(entry.Kind))
        {
            State.Processed[entry.MessageId] = new ProcessedMessage
            {
                Fingerprint = entry.Fingerprint, Sequence = entry.Sequence, RecordedAt = entry.RecordedAt, MemberId = entry.MemberId,
                CardId = entry.CardId, AccruedMinor = entry.AccruedMinor, PendingAfterMinor = entry.PendingAfterMinor,
                AvailableAfterMinor = entry.AvailableAfterMinor, Breakdown = entry.Breakdown,
            };
        }
        // Invariant, checked on both sides: the figures written with the entry are the figures the projection reaches.
        if (State.PendingMinor != entry.PendingAfterMinor || State.AvailableMinor != entry.AvailableAfterMinor)
        {
            throw new InvalidOperationException(
                $"member {MemberId}: after entry {entry.MessageId} (seq {entry.Sequence}) pending/available are {State.PendingMinor}/{State.AvailableMinor}, the entry says {entry.PendingAfterMinor}/{entry.AvailableAfterMinor}");
        }
    }

    /// <summary>
    /// Processed messages stay in memory this long; an older retry is recognised by the ledger's unique message id
    /// (the grain then answers DUPLICATE from the ledger row). Keeps a long-lived member's memory bounded.
    /// </summary>
    public static readonly TimeSpan DedupeMemory = TimeSpan.FromDays(45);
    public const int DedupePruneEveryEntries = 64;

    /// <summary>Pruned as part of Apply, keyed to entry times, so a replay prunes exactly as the live member did.</summary>
    private void PruneProcessed(DateTimeOffset recordedAt)
    {
        var cutoff = recordedAt - DedupeMemory;
        List<string>? old = null;
        foreach (var (id, processed) in State.Processed)
        {
            if (processed.RecordedAt < cutoff) (old ??= []).Add(id);
        }
        if (old is null) return;
        foreach (var id in old) State.Processed.Remove(id);
    }

    private void CountCampaignLines(AccrualLine[] lines, int sign)
    {
        foreach (var line in lines)
        {
            if (line.AmountMinor == 0 || !line.Rule.StartsWith(CampaignRule.RulePrefix, StringComparison.Ordinal)) continue;
            var campaignId = line.Rule[CampaignRule.RulePrefix.Length..];
            var accrued = State.CampaignAccrued ??= new(StringComparer.Ordinal);
            accrued[campaignId] = accrued.GetValueOrDefault(campaignId) + sign * line.AmountMinor;
            if (sign > 0 && line.AmountMinor > 0) (State.JoinedCampaigns ??= new(StringComparer.Ordinal)).Add(campaignId);
        }
    }

    /// <summary>Keeps lots summing to max(0, available): gains beyond any debt form a lot, losses consume the oldest lots.</summary>
    private void MoveLots(long availableBefore, long availableAfter, DateTimeOffset lotExpiresAt)
    {
        var before = Math.Max(0, availableBefore);
        var after = Math.Max(0, availableAfter);
        if (after > before)
        {
            var lots = State.Lots;
            if (lots.Count > 0 && lots[^1].ExpiresAt == lotExpiresAt) lots[^1].AmountMinor += after - before;
            else lots.Add(new BonusLot { ExpiresAt = lotExpiresAt, AmountMinor = after - before });
            return;
        }
        var toConsume = before - after;
        while (toConsume > 0)
        {
            var oldest = State.Lots[0];
            var taken = Math.Min(oldest.AmountMinor, toConsume);
            oldest.AmountMinor -= taken;
            toConsume -= taken;
            if (oldest.AmountMinor == 0) State.Lots.RemoveAt(0);
        }
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
        _open?.Add(OpenKey(purchase));
    }

    private void ApplyForcePost(LedgerEntry entry)
    {
        State.Purchases[entry.PurchaseId] = ForcePostedPurchase(entry);
        (State.CaptureToPurchase ??= new(StringComparer.Ordinal))[entry.MessageId] = entry.PurchaseId;
    }

    private void ApplyCapture(LedgerEntry entry)
    {
        if (State.Purchases.TryGetValue(entry.PurchaseId, out var purchase))
        {
            // Campaign accrual moves from the pending lines to the captured ones.
            CountCampaignLines(purchase.PendingLines, sign: -1);
            if (purchase.State == PurchaseState.Pending) _open?.Remove(OpenKey(purchase));
        }
        else
        {
            // The late clearing of an expired authorization that left memory: nothing of it was pending any more, and
            // a capture is refundable, so it comes back as a captured purchase.
            State.Purchases[entry.PurchaseId] = purchase = PurchaseFromRow(entry);
        }
        CountCampaignLines(entry.Breakdown, sign: 1);
        CaptureInto(purchase, entry);
        (State.CaptureToPurchase ??= new(StringComparer.Ordinal))[entry.MessageId] = entry.PurchaseId;
    }

    private void ApplyReversal(LedgerEntry entry)
    {
        var purchase = State.Purchases[entry.PurchaseId];
        ReverseInto(purchase, entry);
        if (purchase.State != PurchaseState.Pending)
        {
            _open?.Remove(OpenKey(purchase));
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
        ClawedLines = AccrualCalculator.Scale(entry.Breakdown, 0, 1), CategoryReservedMinor = entry.CategoryCapDeltaMinor, CapturedAt = entry.RecordedAt,
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
        purchase.ClawedLines = AccrualCalculator.Scale(entry.Breakdown, 0, 1);
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

    // ------------------------------------------------------------------ cold purchases (ledger rows)

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
        var parkedReversals = State.ParkedReversals ??= new(StringComparer.Ordinal);
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
        if (State.Redemptions is { } redemptions)
        {
            foreach (var id in redemptions.Where(r => r.Value.RedeemedAt < cutoff).Select(r => r.Key).ToArray()) RemoveRedemption(id);
        }
        if (State.Months.Count <= MonthsKeptBeforeNewest + 1) return;
        var keepFrom = new MonthKey(State.Months.Keys.Max());
        for (var i = 0; i < MonthsKeptBeforeNewest; i++) keepFrom = keepFrom.Previous();
        var inUse = new HashSet<int>();
        foreach (var purchase in State.Purchases.Values) inUse.Add(purchase.Month);
        foreach (var month in State.Months.Keys.Where(m => m < keepFrom.Value && !inUse.Contains(m)).ToArray()) State.Months.Remove(month);
    }

    // ------------------------------------------------------------------ helpers

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
        var pendingAfterLines = AccrualCalculator.Scale(purchase.AuthorizedLines, remainingAfter, purchase.AuthorizedMinor);
        var delta = DifferenceKeepingShape(pendingAfterLines, purchase.PendingLines);
        var pendingDelta = AccrualCalculator.Sum(delta);
        var capDelta = AccrualCalculator.CategorySum(pendingAfterLines) - purchase.CategoryReservedMinor;
        ReturnBudget(purchase.PendingLines, pendingAfterLines);
        return new LedgerEntry
        {
            Sequence = State.Sequence + 1, MessageId = messageId, Kind = kind, MemberId = MemberId, CardId = cardId,
            PurchaseId = purchase.PurchaseId, AmountMinor = reversedMinor, Mcc = purchase.Mcc, Category = purchase.Category,
            MerchantId = purchase.MerchantId, Currency = purchase.Currency, OccurredAt = occurredAt, RecordedAt = now,
            Fingerprint = fingerprint, PendingDeltaMinor = pendingDelta, Breakdown = delta, PurchaseMonth = purchase.Month,
            CategoryCapDeltaMinor = capDelta, PendingAfterMinor = State.PendingMinor + pendingDelta, AvailableAfterMinor = State.AvailableMinor,
        };
    }

    private Accrual Price(ProgramConfig program, MccCatalogue catalogue, long amountMinor, int mcc, string merchantId, DateTimeOffset at,
        MonthKey month, long reservedMinor, IReadOnlyList<CampaignGrant>? grants = null) =>
        AccrualCalculator.Compute(program, catalogue, new PurchaseFacts(amountMinor, mcc, merchantId, at), Facts(program, month, reservedMinor), grants);

    private MemberFacts Facts(ProgramConfig program, MonthKey month, long reservedMinor)
    {
        var monthState = State.Months.GetValueOrDefault(month.Value);
        return new MemberFacts(TierFor(program, month), State.Premium, monthState?.ChosenCategories ?? [],
            (monthState?.CategoryCapUsedMinor ?? 0) - reservedMinor);
    }

    /// <summary>At capture, campaign bonuses follow the captured share of what is still authorized, never more than was granted.</summary>
    private static CampaignGrant[] CapturedCampaignGrants(PurchaseRecord purchase, long capturedMinor)
    {
        var grants = new List<CampaignGrant>();
        if (purchase.RemainingAuthorizedMinor == 0) return [];
        var share = Math.Min(capturedMinor, purchase.RemainingAuthorizedMinor);
        foreach (var line in purchase.PendingLines)
        {
            if (!line.Rule.StartsWith(CampaignRule.RulePrefix, StringComparison.Ordinal) || line.AmountMinor <= 0) continue;
            var campaign = new CampaignRule { CampaignId = line.Rule[CampaignRule.RulePrefix.Length..], RateBps = line.RateBps, PartnerId = line.PartnerId };
            grants.Add(new CampaignGrant(campaign, Money.Proportion(line.AmountMinor, share, purchase.RemainingAuthorizedMinor)));
        }
        return [.. grants];
    }

    /// <summary>Records budget given back: what campaign lines had before minus what they keep after.</summary>
    private void ReturnBudget(IReadOnlyList<AccrualLine> before, IReadOnlyList<AccrualLine> after)
    {
        foreach (var line in before)
        {
            if (!line.Rule.StartsWith(CampaignRule.RulePrefix, StringComparison.Ordinal)) continue;
            var returned = line.AmountMinor - AccrualCalculator.CampaignSum(after, line.Rule);
            if (returned > 0) _budgetReturns.Add(new BudgetReturn(line.Rule[CampaignRule.RulePrefix.Length..], returned));
        }
    }

    private Result<PostingOutcome>? CheckProcessed(string transactionId, long fingerprint)
    {
        if (!State.Processed.TryGetValue(transactionId, out var processed)) return null;
        if (processed.Fingerprint != fingerprint)
        {
            return Fail(RejectionKind.AlreadyExists, $"transaction_id: '{transactionId}' was already used for a different message");
        }
        return processed.ToOutcome(transactionId);
    }

    /// <summary>Records a posting, unless it would take a balance past the engine's maximum (rule "balance bounds").</summary>
    private Result<PostingOutcome> Commit(LedgerEntry entry)
    {
        if (Math.Abs(entry.AvailableAfterMinor) > Limits.BalanceMinorMax || Math.Abs(entry.PendingAfterMinor) > Limits.BalanceMinorMax)
        {
            return Fail(RejectionKind.FailedPrecondition,
                $"amount_minor: the member's balance would pass the maximum of {Limits.BalanceMinorMax} minor units; nothing was recorded");
        }
        Record(entry);
        return PostingOutcome.From(entry, duplicate: false);
    }

    private void Record(LedgerEntry entry)
    {
        Apply(entry);
        _uncommitted.Add(entry);
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

    private static string EnrollDetail(string tier, bool premium, string referredBy) => $"{tier}|{(premium ? "premium" : "")}|{referredBy}";

    private static (string Tier, bool Premium, string ReferredBy) ParseEnrollDetail(string detail)
    {
        var parts = detail.Split('|');
        return (parts[0], parts.Length > 1 && parts[1] == "premium", parts.Length > 2 ? parts[2] : "");
    }
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
