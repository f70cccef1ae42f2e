using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.LoadTests;

/// <summary>After a run: every member's balance, and a sample of members' ledgers, must equal what the replies imply.</summary>
public static class Correctness
{
    public const int LedgerSampleMembers = 100;

    public static async Task<(bool Passed, int MembersChecked, int LedgersChecked, List<string> Problems)> CheckAsync(Engine engine)
    {
        var problems = new List<string>(engine.Expect.Problems);
        var members = engine.Expect.Members.Order(StringComparer.Ordinal).ToArray();
        var mismatches = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await Parallel.ForEachAsync(members, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (member, ct) =>
        {
            var balance = await engine.Balances(0).GetBalanceAsync(new GetBalanceRequest { MemberId = member }, cancellationToken: ct);
            var (available, pending) = engine.Expect.Expected(member);
            if (balance.AvailableMinor != available || balance.PendingMinor != pending)
            {
                mismatches.Enqueue($"{member}: balance {balance.AvailableMinor}/{balance.PendingMinor} (available/pending), replies imply {available}/{pending}");
            }
        });
        var sample = members.Take(LedgerSampleMembers).ToArray();
        foreach (var member in sample)
        {
            long available = 0, pending = 0;
            var token = "";
            do
            {
                var page = await engine.Balances(0).GetStatementAsync(new GetStatementRequest { MemberId = member, PageSize = 200, PageToken = token });
                available += page.Entries.Sum(e => e.AvailableDeltaMinor);
                pending += page.Entries.Sum(e => e.PendingDeltaMinor);
                token = page.NextPageToken;
            }
            while (token.Length > 0);
            var expected = engine.Expect.Expected(member);
            if (available != expected.Available || pending != expected.Pending)
            {
                mismatches.Enqueue($"{member}: ledger sums {available}/{pending}, replies imply {expected.Available}/{expected.Pending}");
            }
        }
        problems.AddRange(mismatches);
        return (problems.Count == 0, members.Length, sample.Length, problems);
    }
}
