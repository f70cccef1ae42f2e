using System.Collections.Concurrent;
using System.Diagnostics;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LoyaltyGrains.Gateway.V1;
using Xunit.Abstractions;

namespace LoyaltyGrains.Tests.Durability;

/// <summary>
/// The durability promise, tested as an operator would see it: the real silo on PostgreSQL, 64 concurrent processors
/// posting authorize+capture, kill -9 mid-load, restart, then every acknowledged message must be in the ledger once
/// (0 lost, 0 doubled), every retry of an acknowledged message must be DUPLICATE with the same figures, and balances
/// must equal the ledger.
/// </summary>
[Collection(ProcessesCollection.Name)]
public sealed class CrashTests(ITestOutputHelper output)
{
    private const int Workers = 64;
    private static readonly TimeSpan LoadBeforeKill = TimeSpan.FromSeconds(4);
    private static readonly TimeSpan ServeTimeout = TimeSpan.FromSeconds(45);

    private sealed record Acked(string TransactionId, string MemberId, PostingReply Reply, Func<Processing.ProcessingClient, Task<PostingReply>> Retry);

    [Fact]
    public async Task Kill_9_under_load_loses_nothing_acknowledged_and_doubles_nothing()
    {
        await using var database = await TestDatabase.CreateAsync("crash");
        var ports = SiloProcess.FreePorts();
        var (silo, firstStart) = await SiloProcess.StartAsync(database.ConnectionString, ports, ServeTimeout);
        var acked = new ConcurrentBag<Acked>();
        var unknown = new ConcurrentBag<string>();
        var members = Enumerable.Range(0, Workers).Select(i => ($"crash-m{i}", $"crash-c{i}")).ToArray();
        var at = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-1));
        try
        {
            var admin = new Admin.AdminClient(silo.Channel);
            foreach (var (member, card) in members)
            {
                await admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = member });
                await admin.IssueCardAsync(new IssueCardRequest { CardId = card, MemberId = member });
            }

            using var stop = new CancellationTokenSource();
            var processing = new Processing.ProcessingClient(silo.Channel);
            var load = Enumerable.Range(0, Workers).Select(w => Task.Run(async () =>
            {
                var (member, card) = members[w];
                for (var n = 0; !stop.IsCancellationRequested; n++)
                {
                    var authorize = new AuthorizeRequest
                    {
                        TransactionId = $"w{w}-{n}", CardId = card, AmountMinor = 10_000 + n, Currency = "RUB", Mcc = 5411, MerchantId = "shop", OccurredAt = at,
                    };
                    var capture = new CaptureRequest { TransactionId = $"w{w}-{n}-c", AuthorizationId = authorize.TransactionId, CardId = card, AmountMinor = 10_000 + n, OccurredAt = at };
                    if (!await Post(authorize.TransactionId, member, c => c.AuthorizeAsync(authorize).ResponseAsync)) break;
                    if (!await Post(capture.TransactionId, member, c => c.CaptureAsync(capture).ResponseAsync)) break;
                }
            })).ToArray();

            async Task<bool> Post(string id, string member, Func<Processing.ProcessingClient, Task<PostingReply>> send)
            {
                try
                {
                    acked.Add(new Acked(id, member, await send(processing), send));
                    return true;
                }
                catch (RpcException)
                {
                    unknown.Add(id); // the outcome is unknown to the processor: it would retry
                    return false;
                }
            }

            await Task.Delay(LoadBeforeKill);
            var ackedAtKill = acked.Count;
            silo.KillHard();
            await stop.CancelAsync();
            await Task.WhenAll(load);
            Record($"killed with {ackedAtKill} acknowledged ({acked.Count} by the time every worker saw the failure), {unknown.Count} unknown");
            Assert.True(acked.Count > Workers * 4, $"too little load before the kill: {acked.Count} acknowledged");
        }
        finally
        {
            await silo.DisposeAsync();
        }

        var (restarted, restartTime) = await SiloProcess.StartAsync(database.ConnectionString, ports, ServeTimeout);
        await using (restarted)
        {
            Record($"first start {firstStart.TotalSeconds:0.0} s; serving again {restartTime.TotalSeconds:0.0} s after restart");
            var processing = new Processing.ProcessingClient(restarted.Channel);
            var balances = new Balances.BalancesClient(restarted.Channel);

            // Every acknowledged message is in its member's ledger exactly once.
            var ledgerIds = new Dictionary<string, List<string>>();
            foreach (var (member, _) in members) ledgerIds[member] = await StatementIdsAsync(balances, member);
            var lost = acked.Count(a => !ledgerIds[a.MemberId].Contains(a.TransactionId));
            var doubled = ledgerIds.Values.Sum(ids => ids.Count - ids.Distinct().Count());

            // A retry of an acknowledged message is DUPLICATE with the original figures.
            var retriedWrong = 0;
            foreach (var message in acked)
            {
                var again = await message.Retry(processing);
                if (again.Status != PostingStatus.Duplicate || again.AccruedMinor != message.Reply.AccruedMinor
                    || again.AvailableMinor != message.Reply.AvailableMinor || again.PendingMinor != message.Reply.PendingMinor)
                {
                    retriedWrong++;
                }
            }

            // Balances equal the sums of the ledger.
            var balanceMismatches = 0;
            foreach (var (member, _) in members)
            {
                var balance = await balances.GetBalanceAsync(new GetBalanceRequest { MemberId = member });
                var (available, pending) = await StatementSumsAsync(balances, member);
                if (balance.AvailableMinor != available || balance.PendingMinor != pending) balanceMismatches++;
            }
            // And the operators' SQL check agrees: sequences without gaps, balances equal the sums of the rows.
            var violations = await LedgerChecks.ViolationsAsync(database.ConnectionString);
            Record($"acknowledged {acked.Count}, lost {lost}, doubled {doubled}, retries not DUPLICATE-identical {retriedWrong}, " +
                $"balance mismatches {balanceMismatches}, unknown outcomes {unknown.Count}, loyalty.check_ledger() violations {violations.Count}");
            Assert.Empty(violations);
            Assert.Equal(0, lost);
            Assert.Equal(0, doubled);
            Assert.Equal(0, retriedWrong);
            Assert.Equal(0, balanceMismatches);
            Assert.True(restartTime < TimeSpan.FromSeconds(15), $"serving again took {restartTime}");
        }
    }

    private static async Task<List<string>> StatementIdsAsync(Balances.BalancesClient balances, string member)
    {
        var ids = new List<string>();
        var token = "";
        do
        {
            var page = await balances.GetStatementAsync(new GetStatementRequest { MemberId = member, PageSize = 200, PageToken = token });
            ids.AddRange(page.Entries.Select(e => e.TransactionId));
            token = page.NextPageToken;
        }
        while (token.Length > 0);
        return ids;
    }

    private static async Task<(long Available, long Pending)> StatementSumsAsync(Balances.BalancesClient balances, string member)
    {
        long available = 0, pending = 0;
        var token = "";
        do
        {
            var page = await balances.GetStatementAsync(new GetStatementRequest { MemberId = member, PageSize = 200, PageToken = token });
            available += page.Entries.Sum(e => e.AvailableDeltaMinor);
            pending += page.Entries.Sum(e => e.PendingDeltaMinor);
            token = page.NextPageToken;
        }
        while (token.Length > 0);
        return (available, pending);
    }

    /// <summary>Test output, and a line in $LOYALTY_TEST_SUMMARY when set (scripts/test.sh prints it, so CI's log has the counts).</summary>
    private void Record(string line)
    {
        output.WriteLine(line);
        if (Environment.GetEnvironmentVariable("LOYALTY_TEST_SUMMARY") is { Length: > 0 } summary) File.AppendAllText(summary, $"crash test: {line}{Environment.NewLine}");
    }
}
