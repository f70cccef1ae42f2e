using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Analytics.Replay;

/// <summary>The fields of one ledger row the replay reads (docs/DATA.md); Breakdown only when it names a campaign.</summary>
public sealed record ReplayRow
{
    public required string MemberId { get; init; }
    public long Sequence { get; init; }
    public EntryKind Kind { get; init; }
    public string PurchaseId { get; init; } = "";
    public long AmountMinor { get; init; }
    public long AvailableDeltaMinor { get; init; }
    public string Breakdown { get; init; } = "";
    public int Mcc { get; init; }
    public string Category { get; init; } = "";
    public string MerchantId { get; init; } = "";
    public DateTimeOffset OccurredAt { get; init; }
    public DateTimeOffset RecordedAt { get; init; }
    public int PurchaseMonth { get; init; }
    public long SpendDeltaMinor { get; init; }
    public string Detail { get; init; } = "";
}

/// <summary>What one accrual row (capture, force post, refund) earned under the candidate, next to what it earned.</summary>
public readonly record struct ReplayedAccrual(ReplayRow Row, string ActualTier, string CandidateTier, long ActualMinor, long CandidateMinor,
    AccrualLine[] CandidateLines, bool Carried);

/// <summary>
/// One member's purchases replayed through a candidate programme, row by row in sequence order. Every money rule is the
/// domain's own, the very functions MemberAccount calls: the month's tier (<see cref="TierOfMonth"/>), pricing against
/// the month's cap net of the purchase's own reservation (<see cref="PurchasePricing"/>, <see cref="AccrualCalculator"/>),
/// scaling on reversal (<see cref="PendingReversal"/>), the captured campaign share (<see cref="CampaignGrants"/>) and
/// the proportional clawback (<see cref="Clawback"/>). This class only keeps, per member, the state those rules read —
/// on the candidate's figures, and only what pricing needs. What stays as it was: the purchases, the chosen categories,
/// the campaign bonuses granted (budgets and first-N slots were spent then; the candidate's maximum accrual rate still
/// trims them), the programme calendar (purchase months) and which messages were accepted. Memory is this member's open and captured purchases of the
/// stream and its months; the caller starts a new instance per member.
/// </summary>
public sealed class MemberReplay(ProgramConfig candidate, MccCatalogue catalogue, int firstCompleteMonth)
{
    private sealed class Purchase
    {
        public int Mcc;
        public string MerchantId = "";
        public DateTimeOffset OccurredAt;
        public int Month;
        public bool Captured;
        public long AuthorizedMinor;
        public long RemainingAuthorizedMinor;
        public AccrualLine[] AuthorizedLines = [];
        public AccrualLine[] PendingLines = [];
        public long CategoryReservedMinor;
        public long CapturedMinor;
        public AccrualLine[] CapturedLines = [];
        public long RefundedMinor;
        public AccrualLine[] ClawedLines = [];
    }

    private sealed class Month
    {
        public string ActualTierId = "";
        public string CandidateTierId = "";
        public string[] Chosen = [];
        public long CategoryCapUsedMinor;
        public long CapturedSpendMinor;
    }

    private readonly Dictionary<string, Purchase> _purchases = new(StringComparer.Ordinal);
    private readonly Dictionary<int, Month> _months = [];
    private bool _premium;

    /// <summary>Tier months whose candidate tier differs from the tier the member had.</summary>
    public int TierMonthsChanged { get; private set; }

    /// <summary>
    /// Applies one row. Returns the replayed accrual for a capture, force post or refund (Carried when the purchase began
    /// before the replay's first row, so the candidate cannot price it: it counts at its actual figure); null otherwise.
    /// </summary>
    public ReplayedAccrual? Apply(ReplayRow row)
    {
        if (row.PurchaseMonth != 0 && row.SpendDeltaMinor != 0) MonthOf(row.PurchaseMonth).CapturedSpendMinor += row.SpendDeltaMinor;
        switch (row.Kind)
        {
            case EntryKind.Enroll: Enroll(row); return null;
            case EntryKind.TierAssigned: AssignTier(row); return null;
            case EntryKind.ChooseCategories: MonthOf(row.PurchaseMonth).Chosen = row.Detail.Length == 0 ? [] : row.Detail.Split(','); return null;
            case EntryKind.Authorize: Authorize(row); return null;
            case EntryKind.Reverse or EntryKind.ReverseApplied: Reverse(row); return null;
            case EntryKind.ExpirePending: ExpirePending(row); return null;
            case EntryKind.Capture: return Capture(row);
            case EntryKind.ForcePost: return ForcePost(row);
            case EntryKind.Refund: return Refund(row);
            default: return null;
        }
    }

