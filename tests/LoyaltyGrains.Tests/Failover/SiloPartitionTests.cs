using System.Globalization;
using LoyaltyGrains.Tests.Durability;
using LoyaltyGrains.Tests.Faults;
using Npgsql;
using Xunit.Abstractions;

namespace LoyaltyGrains.Tests.Failover;

/// <summary>
/// Three silos, one of them in its own network namespace, 32 processors posting through all three; then that silo's
/// link to its peers is cut while its link to PostgreSQL stays. The two others declare it dead and it leaves (its
/// process ends) once it reads so in the membership table. Meanwhile a member may be active on both sides of the cut:
/// whichever activation appends second is refused by the ledger (its sequence is taken) and reloads, so the audit
/// finds nothing lost, nothing doubled, every retry DUPLICATE-identical and balances equal to the ledger.
/// </summary>
[Collection(FailoverCollection.Name)]
public sealed class SiloPartitionTests(ITestOutputHelper output)
{
    private const int Workers = 32;
    private const int SiloStatusActive = 3;
    private const int SiloStatusDead = 6;
    private static readonly TimeSpan LoadBeforeCut = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan LoadAfterLeaving = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Orleans' default membership timing (missed probes and two votes to declare it dead, then the dead silo's own read
    /// of the table) took 64 s and ~95 s on a 2-core box with other builds running; this bound only stops a silo that
    /// never leaves.
    /// </summary>
    private static readonly TimeSpan LeaveBound = TimeSpan.FromSeconds(150);

