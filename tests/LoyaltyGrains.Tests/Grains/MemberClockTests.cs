using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using Orleans.Runtime;

namespace LoyaltyGrains.Tests.Grains;

/// <summary>
/// Member tests that move the clock weeks ahead: each runs on a cluster with its own clock (<see cref="OwnClockCluster"/>),
/// so no other test sees time move.
/// </summary>
public sealed class MemberClockTests
{
    private static readonly DateTimeOffset At = FakeClock.DefaultStart;

    private static async Task<(string Member, string Card)> NewMemberAsync(IGrainFactory grains, string name)
    {
        var member = $"{name}-{Guid.NewGuid():N}"[..24];
        await grains.MemberGrain(member).Enroll(false, "", "");
        await grains.CardGrain("card-" + member).Issue(member);
        return (member, "card-" + member);
    }

    private static AuthorizeMessage Auth(string id, string card, long amount, int mcc = 5411) => new(id, card, amount, "RUB", mcc, "shop", At);

    [Fact]
    public async Task A_retry_older_than_memory_is_answered_from_the_ledger()
    {
        await using var own = await OwnClockCluster.StartAsync();
        var (member, card) = await NewMemberAsync(own.Grains, "late");
        var original = await own.Grains.CardGrain(card).Authorize(Auth("late-" + member, card, 100_000));
        // 46 days and 64 messages later the member's in-memory dedupe window no longer holds the id.
        var skip = MemberAccount.DedupeMemory + TimeSpan.FromDays(1);
        own.Clock.Advance(skip);
        var later = own.Clock.GetUtcNow();
        for (var i = 0; i < MemberAccount.DedupePruneEveryEntries; i++)
        {
            await own.Grains.CardGrain(card).Authorize(new AuthorizeMessage($"late-{member}-{i}", card, 10_000, "RUB", 5411, "shop", later));
        }
        var retry = await own.Grains.CardGrain(card).Authorize(Auth("late-" + member, card, 100_000));
        Assert.True(retry.Duplicate, "a retry beyond the in-memory window must still be DUPLICATE");
        Assert.Equal((original.AccruedMinor, original.PendingAfterMinor), (retry.AccruedMinor, retry.PendingAfterMinor));
        var conflict = await Assert.ThrowsAsync<LoyaltyRejectedException>(() => own.Grains.CardGrain(card).Authorize(Auth("late-" + member, card, 100_001)));
        Assert.Equal(RejectionCode.AlreadyExists, conflict.Code);
        Assert.Equal(MemberAccount.DedupePruneEveryEntries * 100L, (await own.Grains.MemberGrain(member).GetBalance()).PendingMinor);
    }

    [Fact]
    public async Task A_capture_that_left_memory_is_refunded_from_the_ledger_before_and_after_reactivation()
    {
        await using var own = await OwnClockCluster.StartAsync();
        var (member, card) = await NewMemberAsync(own.Grains, "cold");
        var (auth, capture) = ("ca-" + member, "cc-" + member);
        await own.Grains.CardGrain(card).Authorize(Auth(auth, card, 100_000));
        await own.Grains.CardGrain(card).Capture(new CaptureMessage(capture, auth, card, 100_000, At, -1, "", "RUB"));
        Assert.Equal(-250, (await own.Grains.CardGrain(card).Refund(new RefundMessage("r1-" + member, capture, card, 25_000, At))).AccruedMinor);
        // Past the capture memory and a prune point later, the capture lives only in the ledger.
        var skip = MemberAccount.CaptureMemory + TimeSpan.FromDays(1);
        own.Clock.Advance(skip);
        var later = own.Clock.GetUtcNow();
        for (var i = 0; i < MemberAccount.DedupePruneEveryEntries; i++)
        {
            await own.Grains.CardGrain(card).Capture(new CaptureMessage($"f{i}-{member}", "", card, 10_000, later, 5411, "shop", "RUB"));
        }
        var refund = await own.Grains.CardGrain(card).Refund(new RefundMessage("r2-" + member, auth, card, 25_000, later));
        Assert.Equal((-250L, false), (refund.AccruedMinor, refund.Duplicate));

        // A new activation: snapshot and ledger replay, then the old capture is read from the ledger again.
        await own.Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        var tooMuch = await Assert.ThrowsAsync<LoyaltyRejectedException>(() =>
            own.Grains.CardGrain(card).Refund(new RefundMessage("r3-" + member, capture, card, 50_001, later)));
        Assert.Equal(RejectionCode.FailedPrecondition, tooMuch.Code);
        Assert.Equal(-500, (await own.Grains.CardGrain(card).Refund(new RefundMessage("r4-" + member, capture, card, 50_000, later))).AccruedMinor);
        Assert.True((await own.Grains.CardGrain(card).Refund(new RefundMessage("r4-" + member, capture, card, 50_000, later))).Duplicate);
        // The reversed-after-capture rule still holds for a purchase memory no longer has.
        var reverse = await Assert.ThrowsAsync<LoyaltyRejectedException>(() =>
            own.Grains.CardGrain(card).Reverse(new ReverseMessage("v1-" + member, auth, card, 0, later)));
        Assert.Equal(RejectionCode.FailedPrecondition, reverse.Code);
        var balance = await own.Grains.MemberGrain(member).GetBalance();
        Assert.Equal(MemberAccount.DedupePruneEveryEntries * 100L, balance.AvailableMinor);
    }
}