    private void Enroll(ReplayRow row)
    {
        var parts = row.Detail.Split('|');
        _premium = parts.Length > 1 && parts[1] == "premium";
        if (row.PurchaseMonth == 0) return;
        var month = MonthOf(row.PurchaseMonth);
        month.ActualTierId = parts[0];
        month.CandidateTierId = parts[0];
    }

    /// <summary>
    /// Rule "tier" on the candidate: the month's tier from the previous month's captured spend, frozen on the month's
    /// first event as the engine did. A month whose previous month lies before the replay's first row keeps the tier it
    /// had (when the candidate has it): its spend is not in the stream.
    /// </summary>
    private void AssignTier(ReplayRow row)
    {
        var month = MonthOf(row.PurchaseMonth);
        month.ActualTierId = row.Detail;
        if (month.CandidateTierId.Length > 0) return;
        var previous = new MonthKey(row.PurchaseMonth).Previous().Value;
        month.CandidateTierId = previous < firstCompleteMonth && candidate.FindTier(row.Detail) is { } kept
            ? kept.TierId
            : TierFor(row.PurchaseMonth).TierId;
        if (month.CandidateTierId != month.ActualTierId) TierMonthsChanged++;
    }

    private TierRule TierFor(int monthValue) => TierOfMonth.Resolve(candidate,
        _months.GetValueOrDefault(monthValue)?.CandidateTierId ?? "", _months.GetValueOrDefault(new MonthKey(monthValue).Previous().Value)?.CapturedSpendMinor ?? 0,
        _premium);

    private Accrual Price(long amountMinor, int mcc, string merchantId, DateTimeOffset occurredAt, int monthValue, long reservedMinor,
        IReadOnlyList<CampaignGrant> grants)
    {
        var month = _months.GetValueOrDefault(monthValue);
        return PurchasePricing.Price(candidate, catalogue, new PurchaseFacts(amountMinor, mcc, merchantId, occurredAt), TierFor(monthValue), _premium,
            month?.Chosen ?? [], month?.CategoryCapUsedMinor ?? 0, reservedMinor, grants);
    }

    private void Authorize(ReplayRow row)
    {
        var accrual = Price(row.AmountMinor, row.Mcc, row.MerchantId, row.OccurredAt, row.PurchaseMonth, 0, GrantsAsTheyWere(row));
        _purchases[row.PurchaseId] = new Purchase
        {
            Mcc = row.Mcc, MerchantId = row.MerchantId, OccurredAt = row.OccurredAt, Month = row.PurchaseMonth,
            AuthorizedMinor = row.AmountMinor, RemainingAuthorizedMinor = row.AmountMinor, AuthorizedLines = accrual.Lines,
            PendingLines = accrual.Lines, CategoryReservedMinor = accrual.CategoryCapConsumedMinor,
        };
        MonthOf(row.PurchaseMonth).CategoryCapUsedMinor += accrual.CategoryCapConsumedMinor;
    }

    /// <summary>A reversal (or a parked one applied) keeps the authorized lines' share of what remains authorized.</summary>
    private void Reverse(ReplayRow row)
    {
        if (!_purchases.TryGetValue(row.PurchaseId, out var purchase) || purchase.Captured || purchase.AuthorizedMinor <= 0) return;
        var remainingAfter = purchase.RemainingAuthorizedMinor - row.AmountMinor;
        var reversal = PendingReversal.Of(purchase.AuthorizedLines, purchase.AuthorizedMinor, remainingAfter, purchase.CategoryReservedMinor);
        purchase.PendingLines = reversal.PendingLines;
        purchase.CategoryReservedMinor += reversal.CategoryCapDeltaMinor;
        purchase.RemainingAuthorizedMinor = remainingAfter;
        MonthOf(purchase.Month).CategoryCapUsedMinor += reversal.CategoryCapDeltaMinor;
        if (remainingAfter == 0) _purchases.Remove(row.PurchaseId);
    }

    /// <summary>An authorization past the hold releases its pending lines and its reservation of the cap; it may still be captured.</summary>
    private void ExpirePending(ReplayRow row)
    {
        if (!_purchases.TryGetValue(row.PurchaseId, out var purchase) || purchase.Captured) return;
        var release = PendingReversal.AtExpiry(purchase.PendingLines, purchase.CategoryReservedMinor);
        MonthOf(purchase.Month).CategoryCapUsedMinor += release.CategoryCapDeltaMinor;
        purchase.CategoryReservedMinor += release.CategoryCapDeltaMinor;
        purchase.PendingLines = release.PendingLines;
        purchase.RemainingAuthorizedMinor = 0;
    }