    [Fact]
    public async Task Silo_cut_off_from_its_peers_but_not_from_the_database_leaves_and_no_member_is_decided_twice()
    {
        await using var network = await SiloNetwork.CreateAsync();
        await using var database = await PostgresServer.StartAsync(settings: [$"listen_addresses='127.0.0.1,{network.DatabaseHostAddress}'"]);
        await database.AllowHostsAsync(network.DatabaseCidr);
        var outside = new Dictionary<string, string> { ["LOYALTY_ADVERTISED_ADDRESS"] = network.SiloHostAddress };
        await using var first = (await SiloProcess.StartAsync(database.ConnectionString, SiloProcess.FreePorts(), SiloProcess.StartTimeout, outside)).Silo;
        await using var second = (await SiloProcess.StartAsync(database.ConnectionString, SiloProcess.FreePorts(), SiloProcess.StartTimeout, outside)).Silo;
        var fromNamespace = new NpgsqlConnectionStringBuilder(database.ConnectionString) { Host = network.DatabaseHostAddress }.ConnectionString;
        var cutOffPorts = SiloProcess.FreePorts();
        await using var cutOff = SiloProcess.LaunchInNamespace(network.Namespace, network.NamespaceAddress, fromNamespace, cutOffPorts,
            new Dictionary<string, string> { ["LOYALTY_ADVERTISED_ADDRESS"] = network.SiloNamespaceAddress });
        await cutOff.WaitUntilServingAsync(SiloProcess.StartTimeout);
        await WaitForAsync(async () => (await MembershipAsync(database.ConnectionString)).Count(m => m.Status == SiloStatusActive) == 3, TimeSpan.FromSeconds(60),
            "three active silos");

        var members = await LoadDriver.EnrollAsync(first.Channel, "part", Workers);
        await using var load = new LoadDriver([first.Channel, second.Channel, cutOff.Channel], members, FaultRun.CallDeadline);
        load.Start();
        await Task.Delay(LoadBeforeCut);
        var acknowledgedBefore = load.Acknowledged.Count;
        await network.CutSiloLinkAsync();
        var cutAt = load.Elapsed;

        TimeSpan? declaredDeadAt = null, exitedAt = null;
        var deadline = cutAt + LeaveBound;
        while (load.Elapsed < deadline && exitedAt is null)
        {
            if (declaredDeadAt is null && (await MembershipAsync(database.ConnectionString))
                    .Any(m => m.Port == cutOffPorts.Silo && m.Address == network.SiloNamespaceAddress && m.Status == SiloStatusDead))
                declaredDeadAt = load.Elapsed - cutAt;
            if (cutOff.HasExited) exitedAt = load.Elapsed - cutAt;
            await Task.Delay(250);
        }
        var leftAt = load.Elapsed;
        await Task.Delay(LoadAfterLeaving);
        var recoveredMembers = FaultRun.MembersAcceptedAfter(load.Attempts, leftAt).Count;
        await load.StopAsync(TimeSpan.FromSeconds(5));

        var refusedByLedger = SequenceConflicts(first) + SequenceConflicts(second) + SequenceConflicts(cutOff);
        var failures = load.Attempts.Where(a => a.Failure is not null && a.EndedAt >= cutAt).GroupBy(a => a.Failure!.Value).ToDictionary(g => g.Key, g => g.Count());
        var audit = await LedgerAudit.RunAsync(first.Channel, database.ConnectionString, members, load.Acknowledged);
        var line = $"3 silos, one in network namespace {network.Namespace} cut from its peers (not from PostgreSQL) after {LoadBeforeCut.TotalSeconds:0} s of load " +
            $"({acknowledgedBefore} acknowledged by then); " +
            $"declared dead in the membership table after {S(declaredDeadAt)}, its process ended after {S(exitedAt)} (exit code {cutOff.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "none"}); " +
            $"appends refused by the ledger as a second activation's (sequence taken) {refusedByLedger}; statuses after the cut: {Names.Describe(failures)}; " +
            $"{recoveredMembers}/{Workers} members ACCEPTED again after it left; {audit.Summary}; unknown outcomes left {load.Unresolved.Count}";
        TestSummary.Record(output, "silo partition", line);

        var problems = new List<string>();
        if (declaredDeadAt is null) problems.Add($"the cut-off silo was not declared dead within {LeaveBound.TotalSeconds:0} s");
        if (exitedAt is null) problems.Add($"the cut-off silo did not leave (its process still runs {LeaveBound.TotalSeconds:0} s after the cut)");
        if (first.HasExited || second.HasExited) problems.Add("a silo on the majority side exited");
        if (!audit.IsClean) problems.Add($"ledger audit: {audit.Summary}; {string.Join("; ", audit.Examples)}");
        var wrong = failures.Where(f => !FaultRun.RetryStatuses.Contains(f.Key)).ToDictionary(f => f.Key, f => f.Value);
        if (wrong.Count > 0) problems.Add($"callers were told {Names.Describe(wrong)}; acceptable: UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED");
        if (recoveredMembers < Workers) problems.Add($"only {recoveredMembers}/{Workers} members had writes ACCEPTED after the silo left");
        Assert.True(problems.Count == 0, $"{string.Join("\n", problems)}\n{line}\ncut-off silo log:\n{cutOff.LogTail()}\nfirst silo log:\n{first.LogTail(30)}");
    }

    private sealed record MembershipRow(string Address, int Port, int Status);

    private static async Task<List<MembershipRow>> MembershipAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT address, port, status FROM orleansmembershiptable WHERE (address, port, generation) IN " +
            "(SELECT address, port, max(generation) FROM orleansmembershiptable GROUP BY address, port)", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<MembershipRow>();
        while (await reader.ReadAsync()) rows.Add(new MembershipRow(reader.GetString(0), reader.GetInt32(1), reader.GetInt32(2)));
        return rows;
    }

    private static async Task WaitForAsync(Func<Task<bool>> done, TimeSpan timeout, string what)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!await done())
        {
            if (clock.Elapsed > timeout) throw new TimeoutException($"waited {timeout.TotalSeconds:0} s for {what}");
            await Task.Delay(500);
        }
    }

    private static int SequenceConflicts(SiloProcess silo) => silo.LogLinesMatching(l => l.Contains("(sequence conflict)", StringComparison.Ordinal)).Count;

    private static string S(TimeSpan? time) => time is { } t ? $"{t.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s" : "never";
}
