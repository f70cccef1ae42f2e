using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Tests.Domain;

/// <summary>
/// The domain's two steps for a posting (what the decision needs, then the decision) and the idempotency rule they
/// share: the same message answered with its original figures, anything else under a seen id refused.
/// </summary>
public sealed class PostingStepsTests
{
    private static readonly ProgramHistory Programs = ProgramHistory.Of(ProgramConfig.Default);
    private static readonly MccCatalogue Catalogue = MccCatalogue.Default;
    private static readonly DateTimeOffset T0 = new(2026, 11, 20, 9, 0, 0, TimeSpan.Zero);

    private static readonly CampaignRule Bonus = new()
    {
        CampaignId = "bonus", PartnerId = "partner-1", RateBps = 1_000, StartsAt = T0.AddDays(-1), EndsAt = T0.AddDays(60),
    };

    private static MemberAccount Enrolled(string memberId = "m1")
    {
        var account = new MemberAccount(memberId);
        Assert.True(account.Enroll(new EnrollCommand(memberId, false, "", ""), ProgramConfig.Default, T0).IsOk);
        account.ClearUncommitted();
        return account;
    }

    private static AuthorizeCommand Authorization(string id, CardStanding card = CardStanding.Active) =>
        new(id, "card-1", 100_000, "RUB", 5411, "shop", T0, card);

    private static PostingDecision Decide(MemberAccount account, PostingCommand command, PostingFacts facts = default)
    {
        var decision = account.Decide(command, facts, Programs, Catalogue, T0);
        account.ClearUncommitted();
        return decision;
    }

    [Fact]
    public void The_idempotency_rule_answers_the_same_message_with_its_original_figures_and_anything_else_as_a_used_id()
    {
        var account = Enrolled();
        var command = Authorization("a1");
        Assert.True(account.Decide(command, default, Programs, Catalogue, T0).Result.IsOk);
        var row = account.Uncommitted.Single(e => e.MessageId == "a1");
        var fingerprint = MemberAccount.FingerprintOf(command);

        var same = MemberAccount.AnswerSeenId("m1", "a1", fingerprint, row);
        Assert.True(same.Value!.Duplicate);
        Assert.Equal((row.AccruedMinor, row.PendingAfterMinor), (same.Value.AccruedMinor, same.Value.PendingAfterMinor));
        Assert.Equal(RejectionKind.AlreadyExists, MemberAccount.AnswerSeenId("m1", "a1", fingerprint + 1, row).Rejection!.Kind);
        Assert.Equal(RejectionKind.AlreadyExists, MemberAccount.AnswerSeenId("m2", "a1", fingerprint, row).Rejection!.Kind);
        Assert.Equal(RejectionKind.AlreadyExists, MemberAccount.AnswerSeenId("m1", "a1", 0, row with { Fingerprint = 0 }).Rejection!.Kind);
        Assert.Equal(RejectionKind.AlreadyExists, MemberAccount.AnswerSeenId("m1", "a1", fingerprint, null).Rejection!.Kind);

        // The same rule answers a retry from memory.
        account.ClearUncommitted();
        Assert.True(Decide(account, command).Result.Value!.Duplicate);
        Assert.Equal(RejectionKind.AlreadyExists, Decide(account, command with { AmountMinor = 100_001 }).Result.Rejection!.Kind);
    }

    [Fact]
    public void What_a_decision_needs_is_named_before_it_cold_rows_for_a_purchase_memory_lacks_and_claims_for_what_can_earn()
    {
        var account = Enrolled();
        Assert.Null(account.NeedsOf(Authorization("a1"), T0)); // a timely authorization never reads the ledger
        Assert.Single(account.ClaimsOf(Authorization("a1"), null, Programs, Catalogue, [Bonus], T0));
        Assert.Empty(account.ClaimsOf(Authorization("a1", CardStanding.Blocked), null, Programs, Catalogue, [Bonus], T0));
        Assert.True(Decide(account, Authorization("a1"), new PostingFacts(null, [new CampaignGrant(Bonus, 10_000)])).Result.IsOk);
        Assert.Empty(account.ClaimsOf(Authorization("a1"), null, Programs, Catalogue, [Bonus], T0)); // a retry claims nothing

        var capture = new CaptureCommand("c1", "a1", "card-1", 100_000, T0, -1, "", "");
        Assert.Null(account.NeedsOf(capture, T0)); // its authorization is in memory
        Assert.Empty(account.ClaimsOf(capture, null, Programs, Catalogue, [Bonus], T0)); // a captured authorization keeps its grant
        var forgotten = new CaptureCommand("c2", "a-elsewhere", "card-1", 100_000, T0, 5411, "shop", "");
        Assert.Equal("a-elsewhere", account.NeedsOf(forgotten, T0));
        Assert.Single(account.ClaimsOf(forgotten, [], Programs, Catalogue, [Bonus], T0)); // no rows: a force post, which claims
        Assert.Null(account.NeedsOf(new RedeemCommand("r1", "partner-1", 1), T0));
    }

    [Fact]
    public void Only_a_refusal_of_an_id_memory_may_have_forgotten_asks_for_the_ledger_row_and_the_row_decides_it()
    {
        var account = Enrolled();
        var unknownCapture = new CaptureCommand("c-late", "a-gone", "card-1", 100_000, T0, -1, "", "");
        // Before pruning starts memory holds every record: a refusal is final.
        Assert.False(Decide(account, unknownCapture, new PostingFacts([], null)).NeedsLedgerRow);

        for (var i = 0; account.State.Sequence < MemberAccount.DedupePruneEveryEntries; i++) Assert.True(Decide(account, Authorization($"a{i}")).Result.IsOk);
        var refused = Decide(account, unknownCapture, new PostingFacts([], null));
        Assert.Equal(RejectionKind.NotFound, refused.Result.Rejection!.Kind);
        Assert.True(refused.NeedsLedgerRow);
        Assert.False(Decide(account, Authorization("fresh")).NeedsLedgerRow); // an accepted posting never asks

        var facts = new PostingFacts([], null) { LedgerRowRead = true };
        var none = Decide(account, unknownCapture, facts);
        Assert.Equal(RejectionKind.NotFound, none.Result.Rejection!.Kind);
        Assert.False(none.NeedsLedgerRow);

        var original = new LedgerEntry
        {
            MessageId = "c-late", MemberId = "m1", Kind = EntryKind.Capture, Sequence = 3, PurchaseId = "a-gone", CardId = "card-1",
            AmountMinor = 100_000, Fingerprint = MemberAccount.FingerprintOf(unknownCapture), AvailableDeltaMinor = 1_000, AvailableAfterMinor = 1_000,
        };
        var duplicate = Decide(account, unknownCapture, facts with { LedgerRow = original });
        Assert.True(duplicate.Result.Value!.Duplicate);
        Assert.Equal(1_000, duplicate.Result.Value.AvailableAfterMinor);
        var other = Decide(account, unknownCapture with { AmountMinor = 99_999 }, facts with { LedgerRow = original });
        Assert.Equal(RejectionKind.AlreadyExists, other.Result.Rejection!.Kind);
    }
}
