using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Tests.Grains;

/// <summary>
/// A busy member keeps only its recent captures and idempotency records in memory (MemberAccount.CapturedKeptMax,
/// ProcessedKeptMax). Messages about what left memory are still answered as if it were there: a retry is DUPLICATE with
/// its original figures, an id reused for another message is ALREADY_EXISTS, and nothing is recorded twice.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class MemberLateRetryTests(ClusterFixture fixture)
{
    [Fact]
    public async Task Retries_and_reused_ids_of_messages_that_left_memory_are_answered_as_before()
    {
        var member = $"late-{Guid.NewGuid():N}"[..24];
        var card = "card-" + member;
        var grain = fixture.Grains.MemberGrain(member);
        await grain.Enroll(false, "", "");
        await fixture.Grains.CardGrain(card).Issue(member);
        var at = ClusterFixture.Clock.GetUtcNow().AddMinutes(-5);
        AuthorizeMessage Authorization(int i) => new($"{member}-a{i}", card, 10_000 + i, "RUB", 5411, "shop", at);
        CaptureMessage Capture(int i) => new($"{member}-c{i}", $"{member}-a{i}", card, 10_000 + i, at, -1, "", "RUB");

        var firstAuthorization = await fixture.Grains.CardGrain(card).Authorize(Authorization(0)); // the first one through the card, as a gateway does
        var firstCapture = await grain.Capture(Capture(0));
        // Enough newer purchases that the first one's purchase and both its records leave memory by count.
        var newer = MemberAccount.ProcessedKeptMax + MemberAccount.CapturedKeptMax + 2 * MemberAccount.DedupePruneEveryEntries;
        for (var i = 1; i <= newer; i++)
        {
            await grain.AuthorizeOnKnownCard(Authorization(i));
            await grain.Capture(Capture(i));
        }
        var before = await grain.GetBalance();

        // The capture's retry: its purchase is read back from the ledger, which holds the message itself.
        var captureRetry = await grain.Capture(Capture(0));
        Assert.True(captureRetry.Duplicate);
        Assert.Equal(firstCapture with { Duplicate = true, Breakdown = captureRetry.Breakdown }, captureRetry);
        // The authorization's retry: decided as new in memory, refused by the ledger's unique id, answered from its row.
        var authorizationRetry = await grain.AuthorizeOnKnownCard(Authorization(0));
        Assert.True(authorizationRetry.Duplicate);
        Assert.Equal(firstAuthorization with { Duplicate = true, Breakdown = authorizationRetry.Breakdown }, authorizationRetry);
        // The capture's id reused by another authorization (accepted in memory) and by a capture memory refuses.
        var reusedByAuthorization = await Assert.ThrowsAsync<LoyaltyRejectedException>(() =>
            grain.AuthorizeOnKnownCard(new AuthorizeMessage($"{member}-c0", card, 77_700, "RUB", 5411, "shop", at)));
        Assert.Equal(RejectionCode.AlreadyExists, reusedByAuthorization.Code);
        var reusedByCapture = await Assert.ThrowsAsync<LoyaltyRejectedException>(() =>
            grain.Capture(new CaptureMessage($"{member}-c0", $"{member}-a{newer}", card, 1, at, -1, "", "RUB")));
        Assert.Equal(RejectionCode.AlreadyExists, reusedByCapture.Code);

        // Nothing of the above recorded anything, and the member goes on as before.
        var after = await grain.GetBalance();
        Assert.Equal((before.AvailableMinor, before.PendingMinor, before.Sequence), (after.AvailableMinor, after.PendingMinor, after.Sequence));
        var next = await grain.AuthorizeOnKnownCard(Authorization(newer + 1));
        Assert.False(next.Duplicate);
    }
}