    private ReplayedAccrual Capture(ReplayRow row)
    {
        if (!_purchases.TryGetValue(row.PurchaseId, out var purchase) || purchase.Captured) return Carried(row);
        var accrual = Price(row.AmountMinor, purchase.Mcc, purchase.MerchantId, purchase.OccurredAt, purchase.Month, purchase.CategoryReservedMinor,
            CampaignGrants.AtCapture(purchase.PendingLines, purchase.RemainingAuthorizedMinor, row.AmountMinor));
        var capDelta = PurchasePricing.CaptureCategoryCapDelta(accrual, purchase.CategoryReservedMinor);
        MonthOf(purchase.Month).CategoryCapUsedMinor += capDelta;
        purchase.Captured = true;
        purchase.CategoryReservedMinor += capDelta;
        purchase.CapturedMinor = row.AmountMinor;
        purchase.CapturedLines = accrual.Lines;
        purchase.ClawedLines = Clawback.NothingClawed(accrual.Lines);
        purchase.AuthorizedLines = [];
        purchase.PendingLines = [];
        purchase.RemainingAuthorizedMinor = 0;
        return Replayed(row, purchase.Month, accrual.TotalMinor, accrual.Lines);
    }

    private ReplayedAccrual ForcePost(ReplayRow row)
    {
        var accrual = Price(row.AmountMinor, row.Mcc, row.MerchantId, row.OccurredAt, row.PurchaseMonth, 0, GrantsAsTheyWere(row));
        MonthOf(row.PurchaseMonth).CategoryCapUsedMinor += accrual.CategoryCapConsumedMinor;
        _purchases[row.PurchaseId] = new Purchase
        {
            Mcc = row.Mcc, MerchantId = row.MerchantId, OccurredAt = row.OccurredAt, Month = row.PurchaseMonth, Captured = true,
            CapturedMinor = row.AmountMinor, CapturedLines = accrual.Lines, ClawedLines = Clawback.NothingClawed(accrual.Lines),
            CategoryReservedMinor = accrual.CategoryCapConsumedMinor,
        };
        return Replayed(row, row.PurchaseMonth, accrual.TotalMinor, accrual.Lines);
    }

    /// <summary>The engine's proportional clawback (<see cref="Clawback"/>) on the candidate's captured lines.</summary>
    private ReplayedAccrual Refund(ReplayRow row)
    {
        if (!_purchases.TryGetValue(row.PurchaseId, out var purchase) || !purchase.Captured || purchase.CapturedMinor <= 0) return Carried(row);
        var clawback = Clawback.Of(purchase.CapturedLines, purchase.CapturedMinor, purchase.ClawedLines, purchase.RefundedMinor, row.AmountMinor);
        MonthOf(purchase.Month).CategoryCapUsedMinor -= clawback.CategoryCapReturnedMinor;
        purchase.RefundedMinor += row.AmountMinor;
        purchase.ClawedLines = clawback.ClawedAfter;
        var result = Replayed(row, purchase.Month, -clawback.TakenMinor, clawback.Breakdown);
        if (purchase.RefundedMinor == purchase.CapturedMinor) _purchases.Remove(row.PurchaseId);
        return result;
    }

    private ReplayedAccrual Replayed(ReplayRow row, int monthValue, long candidateMinor, AccrualLine[] lines)
    {
        var month = _months.GetValueOrDefault(monthValue);
        return new ReplayedAccrual(row, month?.ActualTierId ?? "", TierFor(monthValue).TierId, row.AvailableDeltaMinor, candidateMinor, lines, Carried: false);
    }

    private ReplayedAccrual Carried(ReplayRow row)
    {
        var tier = _months.GetValueOrDefault(row.PurchaseMonth)?.ActualTierId ?? "";
        return new ReplayedAccrual(row, tier, tier, row.AvailableDeltaMinor, row.AvailableDeltaMinor, [], Carried: true);
    }

    /// <summary>The campaign bonuses the row was granted, in their order: budgets and first-N slots were spent then.</summary>
    private static CampaignGrant[] GrantsAsTheyWere(ReplayRow row) =>
        row.Breakdown.Length == 0 ? [] : CampaignGrants.AsGranted(BreakdownCodec.Decode(row.Breakdown));

    private Month MonthOf(int value) => _months.TryGetValue(value, out var month) ? month : _months[value] = new Month();
}
