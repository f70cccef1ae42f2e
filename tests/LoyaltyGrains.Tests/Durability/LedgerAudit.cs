using Grpc.Core;
using Grpc.Net.Client;
using LoyaltyGrains.Gateway.V1;
using Npgsql;

namespace LoyaltyGrains.Tests.Durability;

/// <summary>
/// The durability promise checked after a run: every acknowledged message is in the ledger exactly once (0 lost,
/// 0 doubled), a retry of each is DUPLICATE with the figures first acknowledged, every member's balance as the engine
/// reports it equals the sums of its ledger rows, and the operators' loyalty.check_ledger() finds nothing.
/// </summary>
public sealed record LedgerAudit(int Acknowledged, int Lost, int Doubled, int RetriesNotIdentical, int BalanceMismatches,
    IReadOnlyList<(string MemberId, string Problem)> Violations, IReadOnlyList<string> Examples)
{
    private const int ExamplesMax = 10;
    private static readonly TimeSpan CallDeadline = TimeSpan.FromSeconds(10);
    /// <summary>
    /// The whole audit's time through the silo: an engine that stopped answering fails the audit, it does not hang it.
    /// At least 90 s, and more for a run that acknowledged many messages (every one is retried; a retry older than the
    /// member's memory reads its ledger row), so a fast run on a quiet machine is not failed for its own throughput.
    /// </summary>
    private static TimeSpan BudgetFor(int acknowledged) => TimeSpan.FromSeconds(Math.Max(90, acknowledged / RetriesPerSecondAssumed));

    /// <summary>A slow retry rate (a loaded two-core machine does several times more): only the budget's size depends on it.</summary>
    private const int RetriesPerSecondAssumed = 200;

    public bool IsClean => Lost == 0 && Doubled == 0 && RetriesNotIdentical == 0 && BalanceMismatches == 0 && Violations.Count == 0;

    public string Summary => $"acknowledged {Acknowledged}, lost {Lost}, doubled {Doubled}, retries not DUPLICATE-identical {RetriesNotIdentical}, " +
        $"balance mismatches {BalanceMismatches}, loyalty.check_ledger() violations {Violations.Count}";

    /// <summary>One assertion with every figure and the first few examples, plus what the caller adds (e.g. the silo's log).</summary>
    public void AssertClean(string context) =>
        Assert.True(IsClean, $"the ledger audit failed: {Summary}\nexamples:\n  {string.Join("\n  ", Examples.Concat(Violations.Take(ExamplesMax).Select(v => $"check_ledger: {v.MemberId}: {v.Problem}")))}\n{context}");

    /// <summary>Audits through the silo on <paramref name="channel"/> (replies, balances) and the database itself (the ledger).</summary>
    public static async Task<LedgerAudit> RunAsync(GrpcChannel channel, string connectionString, IReadOnlyList<LoadMember> members, IReadOnlyCollection<Acknowledged> acknowledged)
    {
        var budget = System.Diagnostics.Stopwatch.StartNew();
        var auditBudget = BudgetFor(acknowledged.Count);
        // Each call's deadline, or null once the budget is spent (that check then counts as failed, unmade).
        DateTime? Deadline() => auditBudget - budget.Elapsed is { Ticks: > 0 } left ? DateTime.UtcNow + (left < CallDeadline ? left : CallDeadline) : null;
        var examples = new List<string>();
        void Example(string text)
        {
            lock (examples)
            {
                if (examples.Count < ExamplesMax) examples.Add(text);
            }
        }

        var ledger = await LedgerRowsAsync(connectionString, members);
        var lost = 0;
        foreach (var message in acknowledged.Where(a => !ledger.Ids.Contains(a.TransactionId)))
        {
            lost++;
            Example($"lost: {message.TransactionId} was acknowledged {message.Reply.Status} but is not in the ledger");
        }
        foreach (var (id, rows) in ledger.Doubled) Example($"doubled: {id} is in the ledger {rows} times");

        // Per member in parallel, each member's messages in order: as many callers as the load had, no more.
        var processing = new Processing.ProcessingClient(channel);
        var retriesWrong = 0;
        await Task.WhenAll(acknowledged.GroupBy(a => a.MemberId).Select(async messages =>
        {
            foreach (var message in messages)
            {
                var wrong = Deadline() is { } deadline ? await RetryProblemAsync(processing, message, deadline) : $"not retried: the audit's {auditBudget.TotalSeconds:0} s were spent";
                if (wrong is null) continue;
                Interlocked.Increment(ref retriesWrong);
                Example($"retry of {message.TransactionId}: {wrong}");
            }
        }));

        var balances = new Balances.BalancesClient(channel);
        var mismatches = 0;
        foreach (var member in members)
        {
            var sums = ledger.Sums.GetValueOrDefault(member.MemberId);
            string? problem;
            try
            {
                if (Deadline() is not { } deadline) throw new RpcException(new Status(StatusCode.DeadlineExceeded, "the audit's time was spent"));
                var balance = await balances.GetBalanceAsync(new GetBalanceRequest { MemberId = member.MemberId }, deadline: deadline);
                problem = balance.AvailableMinor == sums.Available && balance.PendingMinor == sums.Pending
                    ? null
                    : $"engine says available {balance.AvailableMinor} pending {balance.PendingMinor}, its ledger rows sum to {sums.Available} and {sums.Pending}";
            }
            catch (RpcException ex)
            {
                problem = $"GetBalance failed with {ex.StatusCode}";
            }
            if (problem is null) continue;
            mismatches++;
            Example($"balance of {member.MemberId}: {problem}");
        }

        var violations = await LedgerChecks.ViolationsAsync(connectionString);
        return new LedgerAudit(acknowledged.Count, lost, ledger.Doubled.Count, retriesWrong, mismatches, violations, examples);
    }

    /// <summary>Null when a retry is DUPLICATE with the acknowledged figures; otherwise what it was instead.</summary>
    private static async Task<string?> RetryProblemAsync(Processing.ProcessingClient processing, Acknowledged message, DateTime deadline)
    {
        PostingReply again;
        try
        {
            again = await message.Send(processing, deadline);
        }
        catch (RpcException ex)
        {
            return $"failed with {ex.StatusCode} ({ex.Status.Detail})";
        }
        var first = message.Reply;
        return again.Status == PostingStatus.Duplicate && again.AccruedMinor == first.AccruedMinor && again.AvailableMinor == first.AvailableMinor
            && again.PendingMinor == first.PendingMinor
            ? null
            : $"{again.Status} accrued {again.AccruedMinor} available {again.AvailableMinor} pending {again.PendingMinor}, " +
              $"first {first.Status} accrued {first.AccruedMinor} available {first.AvailableMinor} pending {first.PendingMinor}";
    }

    private sealed record LedgerRows(HashSet<string> Ids, Dictionary<string, int> Doubled, Dictionary<string, (long Available, long Pending)> Sums);

    /// <summary>The members' rows as PostgreSQL has them: what survived is what counts, whatever the engine remembers.</summary>
    private static async Task<LedgerRows> LedgerRowsAsync(string connectionString, IReadOnlyList<LoadMember> members)
    {
        var ids = new HashSet<string>();
        var doubled = new Dictionary<string, int>();
        var sums = new Dictionary<string, (long, long)>();
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        var memberIds = members.Select(m => m.MemberId).ToArray();
        await using (var rows = new NpgsqlCommand("SELECT message_id, count(*) FROM loyalty.ledger WHERE member_id = ANY($1) GROUP BY message_id", connection))
        {
            rows.Parameters.Add(new NpgsqlParameter { Value = memberIds });
            await using var reader = await rows.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                ids.Add(reader.GetString(0));
                if (reader.GetInt64(1) > 1) doubled[reader.GetString(0)] = (int)reader.GetInt64(1);
            }
        }
        await using (var totals = new NpgsqlCommand(
            "SELECT member_id, sum(available_delta_minor)::bigint, sum(pending_delta_minor)::bigint FROM loyalty.ledger WHERE member_id = ANY($1) GROUP BY member_id",
            connection))
        {
            totals.Parameters.Add(new NpgsqlParameter { Value = memberIds });
            await using var reader = await totals.ExecuteReaderAsync();
            while (await reader.ReadAsync()) sums[reader.GetString(0)] = (reader.GetInt64(1), reader.GetInt64(2));
        }
        return new LedgerRows(ids, doubled, sums);
    }
}
