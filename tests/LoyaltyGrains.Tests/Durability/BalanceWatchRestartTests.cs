using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LoyaltyGrains.Gateway.V1;
using Xunit.Abstractions;

namespace LoyaltyGrains.Tests.Durability;

/// <summary>
/// WatchBalance across a crash, as a mobile app sees it: watching, the silo is killed -9 and restarted, the app
/// reconnects; its first message is the balance as committed before the crash, and then every later change arrives,
/// each equal to what GetBalance answers after it.
/// </summary>
[Collection(ProcessesCollection.Name)]
public sealed class BalanceWatchRestartTests(ITestOutputHelper output)
{
    private const int ChangesAfterRestart = 6;
    private static readonly TimeSpan ServeTimeout = TimeSpan.FromSeconds(45);
    private static readonly TimeSpan MessageTimeout = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task A_watcher_reconnecting_after_kill_9_sees_the_committed_balance_then_every_change()
    {
        await using var database = await TestDatabase.CreateAsync("watch");
        var ports = SiloProcess.FreePorts();
        const string member = "watch-m1", card = "watch-c1";

        Balance beforeKill;
        var (silo, _) = await SiloProcess.StartAsync(database.ConnectionString, ports, ServeTimeout);
        await using (silo)
        {
            var admin = new Admin.AdminClient(silo.Channel);
            await admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = member });
            await admin.IssueCardAsync(new IssueCardRequest { CardId = card, MemberId = member });
            var processing = new Processing.ProcessingClient(silo.Channel);
            var balances = new Balances.BalancesClient(silo.Channel);

            using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            using var watch = balances.WatchBalance(new GetBalanceRequest { MemberId = member }, cancellationToken: cancel.Token);
            var first = await NextAsync(watch, cancel.Token);
            Assert.Equal((0L, 0L), (first.AvailableMinor, first.PendingMinor));
            await PurchaseAsync(processing, card, "before", 250_000);
            // Authorization, then capture: two changes, in order.
            Assert.True((await NextAsync(watch, cancel.Token)).PendingMinor > 0);
            beforeKill = await NextAsync(watch, cancel.Token);
            Assert.Equal(await balances.GetBalanceAsync(new GetBalanceRequest { MemberId = member }), beforeKill);
            Assert.True(beforeKill.AvailableMinor > 0);

            silo.KillHard();
            var broken = await Assert.ThrowsAsync<RpcException>(async () => await NextAsync(watch, cancel.Token));
            output.WriteLine($"watch after kill -9: {broken.StatusCode}");
        }

        var (restarted, startTime) = await SiloProcess.StartAsync(database.ConnectionString, ports, ServeTimeout);
        await using (restarted)
        {
            var processing = new Processing.ProcessingClient(restarted.Channel);
            var balances = new Balances.BalancesClient(restarted.Channel);
            using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(90));
            using var watch = balances.WatchBalance(new GetBalanceRequest { MemberId = member }, cancellationToken: cancel.Token);
            var current = await NextAsync(watch, cancel.Token);
            Assert.Equal(beforeKill, current);

            var seen = new List<Balance> { current };
            for (var n = 0; n < ChangesAfterRestart; n++)
            {
                // One change at a time: each must arrive on the watch, equal to the balance GetBalance then reads.
                if (n % 2 == 0) await AuthorizeAsync(processing, card, $"after{n}", 100_000 + n);
                else await CaptureAsync(processing, card, $"after{n - 1}", 100_000 + n - 1);
                var pushed = await NextAsync(watch, cancel.Token);
                Assert.Equal(await balances.GetBalanceAsync(new GetBalanceRequest { MemberId = member }), pushed);
                Assert.NotEqual(seen[^1], pushed);
                seen.Add(pushed);
            }
            output.WriteLine($"restarted silo serving after {startTime.TotalSeconds:0.0} s; after reconnecting the watcher saw the committed balance " +
                $"(available {beforeKill.AvailableMinor}) and then all {ChangesAfterRestart} changes in order, ending at available " +
                $"{seen[^1].AvailableMinor}, pending {seen[^1].PendingMinor}");
        }
    }

    private static async Task<Balance> NextAsync(AsyncServerStreamingCall<Balance> watch, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(MessageTimeout);
        Assert.True(await watch.ResponseStream.MoveNext(timeout.Token), "the watch ended");
        return watch.ResponseStream.Current;
    }

    private static async Task PurchaseAsync(Processing.ProcessingClient processing, string card, string id, long amount)
    {
        await AuthorizeAsync(processing, card, id, amount);
        await CaptureAsync(processing, card, id, amount);
    }

    private static Task AuthorizeAsync(Processing.ProcessingClient processing, string card, string id, long amount) =>
        processing.AuthorizeAsync(new AuthorizeRequest
        {
            TransactionId = id, CardId = card, AmountMinor = amount, Currency = "RUB", Mcc = 5411, MerchantId = "shop",
            OccurredAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-1)),
        }).ResponseAsync;

    private static Task CaptureAsync(Processing.ProcessingClient processing, string card, string id, long amount) =>
        processing.CaptureAsync(new CaptureRequest
        {
            TransactionId = id + "-c", AuthorizationId = id, CardId = card, AmountMinor = amount,
            OccurredAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-1)),
        }).ResponseAsync;
}
