using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Tests.Domain;

/// <summary>The lifecycle rules of docs/RULES.md on the pure member account.</summary>
public sealed class MemberAccountTests
{
    private static readonly ProgramHistory Programs = ProgramHistory.Of(ProgramConfig.Default);
    private static readonly MccCatalogue Catalogue = MccCatalogue.Default;
    private static readonly DateTimeOffset T0 = new(2026, 11, 20, 9, 0, 0, TimeSpan.Zero);

    private readonly MemberAccount _account = new("anna");
    private readonly MemberRows _rows = new();
    private List<LedgerEntry> Ledger => _rows.Rows;

    public MemberAccountTests()
    {
        Ok(_account.Enroll(new EnrollCommand("anna", false, "", ""), ProgramConfig.Default, T0));
    }

    private T Ok<T>(Result<T> result)
    {
        Assert.True(result.IsOk, $"expected success, got {result.Rejection}");
        _rows.Take(_account);
        return result.Value!;
    }

    private Rejection Rejected<T>(Result<T> result, RejectionKind kind)
    {
        Assert.False(result.IsOk, "expected a rejection");
        Assert.Equal(kind, result.Rejection!.Kind);
        _rows.Take(_account);
        return result.Rejection;
    }

    private PostingOutcome Authorize(string id, long amount, int mcc = 5411, DateTimeOffset? at = null, DateTimeOffset? now = null) =>
        Ok(_account.Authorize(new AuthorizeCommand(id, "card-1", amount, "RUB", mcc, "shop", at ?? T0), Programs, Catalogue, now ?? T0));

    private PostingOutcome Capture(string id, string auth, long amount, DateTimeOffset? now = null) => Ok(TryCapture(id, auth, amount, now));

    private Result<PostingOutcome> TryCapture(string id, string auth, long amount, DateTimeOffset? now = null) =>
        _account.Capture(new CaptureCommand(id, auth, "card-1", amount, T0, -1, "", "RUB"), Programs, Catalogue, now ?? T0, null,
            _rows.Cold(_account.ColdReference(id, auth)));

    private Result<PostingOutcome> TryReverse(string id, string auth, long amount) =>
        _account.Reverse(new ReverseCommand(id, auth, "card-1", amount, T0), Programs, T0, _rows.Cold(_account.ColdReference(id, auth)));

    private Result<PostingOutcome> TryRefund(string id, string original, long amount) =>
        _account.Refund(new RefundCommand(id, original, "card-1", amount, T0), Programs, T0, _rows.Cold(_account.ColdReference(id, original)));

    [Fact]
    public void Authorize_creates_pending_and_capture_makes_it_available()
    {
        var auth = Authorize("a1", 100_000);
        Assert.Equal((1_000, 1_000, 0), (auth.AccruedMinor, auth.PendingAfterMinor, auth.AvailableAfterMinor));
        var capture = Capture("c1", "a1", 100_000);
        Assert.Equal((1_000, 0, 1_000), (capture.AccruedMinor, capture.PendingAfterMinor, capture.AvailableAfterMinor));
    }

    [Fact]
    public void Same_id_same_payload_is_a_duplicate_with_the_original_figures_and_changes_nothing()
    {
        var first = Authorize("a1", 100_000);
        var sequence = _account.State.Sequence;
        var again = Authorize("a1", 100_000);
        Assert.True(again.Duplicate);
        Assert.Equal((first.AccruedMinor, first.PendingAfterMinor, first.AvailableAfterMinor), (again.AccruedMinor, again.PendingAfterMinor, again.AvailableAfterMinor));
        Assert.Equal(sequence, _account.State.Sequence);
    }

    [Fact]
    public void Same_id_other_payload_is_already_exists()
    {
        Authorize("a1", 100_000);
        var rejection = Rejected(_account.Authorize(new AuthorizeCommand("a1", "card-1", 100_001, "RUB", 5411, "shop", T0), Programs, Catalogue, T0),
            RejectionKind.AlreadyExists);
        Assert.Contains("transaction_id", rejection.Message, StringComparison.Ordinal);
        Assert.Equal(1_000, _account.State.PendingMinor);
    }

