using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Tests.Domain;
using Orleans.Runtime;

namespace LoyaltyGrains.Tests.Grains;

/// <summary>
/// A member with 50 000 purchases of history at grain level: its ledger written by the domain (as years of a
/// cardholder), then the member grain activates from it, decides the next messages exactly as the domain does with
/// the same rows, and after a deactivation (snapshot + ledger) still does.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class MemberHistoryGrainTests(ClusterFixture fixture)
{
    private static readonly ProgramHistory Programs = ProgramHistory.Of(ProgramConfig.Default);

    [Fact]
    public async Task A_member_with_fifty_thousand_purchases_decides_and_reactivates_as_its_ledger_says()
    {
        const int purchases = 50_000;
        var member = $"hist-{Guid.NewGuid():N}"[..24];
        var card = "card-" + member;
        var now = ClusterFixture.Clock.GetUtcNow();
        var every = TimeSpan.FromHours(3);
        var at = now - TimeSpan.FromDays(1) - every * purchases;
        var account = new MemberAccount(member);
        var rows = new MemberRows();
        Assert.True(account.Enroll(new EnrollCommand(member, false, "", ""), ProgramConfig.Default, at).IsOk);
        rows.Take(account);
        var random = new Random(11);
        for (var i = 0; i < purchases; i++)
        {
            at += every;
            var amount = (long)random.Next(5_000, 500_000);
            Assert.True(account.Authorize(new AuthorizeCommand($"{member}-a{i}", card, amount, "RUB", 5411, "shop", at), Programs, MccCatalogue.Default, at).IsOk);
            Assert.True(account.Capture(new CaptureCommand($"{member}-c{i}", $"{member}-a{i}", card, amount, at, -1, "", "RUB"), Programs, MccCatalogue.Default, at).IsOk);
            rows.Take(account);
            if (i % 500 == 499)
            {
                // Now and then a refund of an old purchase, read from its rows as the grain reads them.
                var old = random.Next(i / 2);
                var refund = new RefundCommand($"{member}-r{i}", $"{member}-c{old}", card, 1_000, at);
                Assert.True(account.Refund(refund, Programs, at, rows.Cold(account.ColdReference(refund.TransactionId, refund.OriginalTransactionId))).IsOk);
                rows.Take(account);
            }
        }
        foreach (var chunk in rows.Rows.Chunk(5_000)) await ClusterFixture.SharedLedger.AppendAsync(chunk);

        // The first activation replays ~100 000 rows. On a busy machine that may outlast one call's response timeout;
        // the activation goes on, so ask again (bounded) until it answers: the test never leaves it half-done behind it.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                Assert.True(await fixture.Grains.MemberGrain(member).IsEnrolled());
                break;
            }
            catch (TimeoutException) when (attempt < 20)
            {
            }
        }
        await fixture.Grains.CardGrain(card).Issue(member);
        // Years of bonus lots are past expiry: the first read writes them off, as the domain's touch does at the same time.
        account.Touch(Programs.At(now), now);
        rows.Take(account);
        await AssertBalanceAsync(member, account);

        async Task SameAsync(string what, Func<Task<PostingResult>> grain, Func<IReadOnlyList<LedgerEntry>?, Result<PostingOutcome>> domain, string? cold)
        {
            var expected = domain(rows.Cold(cold));
            Assert.True(expected.IsOk, $"{what}: the domain refused: {expected.Rejection?.Message}");
            rows.Take(account);
            var actual = await grain();
            Assert.True((expected.Value!.Duplicate, expected.Value.AccruedMinor, expected.Value.PendingAfterMinor, expected.Value.AvailableAfterMinor)
                == (actual.Duplicate, actual.AccruedMinor, actual.PendingAfterMinor, actual.AvailableAfterMinor),
                $"{what}: the domain says {expected.Value}, the grain says {actual}");
        }

        for (var round = 0; round < 2; round++)
        {
            var n = $"{member}-n{round}";
            var authorize = new AuthorizeCommand(n + "a", card, 123_400, "RUB", 5411, "shop", now);
            await SameAsync("new authorization", () => fixture.Grains.CardGrain(card).Authorize(new AuthorizeMessage(authorize.TransactionId, card, 123_400, "RUB", 5411, "shop", now)),
                cold => account.Authorize(authorize, Programs, MccCatalogue.Default, now, null, cold), account.ColdAuthorization(authorize.TransactionId, now, now));
            var capture = new CaptureCommand(n + "c", n + "a", card, 120_000, now, -1, "", "RUB");
            await SameAsync("its capture", () => fixture.Grains.CardGrain(card).Capture(new CaptureMessage(capture.TransactionId, capture.AuthorizationId, card, 120_000, now, -1, "", "RUB")),
                cold => account.Capture(capture, Programs, MccCatalogue.Default, now, null, cold), account.ColdReference(capture.TransactionId, capture.AuthorizationId));
            // A refund of a purchase captured years ago, by its authorization id: memory no longer holds it.
            var refund = new RefundCommand(n + "r", $"{member}-a{round * 20}", card, 2_000, now);
            await SameAsync("a refund of a purchase years old", () => fixture.Grains.CardGrain(card).Refund(new RefundMessage(refund.TransactionId, refund.OriginalTransactionId, card, 2_000, now)),
                cold => account.Refund(refund, Programs, now, cold), account.ColdReference(refund.TransactionId, refund.OriginalTransactionId));
            // A retry of a capture from the history's first year is DUPLICATE (from the ledger), with its original figures.
            var first = rows.Rows.First(r => r.MessageId == $"{member}-c{round}");
            var retry = await fixture.Grains.CardGrain(card).Capture(new CaptureMessage(first.MessageId, first.PurchaseId, card, first.AmountMinor, first.OccurredAt, -1, "", "RUB"));
            Assert.True(retry.Duplicate, "a retry of a years-old capture must be DUPLICATE");
            Assert.Equal((first.AccruedMinor, first.AvailableAfterMinor), (retry.AccruedMinor, retry.AvailableAfterMinor));
            await AssertBalanceAsync(member, account);

            // A new activation: snapshot (written at deactivation) plus the rows after it.
            await fixture.Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
            await AssertBalanceAsync(member, account);
        }
    }

    private async Task AssertBalanceAsync(string member, MemberAccount account)
    {
        var balance = await fixture.Grains.MemberGrain(member).GetBalance();
        Assert.Equal((account.State.AvailableMinor, account.State.PendingMinor, account.State.Sequence), (balance.AvailableMinor, balance.PendingMinor, balance.Sequence));
    }
}
