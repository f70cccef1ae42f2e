using System.Collections.Concurrent;
using Grpc.Core;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.LoadTests;

public sealed record Verdict(bool Passed, int MembersChecked, int StatementsChecked, long DuplicatesChecked, int UnknownResolved, int UnknownUnresolved,
    long ProblemCount, IReadOnlyList<string> Problems);

/// <summary>
/// After a run (every reply in, unknown outcomes resolved): every member's balance, and a sample of members'
/// statements summed page by page, must equal what the replies imply. Members the run never touched must be 0/0.
/// </summary>
public static class Correctness
{
    public static async Task<Verdict> CheckAsync(Engine engine, int unfinished, Action<string> progress, CancellationToken cancellation)
    {
        var (resolved, unresolved) = await engine.Expect.ResolveUnknownAsync(engine, progress, cancellation);
        progress($"reading {engine.Members:N0} balances and {Math.Min(engine.Options.StatementSampleMembers, engine.Members)} statements");
        var mismatches = new ConcurrentBag<(int Member, string Text)>();
        await Parallel.ForEachAsync(Enumerable.Range(0, engine.Members), new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = cancellation }, async (m, ct) =>
        {
            try
            {
                var balance = await Engine.WithRetries(() => engine.Balances(m).GetBalanceAsync(new GetBalanceRequest { MemberId = engine.MemberId(m) },
                    deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: ct).ResponseAsync, ct);
                var (available, pending) = engine.Expect.Expected(m);
                if (balance.AvailableMinor != available || balance.PendingMinor != pending)
                {
                    mismatches.Add((m, $"{engine.MemberId(m)}: balance available/pending {balance.AvailableMinor}/{balance.PendingMinor}, replies imply {available}/{pending}"));
                }
            }
            catch (RpcException ex)
            {
                mismatches.Add((m, $"{engine.MemberId(m)}: GetBalance failed: {Arrival.StatusName(ex.StatusCode)} {ex.Status.Detail}"));
            }
        });

        // Statements: the members with the most activity are the likeliest to show a lost or doubled entry, but any
        // sample works because every member is balance-checked above; take an even spread over the member range.
        var sample = Math.Min(engine.Options.StatementSampleMembers, engine.Members);
        var statements = 0;
        for (var k = 0; k < sample; k++)
        {
            var m = (int)((long)k * engine.Members / Math.Max(1, sample));
            try
            {
                long available = 0, pending = 0;
                var token = "";
                var pages = 0;
                do
                {
                    var page = await Engine.WithRetries(() => engine.Balances(m).GetStatementAsync(new GetStatementRequest { MemberId = engine.MemberId(m), PageSize = 200, PageToken = token },
                        deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: cancellation).ResponseAsync, cancellation);
                    foreach (var entry in page.Entries)
                    {
                        available += entry.AvailableDeltaMinor;
                        pending += entry.PendingDeltaMinor;
                    }
                    token = page.NextPageToken;
                }
                while (token.Length > 0 && ++pages < 10_000);
                statements++;
                var expected = engine.Expect.Expected(m);
                if (available != expected.AvailableMinor || pending != expected.PendingMinor)
                {
                    mismatches.Add((m, $"{engine.MemberId(m)}: statement sums available/pending {available}/{pending}, replies imply {expected.AvailableMinor}/{expected.PendingMinor}"));
                }
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unimplemented)
            {
                progress("GetStatement is UNIMPLEMENTED: statements not checked");
                break;
            }
            catch (RpcException ex)
            {
                mismatches.Add((m, $"{engine.MemberId(m)}: GetStatement failed: {Arrival.StatusName(ex.StatusCode)} {ex.Status.Detail}"));
            }
        }

        var problems = new List<string>(engine.Expect.Problems);
        problems.AddRange(mismatches.OrderBy(x => x.Member).Select(x => x.Text));
        if (unfinished > 0) problems.Add($"{unfinished} arrivals were still without a reply after the drain");
        var problemCount = engine.Expect.ProblemCount + mismatches.Count + (unfinished > 0 ? 1 : 0);
        return new Verdict(problemCount == 0, engine.Members, statements, engine.Expect.DuplicatesChecked, resolved, unresolved, problemCount, problems);
    }
}