    [Fact]
    public void Partial_capture_accrues_on_the_captured_amount_and_releases_the_rest()
    {
        Authorize("a1", 100_000);
        var capture = Capture("c1", "a1", 60_000);
        Assert.Equal((600, 0, 600), (capture.AccruedMinor, capture.PendingAfterMinor, capture.AvailableAfterMinor));
    }

    [Fact]
    public void Capture_above_authorization_within_margin_is_accepted_and_beyond_it_refused()
    {
        Authorize("a1", 100_000);
        Rejected(TryCapture("c0", "a1", 120_001), RejectionKind.FailedPrecondition);
        var capture = Capture("c1", "a1", 120_000);
        Assert.Equal(1_200, capture.AvailableAfterMinor);
    }

    [Fact]
    public void Force_post_without_authorization_is_accepted()
    {
        var post = Ok(_account.Capture(new CaptureCommand("f1", "", "card-1", 50_000, T0, 5411, "shop", "RUB"), Programs, Catalogue, T0));
        Assert.Equal((500, 0, 500), (post.AccruedMinor, post.PendingAfterMinor, post.AvailableAfterMinor));
        var refund = Ok(TryRefund("r1", "f1", 50_000));
        Assert.Equal(0, refund.AvailableAfterMinor);
    }

    [Fact]
    public void Capture_of_unknown_authorization_without_mcc_is_not_found()
    {
        Rejected(TryCapture("c1", "nope", 1_000), RejectionKind.NotFound);
    }

    [Fact]
    public void Partial_then_full_reversal_voids_pending_exactly()
    {
        Authorize("a1", 100_001, mcc: 5411);
        var partial = Ok(TryReverse("v1", "a1", 33_333));
        Assert.Equal(_account.State.PendingMinor, partial.PendingAfterMinor);
        var full = Ok(TryReverse("v2", "a1", 0));
        Assert.Equal(0, full.PendingAfterMinor);
        Assert.False(_account.State.Purchases.ContainsKey("a1")); // settled: only the ledger holds it
        Rejected(TryCapture("c1", "a1", 1_000), RejectionKind.FailedPrecondition);
    }

