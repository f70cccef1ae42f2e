using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using Orleans.Runtime;

namespace LoyaltyGrains.Tests.Grains;

[Collection(ClusterCollection.Name)]
public sealed class MemberGrainTests(ClusterFixture fixture)
{
    private static readonly DateTimeOffset At = FakeClock.DefaultStart;
    private IGrainFactory Grains => fixture.Grains;

    private async Task<(string Member, string Card)> NewMemberAsync(string name)
    {
        var member = $"{name}-{Guid.NewGuid():N}"[..24];
        await Grains.MemberGrain(member).Enroll(false, "", "");
        await Grains.CardGrain("card-" + member).Issue(member);
        return (member, "card-" + member);
    }

    private static AuthorizeMessage Auth(string id, string card, long amount, int mcc = 5411) => new(id, card, amount, "RUB", mcc, "shop", At);

    [Fact]
    public async Task Authorize_capture_and_balance_through_the_card()
    {
        var (member, card) = await NewMemberAsync("life");
        var auth = await Grains.CardGrain(card).Authorize(Auth("t-" + member + "-a", card, 100_000));
        Assert.Equal((1_000, 1_000, 0L), (auth.AccruedMinor, auth.PendingAfterMinor, auth.AvailableAfterMinor));
        var capture = await Grains.CardGrain(card).Capture(new CaptureMessage("t-" + member + "-c", "t-" + member + "-a", card, 100_000, At, -1, "", "RUB"));
        Assert.Equal(1_000, capture.AvailableAfterMinor);
        var balance = await Grains.MemberGrain(member).GetBalance();
        Assert.Equal((1_000, 0L), (balance.AvailableMinor, balance.PendingMinor));
    }

    [Fact]
    public async Task Retry_is_duplicate_and_conflicting_retry_is_already_exists()
    {
        var (member, card) = await NewMemberAsync("idem");
        var id = "t-" + member;
        var first = await Grains.CardGrain(card).Authorize(Auth(id, card, 50_000));
        var again = await Grains.CardGrain(card).Authorize(Auth(id, card, 50_000));
        Assert.True(again.Duplicate);
        Assert.Equal(first with { Duplicate = true, Breakdown = again.Breakdown }, again);
        var conflict = await Assert.ThrowsAsync<LoyaltyRejectedException>(() => Grains.CardGrain(card).Authorize(Auth(id, card, 50_001)));
        Assert.Equal(RejectionCode.AlreadyExists, conflict.Code);
        Assert.Equal(500, (await Grains.MemberGrain(member).GetBalance()).PendingMinor);
    }

    [Fact]
    public async Task Transaction_id_of_another_member_is_already_exists_and_changes_nothing()
    {
        var (memberA, cardA) = await NewMemberAsync("ida");
        var (memberB, cardB) = await NewMemberAsync("idb");
        var id = "shared-" + memberA;
        await Grains.CardGrain(cardA).Authorize(Auth(id, cardA, 50_000));
        var conflict = await Assert.ThrowsAsync<LoyaltyRejectedException>(() => Grains.CardGrain(cardB).Authorize(Auth(id, cardB, 50_000)));
        Assert.Equal(RejectionCode.AlreadyExists, conflict.Code);
        var balance = await Grains.MemberGrain(memberB).GetBalance();
        Assert.Equal((0L, 0L), (balance.AvailableMinor, balance.PendingMinor));
        // the refused state was rebuilt from the ledger: the next message works normally
        var next = await Grains.CardGrain(cardB).Authorize(Auth("next-" + memberB, cardB, 50_000));
        Assert.Equal(500, next.PendingAfterMinor);
    }

    [Fact]
    public async Task Reversal_before_authorization_then_authorization_nets_to_zero()
    {
        var (member, card) = await NewMemberAsync("ooo");
        var reverse = await Grains.CardGrain(card).Reverse(new ReverseMessage("v-" + member, "a-" + member, card, 0, At));
        Assert.Equal(0, reverse.AccruedMinor);
        await Grains.CardGrain(card).Authorize(Auth("a-" + member, card, 100_000));
        Assert.Equal(0, (await Grains.MemberGrain(member).GetBalance()).PendingMinor);
        var capture = await Assert.ThrowsAsync<LoyaltyRejectedException>(() =>
            Grains.CardGrain(card).Capture(new CaptureMessage("c-" + member, "a-" + member, card, 100_000, At, -1, "", "RUB")));
        Assert.Equal(RejectionCode.FailedPrecondition, capture.Code);
    }

    [Fact]
    public async Task Blocked_card_refuses_authorizations_but_takes_clearing()
    {
        var (member, card) = await NewMemberAsync("blk");
        await Grains.CardGrain(card).Authorize(Auth("a-" + member, card, 100_000));
        await Grains.CardGrain(card).Block();
        var refused = await Assert.ThrowsAsync<LoyaltyRejectedException>(() => Grains.CardGrain(card).Authorize(Auth("b-" + member, card, 100_000)));
        Assert.Equal(RejectionCode.FailedPrecondition, refused.Code);
        // The member decides, duplicate first: a retry of an authorization made before the block gets its reply.
        Assert.True((await Grains.CardGrain(card).Authorize(Auth("a-" + member, card, 100_000))).Duplicate);
        Assert.True((await Grains.MemberGrain(member).AuthorizeOnKnownCard(Auth("a-" + member, card, 100_000))).Duplicate);
        var capture = await Grains.CardGrain(card).Capture(new CaptureMessage("c-" + member, "a-" + member, card, 100_000, At, -1, "", "RUB"));
        Assert.Equal(1_000, capture.AvailableAfterMinor);
    }

