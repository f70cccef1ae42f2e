using System.Globalization;
using Grpc.Core;
using LoyaltyGrains.Tests.Durability;
using LoyaltyGrains.Tests.Faults;
using Xunit.Abstractions;

namespace LoyaltyGrains.Tests.Failover;

/// <summary>
/// The engine on a real pg_auto_failover formation (monitor, primary, synchronous standby on loopback) with 32
/// processors posting: the primary's machine lost (keeper and PostgreSQL killed -9), with each multi-host connection
/// string an operator may choose, and a planned switchover. Afterwards nothing acknowledged is lost or doubled, retries
/// are DUPLICATE-identical, balances equal the ledger, callers were only told "retry", and writes came back on the
/// promoted node within the bound the tuned monitor settings give (docs/OPERATIONS.md).
/// </summary>
[Collection(FailoverCollection.Name)]
public sealed class DatabaseFailoverTests(ITestOutputHelper output)
{
    private const int Workers = 32;

    /// <summary>The requirement: every member's writes ACCEPTED again within this long after the primary is lost.</summary>
    private static readonly TimeSpan FailoverWriteOutageBound = TimeSpan.FromSeconds(30);

    /// <summary>The requirement: a planned switchover pauses writes this long at most.</summary>
    private static readonly TimeSpan SwitchoverPauseBound = TimeSpan.FromSeconds(5);

    /// <summary>The ledger's commit bound for the switchover: below the load's 3 s call deadline.</summary>
    private const string CommitTimeoutBelowDeadline = "00:00:02";

    /// <summary>Load on the formation before the kill: the monitor must not fail over on its own meanwhile (no false failover).</summary>
    private static readonly TimeSpan LoadedBeforeKill = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData("read-write")]
    [InlineData("primary")]
    public async Task Primary_machine_lost_under_load_fails_over_losing_nothing(string targetSessionAttributes)
    {
        var formation = await AutoFailoverFormation.StartAsync(targetSessionAttributes);
        await using var run = await FaultRun.StartAsync($"fo-{targetSessionAttributes}", Workers, 0, formation, FailoverWriteOutageBound);
        var before = (Failovers: 0, Unhealthy: 0);
        var killedAt = TimeSpan.Zero;
        var lost = "";
        var connections = 0;
        var report = await run.RunAsync(async r =>
        {
            await Task.Delay(LoadedBeforeKill);
            before = await formation.FailoverEventsAsync();
            var primary = await formation.PrimaryAsync() ?? throw new InvalidOperationException("no primary before the kill");
            connections = await formation.ClientConnectionsAsync(primary);
            lost = primary.Name;
            var killed = formation.LoseMachine(primary.Name);
            killedAt = r.Now;
            return $"{primary.Name}'s machine lost ({killed} processes killed -9) after {LoadedBeforeKill.TotalSeconds:0} s under load";
        }, databaseUnreachable: false);
        var after = await formation.FailoverEventsAsync();
        var primaryAfter = await formation.PrimaryAsync();
        var outage = WriteOutage(run.Load.Attempts, killedAt);

        Record($"primary lost, Target Session Attributes={targetSessionAttributes}",
            $"{report.Summary}; write outage (kill to first ACCEPTED) {Seconds(outage)}; the silo's connections to the primary under load {connections}; monitor before the kill: {before.Failovers} failovers, " +
            $"{before.Unhealthy} unhealthy alarms under load; failovers in all {after.Failovers}; primary after: {primaryAfter?.Name ?? "none"}");
        var problems = new List<string>();
        if (before.Failovers > 0 || before.Unhealthy > 0)
            problems.Add($"false failover under load: the monitor failed over {before.Failovers} times / called a node unhealthy {before.Unhealthy} times before the kill");
        if (primaryAfter is null || primaryAfter.Name == lost) problems.Add($"the standby was not promoted (primary after: {primaryAfter?.Name ?? "none"})");
        if (after.Failovers - before.Failovers != 1) problems.Add($"{after.Failovers - before.Failovers} failovers after the kill; expected exactly 1");
        report.AssertMet(problems);
    }

    [Fact]
    public async Task Planned_switchover_under_load_pauses_writes_briefly_and_answers_only_unavailable()
    {
        var formation = await AutoFailoverFormation.StartAsync("read-write");
        await using var run = await FaultRun.StartAsync("switchover", Workers, 0, formation, FaultRun.DefaultRecoveryBound, new Dictionary<string, string>
        {
            // Below the processors' deadline, as docs/OPERATIONS.md advises: a commit held while the old primary drains
            // answers UNAVAILABLE before the caller's own deadline would end it as DEADLINE_EXCEEDED.
            ["Loyalty__Ledger__CommitTimeout"] = CommitTimeoutBelowDeadline,
        });
        var started = TimeSpan.Zero;
        var report = await run.RunAsync(async r =>
        {
            started = r.Now;
            var from = (await formation.PrimaryAsync())?.Name;
            await formation.SwitchoverAsync();
            return $"pg_autoctl perform switchover from {from} done in {(r.Now - started).TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s";
        }, databaseUnreachable: false);
        var primaryAfter = await formation.PrimaryAsync();
        var pause = LongestPause(run.Load.Attempts, started, report.FaultEnd);
        var statuses = report.During.Concat(report.Outside).GroupBy(s => s.Key).ToDictionary(g => g.Key, g => g.Sum(s => s.Value));

        Record("planned switchover", $"{report.Summary}; longest write pause (no ACCEPTED completing) {Seconds(pause)}; primary after: {primaryAfter?.Name ?? "none"}");
        var problems = new List<string>();
        if (primaryAfter is not { Name: "node2" }) problems.Add($"the switchover did not make node2 primary (primary after: {primaryAfter?.Name ?? "none"})");
        if (pause > SwitchoverPauseBound) problems.Add($"writes paused {Seconds(pause)} (bound {SwitchoverPauseBound.TotalSeconds:0} s)");
        if (statuses.Keys.Any(s => s != StatusCode.Unavailable)) problems.Add($"callers were told {Names.Describe(statuses)}; a planned switchover answers only UNAVAILABLE");
        report.AssertMet(problems);
    }

    /// <summary>From the kill to the first write ACCEPTED that started after it.</summary>
    private static TimeSpan? WriteOutage(IReadOnlyList<Attempt> attempts, TimeSpan killedAt) =>
        attempts.Where(a => a.IsAccepted && a.StartedAt >= killedAt).Select(a => (TimeSpan?)(a.EndedAt - killedAt)).Min();

    /// <summary>The longest time between two ACCEPTED completions (any member) from <paramref name="from"/> until writes flowed again after <paramref name="to"/>.</summary>
    private static TimeSpan LongestPause(IReadOnlyList<Attempt> attempts, TimeSpan from, TimeSpan to)
    {
        var accepted = attempts.Where(a => a.IsAccepted).Select(a => a.EndedAt).Order().ToList();
        var previous = accepted.LastOrDefault(t => t <= from, from);
        var longest = TimeSpan.Zero;
        foreach (var at in accepted.Where(t => t > from))
        {
            if (at - previous > longest) longest = at - previous;
            previous = at;
            if (at > to) break;
        }
        return longest;
    }

    private static string Seconds(TimeSpan? time) => time is { } t ? $"{t.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s" : "none";

    private void Record(string test, string line) => TestSummary.Record(output, $"failover test ({test})", line);
}

/// <summary>
/// Tests that run their own PostgreSQL formation or restore and the real silo: one after another and alone, like
/// <see cref="ProcessesCollection"/>, so the outages they measure are the engine's and the formation's, not the suite's.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FailoverCollection
{
    public const string Name = "Failover";
}
