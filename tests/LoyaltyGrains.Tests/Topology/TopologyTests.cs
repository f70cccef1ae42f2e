using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LoyaltyGrains.Gateway.V1;
using LoyaltyGrains.Tests.Durability;
using LoyaltyGrains.Tests.Faults;
using Npgsql;
using Xunit.Abstractions;

namespace LoyaltyGrains.Tests.Topology;

/// <summary>
/// The cluster as operators run it (3 silos, 2 gateways, processors posting through both gateways) losing a node and
/// being restarted node by node. Afterwards nothing acknowledged is lost or doubled (the ledger audit), callers were
/// only told "outcome unknown, retry" (UNAVAILABLE, DEADLINE_EXCEEDED), and a lost node's members serve again from the
/// other silos within 30 s.
/// </summary>
[Collection(ProcessesCollection.Name)]
public sealed class TopologyTests(ITestOutputHelper output)
{
    /// <summary>The requirement: every member has an ACCEPTED write again within this long after its silo is killed.</summary>
    public static readonly TimeSpan ServeAgainBound = TimeSpan.FromSeconds(30);

    private const int Workers = 24;
    private const int FreshMembers = 12;
    private const int KilledSilo = 1;
    /// <summary>5% on the load's MCC with a budget of about 800 of its purchases: spent from leases on every silo, one of them killed.</summary>
    private const int CampaignRateBps = 500;
    private const long CampaignBudgetMinor = 400_000;
    /// <summary>
    /// Each processor's pause between purchases: steady load on every silo, yet few enough messages that the audit (a
    /// retry of each) and five engine processes fit this shared two-core box.
    /// </summary>
    private static readonly TimeSpan Pace = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan LoadBefore = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan LoadAfter = TimeSpan.FromSeconds(3);
    /// <summary>Past the last restart, how long every member may take to be ACCEPTED again before that counts as a failure.</summary>
    private static readonly TimeSpan AcceptedAfterRestart = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan Drain = TimeSpan.FromSeconds(5);
    /// <summary>Within Kubernetes' default 30 s grace plus margin, as the shutdown test bounds it.</summary>
    private static readonly TimeSpan ExitBound = TimeSpan.FromSeconds(40);
    /// <summary>What a caller may be told while a node goes or comes: the outcome is unknown, retry with the same transaction id.</summary>
    private static readonly StatusCode[] RetryStatuses = [StatusCode.Unavailable, StatusCode.DeadlineExceeded];