    [Fact]
    public async Task Authorization_routed_past_the_card_grain_uses_what_the_card_grain_told_the_member()
    {
        var (member, card) = await NewMemberAsync("direct");
        var (other, otherCard) = await NewMemberAsync("direct2");
        // Not told about the card since activation: sent back to go through the card grain, nothing decided or recorded.
        await Assert.ThrowsAsync<CardRouteRequiredException>(() => Grains.MemberGrain(member).AuthorizeOnKnownCard(Auth("a0-" + member, card, 100_000)));
        Assert.Equal(0, (await Grains.MemberGrain(member).GetBalance()).PendingMinor);

        // The card grain hands the member the card's facts with the message; afterwards the direct route works.
        Assert.Equal(1_000, (await Grains.CardGrain(card).Authorize(Auth("a1-" + member, card, 100_000))).PendingAfterMinor);
        Assert.Equal(2_000, (await Grains.MemberGrain(member).AuthorizeOnKnownCard(Auth("a2-" + member, card, 100_000))).PendingAfterMinor);

        // Another member's card is never decided here: the card grain routes it to its own member.
        await Assert.ThrowsAsync<CardRouteRequiredException>(() => Grains.MemberGrain(member).AuthorizeOnKnownCard(Auth("f-" + member, otherCard, 100_000)));
        Assert.Equal(2_000, (await Grains.MemberGrain(member).GetBalance()).PendingMinor);

        // The member already knows the card as unblocked; the block must reach it before Block returns.
        await Grains.CardGrain(card).Block();
        var refused = await Assert.ThrowsAsync<LoyaltyRejectedException>(() => Grains.MemberGrain(member).AuthorizeOnKnownCard(Auth("b-" + member, card, 100_000)));
        Assert.Equal(RejectionCode.FailedPrecondition, refused.Code);
        Assert.Equal(2_000, (await Grains.MemberGrain(member).GetBalance()).PendingMinor);
        Assert.Equal(0, (await Grains.MemberGrain(other).GetBalance()).PendingMinor);
    }

    [Fact]
    public async Task Unknown_card_and_member_are_not_found()
    {
        var card = await Assert.ThrowsAsync<LoyaltyRejectedException>(() => Grains.CardGrain("no-such-card").Authorize(Auth("x1", "no-such-card", 100)));
        Assert.Equal(RejectionCode.NotFound, card.Code);
        var member = await Assert.ThrowsAsync<LoyaltyRejectedException>(() => Grains.MemberGrain("no-such-member").GetBalance());
        Assert.Equal(RejectionCode.NotFound, member.Code);
        var issue = await Assert.ThrowsAsync<LoyaltyRejectedException>(() => Grains.CardGrain("c-orphan").Issue("no-such-member"));
        Assert.Equal(RejectionCode.NotFound, issue.Code);
    }

    [Fact]
    public async Task State_survives_deactivation_by_replaying_snapshot_and_ledger()
    {
        var (member, card) = await NewMemberAsync("react");
        for (var i = 0; i < 5; i++) await Grains.CardGrain(card).Authorize(Auth($"a{i}-{member}", card, 100_000 + i));
        var before = await Grains.MemberGrain(member).GetBalance();
        var management = Grains.GetGrain<IManagementGrain>(0);
        await management.ForceActivationCollection(TimeSpan.Zero);
        var after = await Grains.MemberGrain(member).GetBalance();
        Assert.Equal(before, after);
        var retry = await Grains.CardGrain(card).Authorize(Auth($"a0-{member}", card, 100_000));
        Assert.True(retry.Duplicate, "a duplicate must be recognised after re-activation");
    }

    [Fact]
    public async Task Concurrent_messages_for_one_member_all_apply_exactly_once()
    {
        var (member, card) = await NewMemberAsync("conc");
        var tasks = Enumerable.Range(0, 200).Select(i => Grains.CardGrain(card).Authorize(Auth($"c{i}-{member}", card, 10_000 + i)));
        var results = await Task.WhenAll(tasks);
        Assert.All(results, r => Assert.False(r.Duplicate));
        var expected = Enumerable.Range(0, 200).Sum(i => (10_000L + i) / 100);
        Assert.Equal(expected, (await Grains.MemberGrain(member).GetBalance()).PendingMinor);
        var statement = await Grains.MemberGrain(member).GetStatement(200, 0);
        Assert.Equal(200, statement.Entries.Length);
        var rest = await Grains.MemberGrain(member).GetStatement(200, statement.NextBeforeSequence);
        Assert.Equal(["tier_assigned", "enroll"], rest.Entries.Select(e => e.Kind));
    }

    [Fact]
    public async Task Statement_pages_newest_first_with_stable_tokens()
    {
        var (member, card) = await NewMemberAsync("stmt");
        for (var i = 0; i < 7; i++) await Grains.CardGrain(card).Authorize(Auth($"s{i}-{member}", card, 100_000));
        var page1 = await Grains.MemberGrain(member).GetStatement(3, 0);
        Assert.Equal([9L, 8, 7], page1.Entries.Select(e => e.Sequence));
        await Grains.CardGrain(card).Authorize(Auth($"s-late-{member}", card, 100_000));
        var page2 = await Grains.MemberGrain(member).GetStatement(3, page1.NextBeforeSequence);
        Assert.Equal([6L, 5, 4], page2.Entries.Select(e => e.Sequence));
        var page3 = await Grains.MemberGrain(member).GetStatement(3, page2.NextBeforeSequence);
        Assert.Equal([3L, 2, 1], page3.Entries.Select(e => e.Sequence));
        Assert.Equal(0, page3.NextBeforeSequence);
    }
}
