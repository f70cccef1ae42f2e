using System.Globalization;
using LoyaltyGrains.Tests.Durability;
using Xunit.Abstractions;

namespace LoyaltyGrains.Tests.Faults;

/// <summary>
/// The database misbehaving under load, as it does in production: connections killed, the server restarted, the server
/// hung. Each with the real silo on its own PostgreSQL and 32 processors posting; afterwards nothing acknowledged is
/// lost or doubled, retries are DUPLICATE-identical, balances equal the ledger, callers were only told "retry"
/// (UNAVAILABLE / DEADLINE_EXCEEDED), every member's writes are ACCEPTED again within 10 s of the database returning,
/// health says NOT_SERVING while the database is unreachable, and the silo's log does not storm.
/// </summary>
[Collection(ProcessesCollection.Name)]
public sealed class DatabaseFaultTests(ITestOutputHelper output)
{
    private const int Workers = 32;
    private const int Probes = 4;
    private static readonly TimeSpan BetweenTerminations = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan Down = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan Frozen = TimeSpan.FromSeconds(10);
    // Longer than the freeze: only the engine's own bound on its commit wait can end these calls before the thaw.
    private static readonly TimeSpan ProbeDeadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Backends_terminated_under_load_lose_nothing_and_writes_recover()
    {
        await using var run = await FaultRun.StartAsync("term", Workers);
        var report = await run.RunAsync(async r =>
        {
            var first = await r.Server.TerminateBackendsAsync();
            await Task.Delay(BetweenTerminations);
            var second = await r.Server.TerminateBackendsAsync();
            return $"terminated {first} then {second} backends {BetweenTerminations.TotalSeconds:0} s apart";
        }, databaseUnreachable: false);
        Record("backends terminated", report.Summary);
        report.AssertMet();
    }

    [Fact]
    public async Task Server_restarted_under_load_loses_nothing_and_writes_recover()
    {
        await using var run = await FaultRun.StartAsync("restart", Workers);
        var readinessDown = "";
        var report = await run.RunAsync(async r =>
        {
            // Immediate: the way a crashed or failed-over server goes (no goodbye to clients), with crash recovery on start.
            await r.Server.StopAsync(immediate: true);
            var stopped = r.Now;
            // Probes run at most once a second: by now one has seen the database gone.
            await Task.Delay(TimeSpan.FromSeconds(1.5));
            readinessDown = await r.Silo.ReadinessAsync();
            await Task.Delay(Down - (r.Now - stopped));
            await r.Server.StartAgainAsync();
            // Down = stopped plus the time the new server took to recover and accept connections.
            return $"server stopped (immediate), started again after {Down.TotalSeconds:0} s, accepting connections again after " +
                $"{(r.Now - stopped).TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s";
        }, databaseUnreachable: true);
        var readinessAfter = await run.Silo.ReadinessAsync();
        Record("server restarted", $"{report.Summary}; /readyz while down: {readinessDown}; after: {readinessAfter}");
        // Failed probes are not logged one by one, so readiness must say which check failed and why.
        var readiness = new List<string>();
        if (!readinessDown.StartsWith("503 Unhealthy", StringComparison.Ordinal) || !readinessDown.Contains("database: Unhealthy (", StringComparison.Ordinal))
            readiness.Add($"/readyz while the database was down did not name the database as the failed check: {readinessDown}");
        if (!readinessAfter.StartsWith("200 Healthy", StringComparison.Ordinal) || !readinessAfter.Contains("database: Healthy", StringComparison.Ordinal))
            readiness.Add($"/readyz after recovery is not Healthy: {readinessAfter}");
        report.AssertMet(readiness);
    }

    [Fact]
    public async Task Server_frozen_under_load_calls_are_not_held_and_writes_recover()
    {
        await using var run = await FaultRun.StartAsync("freeze", Workers, Probes);
        var probes = new List<Task<FaultRun.Probe>>();
        var report = await run.RunAsync(async r =>
        {
            var frozenAt = r.Now;
            var processes = r.Server.Freeze();
            await Task.Delay(TimeSpan.FromSeconds(1));
            probes.AddRange(Enumerable.Range(0, Probes).Select(i => r.ProbeAsync(i, ProbeDeadline)));
            await Task.Delay(Frozen - (r.Now - frozenAt));
            r.Server.Thaw();
            return $"server frozen (SIGSTOP to {processes} processes) for {(r.Now - frozenAt).TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s";
        }, databaseUnreachable: true);

        // A call made during the freeze must be answered (retry) while the server is still frozen, not held to the thaw.
        var answered = await Task.WhenAll(probes);
        var held = answered.Where(p => p.EndedAt >= report.FaultEnd || p.Acknowledged || !FaultRun.RetryStatuses.Contains(p.Failure!.Value)).ToList();
        var probeLine = $"probes during the freeze ({ProbeDeadline.TotalSeconds:0} s deadline): " +
            string.Join(", ", answered.Select(p => $"{p.Outcome} after {(p.EndedAt - p.StartedAt).TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s" +
                (p.EndedAt >= report.FaultEnd ? " (after the thaw)" : "")));
        Record("server frozen", $"{report.Summary}; {probeLine}");
        report.AssertMet(held.Count == 0 ? [] : [$"{held.Count} of {Probes} calls made during the freeze were held to the thaw, ACCEPTED, or not told to retry: {probeLine}"]);
    }

    private void Record(string fault, string line) => TestSummary.Record(output, $"fault test ({fault})", line);
}