    [Fact]
    public void Reversal_after_capture_is_failed_precondition()
    {
        Authorize("a1", 100_000);
        Capture("c1", "a1", 100_000);
        var rejection = Rejected(TryReverse("v1", "a1", 0), RejectionKind.FailedPrecondition);
        Assert.Contains("Refund", rejection.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Reversal_before_its_authorization_is_applied_when_the_authorization_arrives()
    {
        var parked = Ok(TryReverse("v1", "a1", 0));
        Assert.Equal(0, parked.AccruedMinor);
        Authorize("a1", 100_000);
        Assert.Equal(0, _account.State.PendingMinor);
        Assert.Contains(Ledger, e => e.Kind == EntryKind.ReverseApplied && e.PurchaseId == "a1");
        Assert.False(_account.State.Purchases.ContainsKey("a1"));
    }

    [Fact]
    public void Partial_refunds_claw_back_proportionally_and_exactly_in_total()
    {
        Authorize("a1", 100_003, mcc: 5411);
        Capture("c1", "a1", 100_003);
        var accrued = _account.State.AvailableMinor;
        Ok(TryRefund("r1", "c1", 33_334));
        Ok(TryRefund("r2", "a1", 33_334));
        Rejected(TryRefund("r3", "c1", 33_336), RejectionKind.FailedPrecondition);
        Ok(TryRefund("r4", "c1", 33_335));
        Assert.Equal(0, _account.State.AvailableMinor);
        Assert.True(accrued > 0);
    }

    [Fact]
    public void Refund_of_an_uncaptured_authorization_is_failed_precondition()
    {
        Authorize("a1", 100_000);
        Rejected(TryRefund("r1", "a1", 1_000), RejectionKind.FailedPrecondition);
        Rejected(TryRefund("r2", "zzz", 1_000), RejectionKind.NotFound);
    }

    [Fact]
    public void Clawback_beyond_available_leaves_debt_that_later_accruals_pay_off()
    {
        Authorize("a1", 100_000);
        Capture("c1", "a1", 100_000);
        Ok(TryRefund("r1", "c1", 100_000));
        Assert.Equal(0, _account.State.AvailableMinor);
        var debtAccount = new MemberAccount(new MemberState { MemberId = "x", Enrolled = true, TierId = "standard", AvailableMinor = -500 });
        var result = debtAccount.Capture(new CaptureCommand("f1", "", "card-1", 100_000, T0, 5411, "shop", "RUB"), Programs, Catalogue, T0);
        Assert.Equal(500, result.Value!.AvailableAfterMinor);
    }

    [Fact]
    public void Pending_authorization_expires_after_the_hold_on_next_touch_and_can_still_be_captured_late()
    {
        Authorize("a1", 100_000);
        var later = T0.AddDays(31);
        Authorize("a2", 10_000, at: later, now: later);
        Assert.False(_account.State.Purchases.ContainsKey("a1"));
        Assert.Equal(100, _account.State.PendingMinor);
        Assert.Contains(Ledger, e => e.Kind == EntryKind.ExpirePending && e.PurchaseId == "a1" && e.PendingDeltaMinor == -1_000);
        var late = Capture("c1", "a1", 100_000, now: later);
        Assert.Equal(1_000, late.AvailableAfterMinor);
    }

    [Fact]
    public void Unknown_member_commands_are_not_found()
    {
        var stranger = new MemberAccount("nobody");
        var result = stranger.Authorize(new AuthorizeCommand("a1", "card-1", 100_000, "RUB", 5411, "shop", T0), Programs, Catalogue, T0);
        Assert.Equal(RejectionKind.NotFound, result.Rejection!.Kind);
        Assert.Empty(stranger.Uncommitted);
    }

    [Fact]
    public void Other_currency_is_invalid_argument()
    {
        Rejected(_account.Authorize(new AuthorizeCommand("a1", "card-1", 100_000, "USD", 5411, "shop", T0), Programs, Catalogue, T0),
            RejectionKind.InvalidArgument);
        Assert.Equal(0, _account.State.PendingMinor);
    }

    [Fact]
    public void Categories_are_chosen_from_the_offered_set_up_to_the_tier_limit_and_lock_after_category_cashback()
    {
        var month = ProgramConfig.Default.MonthOf(T0);
        Rejected(_account.ChooseCategories(new ChooseCategoriesCommand(month, ["supermarkets", "fuel", "taxi", "pets"]), Programs, T0), RejectionKind.InvalidArgument);
        Rejected(_account.ChooseCategories(new ChooseCategoriesCommand(month, ["casino"]), Programs, T0), RejectionKind.InvalidArgument);
        Rejected(_account.ChooseCategories(new ChooseCategoriesCommand(month.Previous(), ["fuel"]), Programs, T0), RejectionKind.FailedPrecondition);
        Ok(_account.ChooseCategories(new ChooseCategoriesCommand(month, ["supermarkets", "fuel"]), Programs, T0));
        Authorize("a1", 100_000);
        Assert.Equal(5_000, _account.State.PendingMinor);
        Rejected(_account.ChooseCategories(new ChooseCategoriesCommand(month, ["taxi"]), Programs, T0), RejectionKind.FailedPrecondition);
        Ok(_account.ChooseCategories(new ChooseCategoriesCommand(month.Next(), ["taxi"]), Programs, T0));
    }

    [Fact]
    public void Replaying_the_ledger_rebuilds_the_same_member()
    {
        Ok(_account.ChooseCategories(new ChooseCategoriesCommand(ProgramConfig.Default.MonthOf(T0), ["supermarkets"]), Programs, T0));
        Authorize("a1", 100_000);
        Capture("c1", "a1", 90_000);
        Ok(TryRefund("r1", "c1", 30_000));
        Authorize("a2", 50_000, mcc: 5812);
        Ok(TryReverse("v1", "a2", 20_000));
        var replica = new MemberAccount("anna");
        foreach (var entry in Ledger) replica.Apply(entry);
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(_account.State), System.Text.Json.JsonSerializer.Serialize(replica.State));
    }

    [Fact]
    public void A_capture_without_occurred_at_or_currency_retried_later_is_a_duplicate_not_a_conflict()
    {
        Authorize("a1", 100_000);
        // The processor left out the time and currency: the member fills them from its clock and the authorization.
        var first = Ok(_account.Capture(new CaptureCommand("c1", "a1", "card-1", 100_000, null, -1, "", ""), Programs, Catalogue, T0));
        var retry = Ok(_account.Capture(new CaptureCommand("c1", "a1", "card-1", 100_000, null, -1, "", ""), Programs, Catalogue, T0.AddSeconds(7)));
        Assert.True(retry.Duplicate);
        Assert.Equal(first.AvailableAfterMinor, retry.AvailableAfterMinor);
        Assert.Equal(T0, Ledger.Single(e => e.MessageId == "c1").OccurredAt);
        Rejected(_account.Capture(new CaptureCommand("c1", "a1", "card-1", 90_000, null, -1, "", ""), Programs, Catalogue, T0), RejectionKind.AlreadyExists);
    }

    [Fact]
    public void A_force_post_without_occurred_at_retried_later_is_a_duplicate()
    {
        var first = Ok(_account.Capture(new CaptureCommand("f1", "", "card-1", 50_000, null, 5411, "shop", ""), Programs, Catalogue, T0));
        var retry = Ok(_account.Capture(new CaptureCommand("f1", "", "card-1", 50_000, null, 5411, "shop", ""), Programs, Catalogue, T0.AddMinutes(3)));
        Assert.True(retry.Duplicate);
        Assert.Equal(first.AccruedMinor, retry.AccruedMinor);
        Assert.Equal("RUB", Ledger.Single(e => e.MessageId == "f1").Currency);
    }

    [Fact]
    public void A_capture_in_another_currency_than_its_authorization_is_refused_and_changes_nothing()
    {
        Authorize("a1", 100_000);
        var sequence = _account.State.Sequence;
        var refused = Rejected(_account.Capture(new CaptureCommand("c1", "a1", "card-1", 100_000, T0, -1, "", "USD"), Programs, Catalogue, T0), RejectionKind.InvalidArgument);
        Assert.StartsWith("currency:", refused.Message, StringComparison.Ordinal);
        Assert.Equal(sequence, _account.State.Sequence);
        Assert.Equal(1_000, _account.State.PendingMinor);
    }

    [Fact]
    public void Parked_reversals_are_bounded_per_member_and_expire_after_the_hold_period()
    {
        for (var i = 0; i < Limits.ParkedReversalsMax; i++) Ok(TryReverse($"v{i}", $"never-{i}", 0));
        var refused = Rejected(TryReverse("one-more", "never-x", 0), RejectionKind.ResourceExhausted);
        Assert.StartsWith("authorization_id:", refused.Message, StringComparison.Ordinal);
        Assert.Equal(Limits.ParkedReversalsMax, _account.State.ParkedReversals!.Values.Sum(list => list.Count));

        // Past the hold period the next touch drops them all; a new reversal may wait again.
        var later = T0.AddDays(ProgramConfig.Default.AuthorizationHoldDays).AddMinutes(1);
        Ok(_account.Reverse(new ReverseCommand("after-hold", "never-y", "card-1", 0, later), Programs, later));
        Assert.Equal(Limits.ParkedReversalsMax, Ledger.Count(e => e.Kind == EntryKind.ParkedReversalExpired));
        Assert.Equal(["never-y"], _account.State.ParkedReversals!.Keys);

        // An authorization that finally arrives after its reversal expired is simply pending.
        Authorize("never-3", 100_000, now: later);
        Assert.Equal(1_000, _account.State.PendingMinor);

        var replica = new MemberAccount("anna");
        foreach (var entry in Ledger) replica.Apply(entry);
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(_account.State), System.Text.Json.JsonSerializer.Serialize(replica.State));
    }

    [Fact]
    public void A_posting_that_would_take_the_balance_past_the_maximum_is_refused()
    {
        var rich = new MemberAccount(new MemberState { MemberId = "rich" });
        Assert.True(rich.Enroll(new EnrollCommand("rich", false, "", ""), ProgramConfig.Default, T0).IsOk);
        rich.ClearUncommitted();
        rich.State.AvailableMinor = Limits.BalanceMinorMax - 100;
        var refused = rich.Capture(new CaptureCommand("f1", "", "card-1", 100_000, T0, 5411, "shop", "RUB"), Programs, Catalogue, T0);
        Assert.False(refused.IsOk);
        Assert.Equal(RejectionKind.FailedPrecondition, refused.Rejection!.Kind);
        Assert.Equal(Limits.BalanceMinorMax - 100, rich.State.AvailableMinor);
        Assert.DoesNotContain(rich.Uncommitted, e => e.MessageId == "f1");
    }
}