    [Fact]
    public async Task Silo_killed_under_load_its_members_serve_again_within_30_s_and_it_rejoins()
    {
        await using var cluster = await TopologyCluster.StartAsync("nodeloss");
        var gateway = cluster.GatewayChannels[0];
        const string campaign = "nodeloss-budget";
        await new Admin.AdminClient(gateway).UpsertCampaignAsync(new Campaign
        {
            CampaignId = campaign, Name = "Budget across silos", RateBps = CampaignRateBps, Mccs = { 5411 }, BudgetMinor = CampaignBudgetMinor,
            StartsAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(-1)), EndsAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(30)),
        }, deadline: DateTime.UtcNow.AddSeconds(30));
        await using var load = new LoadDriver(cluster.GatewayChannels, await LoadDriver.EnrollAsync(gateway, "nodeloss", Workers), FaultRun.CallDeadline) { Pace = Pace };
        load.Start();
        await Task.Delay(LoadBefore);

        var killed = cluster.Silos[KilledSilo];
        var acknowledgedAtKill = load.Acknowledged.Count;
        var killAt = load.Elapsed;
        killed.KillHard();
        var killedExit = killed.ExitCode;
        // Past the bound by a margin, so a slow recovery is measured rather than cut off at exactly the bound.
        await load.WaitUntilAsync(l => FaultRun.MembersAcceptedAfter(l.Attempts, killAt).Count == Workers, ServeAgainBound + TimeSpan.FromSeconds(5));
        var lossEnd = load.Elapsed;
        var served = FaultRun.MembersAcceptedAfter(load.Attempts, killAt);
        TimeSpan? serveAgain = served.Count == Workers ? served.Values.Max() - killAt : null;
        var killedLog = killed.LogTail();

        var restartAt = load.Elapsed;
        var restartTook = await cluster.RestartSiloAsync(KilledSilo);
        var joined = await cluster.AssertAllActiveAsync(TopologyCluster.JoinTimeout);
        var rejoinedAt = load.Elapsed;
        // Members enrolled now are placed anywhere, the rejoined silo included: its own postings show calls reach it.
        await using var fresh = new LoadDriver(cluster.GatewayChannels, await LoadDriver.EnrollAsync(gateway, "nodeloss-fresh", FreshMembers), FaultRun.CallDeadline) { Pace = Pace };
        fresh.Start();
        await Task.Delay(LoadAfter);
        await load.WaitUntilAsync(l => FaultRun.MembersAcceptedAfter(l.Attempts, rejoinedAt).Count == Workers, AcceptedAfterRestart);
        var acceptedAfterRejoin = FaultRun.MembersAcceptedAfter(load.Attempts, rejoinedAt).Count;
        var freshAccepted = FaultRun.MembersAcceptedAfter(fresh.Attempts, TimeSpan.Zero).Count;
        var postingsOnRejoined = await cluster.PostingsOnSiloAsync(KilledSilo);
        await Task.WhenAll(load.StopAsync(Drain), fresh.StopAsync(Drain));

        var audit = await LedgerAudit.RunAsync(gateway, cluster.Database.ConnectionString, [.. load.Members, .. fresh.Members],
            [.. load.Acknowledged, .. fresh.Acknowledged]);
        var campaignSpent = await CampaignAuthorizedAsync(cluster.Database.ConnectionString, campaign);
        var attempts = load.Attempts.Concat(fresh.Attempts).ToList();
        var duringLoss = Failures(attempts.Where(a => a.EndedAt >= killAt && a.EndedAt <= lossEnd));
        var outsideLoss = Failures(attempts.Where(a => a.EndedAt < killAt || a.EndedAt > lossEnd));
        var affected = load.Attempts.Where(a => a.Failure is not null && a.EndedAt >= killAt && a.EndedAt <= lossEnd).Select(a => a.Worker).Distinct().Count();

        var line = string.Join("; ",
            $"silo {KilledSilo} killed (-9, exit code {killedExit}) after {acknowledgedAtKill} acknowledged",
            audit.Summary,
            $"statuses during the loss: {Names.Describe(duringLoss)}, outside it: {Names.Describe(outsideLoss)}",
            serveAgain is { } s
                ? $"every member ACCEPTED again {Seconds(s)} after the kill ({affected} of {Workers} members saw a failure)"
                : $"only {served.Count}/{Workers} members ACCEPTED again within {Seconds(lossEnd - killAt)} of the kill",
            $"restarted on the same ports: serving {Seconds(restartTook)} after launch, {TopologyCluster.SiloCount} silos active " +
                $"{Seconds(restartTook + joined)} after launch ({Seconds(rejoinedAt - restartAt)} from restart)",
            $"after rejoining: {acceptedAfterRejoin}/{Workers} members and {freshAccepted}/{FreshMembers} new members ACCEPTED, " +
                $"{postingsOnRejoined} postings by the rejoined silo's grains",
            $"campaign budget {CampaignBudgetMinor}, its lines in the ledger's authorizations {campaignSpent}",
            $"unknown outcomes left {load.Unresolved.Count + fresh.Unresolved.Count}");
        Record("node loss", line);

        var problems = new List<string>();
        if (!audit.IsClean) problems.Add($"ledger audit: {audit.Summary}\n  {string.Join("\n  ", audit.Examples)}");
        problems.AddRange(WrongStatuses(duringLoss, "during the loss"));
        problems.AddRange(WrongStatuses(outsideLoss, "outside the loss"));
        if (serveAgain is not { } recovery) problems.Add($"{Workers - served.Count} of {Workers} members had no ACCEPTED write within {Seconds(lossEnd - killAt)} of the kill");
        else if (recovery > ServeAgainBound) problems.Add($"every member ACCEPTED again only {Seconds(recovery)} after the kill (bound {Seconds(ServeAgainBound)})");
        if (acceptedAfterRejoin < Workers) problems.Add($"after the silo rejoined only {acceptedAfterRejoin}/{Workers} members were ACCEPTED again within {Seconds(AcceptedAfterRestart)}");
        if (campaignSpent > CampaignBudgetMinor) problems.Add($"the campaign was overspent: {campaignSpent} granted, budget {CampaignBudgetMinor}");
        if (campaignSpent == 0) problems.Add("the campaign granted nothing, so its budget was not tested");
        if (freshAccepted < FreshMembers) problems.Add($"after the silo rejoined only {freshAccepted}/{FreshMembers} new members were ACCEPTED");
        AssertNone(problems, line, cluster, $"--- killed silo {KilledSilo} (last lines before the kill):\n{killedLog}");
    }

    [Fact]
    public async Task Rolling_restart_under_load_exits_0_each_time_and_loses_nothing()
    {
        await using var cluster = await TopologyCluster.StartAsync("rolling");
        var gateway = cluster.GatewayChannels[0];
        await using var load = new LoadDriver(cluster.GatewayChannels, await LoadDriver.EnrollAsync(gateway, "rolling", Workers), FaultRun.CallDeadline) { Pace = Pace };
        load.Start();
        await Task.Delay(LoadBefore);

        var acknowledgedBefore = load.Acknowledged.Count;
        var rollStart = load.Elapsed;
        var steps = new List<string>();
        var problems = new List<string>();
        var stoppedLogs = new List<string>();
        for (var i = 0; i < TopologyCluster.SiloCount; i++)
        {
            var silo = cluster.Silos[i];
            var termAt = load.Elapsed;
            silo.Terminate();
            var exit = await silo.WaitForExitAsync(ExitBound);
            var drained = load.Elapsed - termAt;
            if (exit is null)
            {
                problems.Add($"silo {i} still ran {Seconds(ExitBound)} after SIGTERM (killed)");
                silo.KillHard();
            }
            else if (exit != 0)
            {
                problems.Add($"silo {i} exited with code {exit} after SIGTERM (expected 0)");
            }
            stoppedLogs.Add($"--- silo {i} before its restart (last lines):\n{silo.LogTail()}");
            var restartAt = load.Elapsed;
            var took = await cluster.RestartSiloAsync(i);
            var joined = await cluster.AssertAllActiveAsync(TopologyCluster.JoinTimeout);
            steps.Add($"silo {i}: exit code {(exit is { } code ? code.ToString(CultureInfo.InvariantCulture) : "none")} {Seconds(drained)} after SIGTERM, " +
                $"serving again {Seconds(took)} and active {Seconds(load.Elapsed - restartAt)} after restart");
        }
        var rollEnd = load.Elapsed;
        await load.WaitUntilAsync(l => FaultRun.MembersAcceptedAfter(l.Attempts, rollEnd).Count == Workers, AcceptedAfterRestart);
        await Task.Delay(LoadAfter);
        var acceptedAfter = FaultRun.MembersAcceptedAfter(load.Attempts, rollEnd).Count;
        await load.StopAsync(Drain);

        var audit = await LedgerAudit.RunAsync(gateway, cluster.Database.ConnectionString, load.Members, load.Acknowledged);
        var duringRoll = Failures(load.Attempts.Where(a => a.EndedAt >= rollStart && a.EndedAt <= rollEnd));
        var outsideRoll = Failures(load.Attempts.Where(a => a.EndedAt < rollStart || a.EndedAt > rollEnd));
        var line = string.Join("; ",
            $"{acknowledgedBefore} acknowledged before the first SIGTERM, roll took {Seconds(rollEnd - rollStart)}",
            string.Join(", ", steps),
            audit.Summary,
            $"statuses during the roll: {Names.Describe(duringRoll)}, outside it: {Names.Describe(outsideRoll)}",
            $"after the roll {acceptedAfter}/{Workers} members ACCEPTED",
            $"unknown outcomes left {load.Unresolved.Count}");
        Record("rolling restart", line);

        if (!audit.IsClean) problems.Add($"ledger audit: {audit.Summary}\n  {string.Join("\n  ", audit.Examples)}");
        problems.AddRange(WrongStatuses(duringRoll, "during the roll"));
        problems.AddRange(WrongStatuses(outsideRoll, "outside the roll"));
        if (acceptedAfter < Workers) problems.Add($"after the roll only {acceptedAfter}/{Workers} members were ACCEPTED again within {Seconds(AcceptedAfterRestart)}");
        AssertNone(problems, line, cluster, string.Join('\n', stoppedLogs));
    }

    /// <summary>
    /// The campaign's lines in authorization rows, as PostgreSQL has them. The load captures in full and never reverses,
    /// so this is what the campaign granted (a capture row repeats the captured share; it is not counted twice).
    /// </summary>
    private static async Task<long> CampaignAuthorizedAsync(string connectionString, string campaignId)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT coalesce(sum((line->>'amountMinor')::bigint), 0)::bigint FROM loyalty.ledger, jsonb_array_elements(breakdown::jsonb) line " +
            "WHERE kind = $1 AND line->>'rule' = $2", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = (short)LoyaltyGrains.Domain.EntryKind.Authorize });
        command.Parameters.Add(new NpgsqlParameter { Value = LoyaltyGrains.Domain.CampaignRule.RulePrefix + campaignId });
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static Dictionary<StatusCode, int> Failures(IEnumerable<Attempt> attempts) =>
        attempts.Where(a => a.Failure is not null).GroupBy(a => a.Failure!.Value).ToDictionary(g => g.Key, g => g.Count());

    /// <summary>Every status that is not "retry", by name and count.</summary>
    private static IEnumerable<string> WrongStatuses(Dictionary<StatusCode, int> failures, string when)
    {
        var wrong = failures.Where(f => !RetryStatuses.Contains(f.Key)).ToDictionary(f => f.Key, f => f.Value);
        if (wrong.Count > 0) yield return $"callers were told {Names.Describe(wrong)} {when}; acceptable: UNAVAILABLE or DEADLINE_EXCEEDED (outcome unknown, retry)";
    }

    /// <summary>Fails with every broken requirement at once, the figures and the processes' logs.</summary>
    private static void AssertNone(List<string> problems, string figures, TopologyCluster cluster, string moreLogs)
    {
        if (problems.Count == 0) return;
        Assert.Fail($"{problems.Count} requirement(s) not met:\n- {string.Join("\n- ", problems)}\n{figures}\n{moreLogs}\n{cluster.Logs()}");
    }

    private static string Seconds(TimeSpan time) => $"{time.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s";

    private void Record(string test, string line) => TestSummary.Record(output, $"topology test ({test})", line);
}
