using System.Globalization;
using System.Text.RegularExpressions;
using LoyaltyGrains.Tests.Durability;
using Xunit.Abstractions;

namespace LoyaltyGrains.Tests.Faults;

/// <summary>
/// The silo's life cycle as an orchestrator drives it: SIGTERM under load must drain and exit 0 without losing
/// anything acknowledged, and a silo started before its database must wait for it instead of crashing.
/// </summary>
[Collection(ProcessesCollection.Name)]
public sealed partial class ShutdownTests(ITestOutputHelper output)
{
    private const int Workers = 32;
    private static readonly TimeSpan LoadBeforeTerm = TimeSpan.FromSeconds(3);
    /// <summary>Within Kubernetes' default 30 s grace plus margin; a silo still running after this is a failure.</summary>
    private static readonly TimeSpan ExitBound = TimeSpan.FromSeconds(40);
    private static readonly TimeSpan DatabaseDownFor = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ServeAfterDatabaseUp = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Sigterm_under_load_drains_exits_0_and_loses_nothing()
    {
        await using var database = await PostgresServer.StartAsync();
        var ports = SiloProcess.FreePorts();
        var (silo, _) = await SiloProcess.StartAsync(database.ConnectionString, ports, SiloProcess.StartTimeout);
        LoadDriver load;
        int? exit;
        TimeSpan drain;
        TimeSpan termAt;
        int acknowledgedAtTerm;
        string siloLog;
        try
        {
            load = new LoadDriver(silo.Channel, await LoadDriver.EnrollAsync(silo.Channel, "sigterm", Workers), FaultRun.CallDeadline);
            load.Start();
            await Task.Delay(LoadBeforeTerm);
            acknowledgedAtTerm = load.Acknowledged.Count;
            termAt = load.Elapsed;
            silo.Terminate();
            // The load goes on while the silo drains: what processors are told meanwhile is part of the figures.
            exit = await silo.WaitForExitAsync(ExitBound);
            drain = load.Elapsed - termAt;
            await load.StopAsync(TimeSpan.Zero);
            siloLog = silo.LogTail();
        }
        finally
        {
            await silo.DisposeAsync();
        }

        var (restarted, _) = await SiloProcess.StartAsync(database.ConnectionString, ports, SiloProcess.StartTimeout);
        await using (restarted)
        {
            var audit = await LedgerAudit.RunAsync(restarted.Channel, database.ConnectionString, load.Members, load.Acknowledged);
            var after = load.Attempts.Where(a => a.Failure is not null && a.EndedAt >= termAt).GroupBy(a => a.Failure!.Value).ToDictionary(g => g.Key, g => g.Count());
            var exited = exit is { } code
                ? $"exit code {code} {Seconds(drain)} after SIGTERM"
                : $"still running {Seconds(drain)} after SIGTERM (killed)";
            Record("SIGTERM", $"SIGTERM after {acknowledgedAtTerm} acknowledged: {exited}; statuses after SIGTERM: {Names.Describe(after)}; " +
                $"{audit.Summary}; unknown outcomes {load.Unresolved.Count}");
            Assert.True(exit is not null, $"the silo did not exit within {ExitBound.TotalSeconds:0} s of SIGTERM; its log:\n{siloLog}");
            Assert.True(exit == 0, $"the silo exited with code {exit} after SIGTERM (expected 0); its log:\n{siloLog}");
            audit.AssertClean($"silo log before SIGTERM exit:\n{siloLog}");
        }
    }

    [Fact]
    public async Task Silo_started_while_its_database_is_down_waits_and_serves_when_it_comes_up()
    {
        await using var database = await PostgresServer.StartAsync();
        await database.StopAsync();
        await using var silo = SiloProcess.Launch(database.ConnectionString, SiloProcess.FreePorts());
        var health = new Grpc.Health.V1.Health.HealthClient(silo.Channel);
        var servingWhileDown = false;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < DatabaseDownFor && !silo.HasExited)
        {
            servingWhileDown |= await EngineProcess.CheckHealthAsync(health) == Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving;
            await Task.Delay(250);
        }
        var exitWhileDown = silo.ExitCode;
        if (exitWhileDown is not null) Record("start while database down", $"the silo EXITED with code {exitWhileDown} while its database was down");
        Assert.True(exitWhileDown is null, $"the silo exited with code {exitWhileDown} while its database was down (it should wait); its log:\n{silo.Log}");
        var waiting = silo.LogLinesMatching(IsWaitingLine);

        await database.StartAgainAsync();
        var up = clock.Elapsed;
        TimeSpan? served = null;
        try
        {
            await silo.WaitUntilServingAsync(ServeAfterDatabaseUp);
            served = clock.Elapsed - up;
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
        {
            // Reported below with the rest of the figures.
        }

        // Once serving, a write must be ACCEPTED: the load driver with one member until its first acknowledgement.
        await using var load = new LoadDriver(silo.Channel, served is null ? [] : await LoadDriver.EnrollAsync(silo.Channel, "late", 1), FaultRun.CallDeadline);
        load.Start();
        await load.WaitUntilAsync(l => l.Acknowledged.Count > 0, TimeSpan.FromSeconds(10));
        await load.StopAsync(TimeSpan.FromSeconds(5));
        var attempts = load.Attempts;
        var first = attempts.Count > 0 ? attempts[0] : default;
        var write = attempts.Count == 0 ? "none" : first.Reply?.ToString().ToUpperInvariant() ?? Names.Of(first.Failure!.Value);

        Record("start while database down", $"alive after {Seconds(DatabaseDownFor)} with the database down (health SERVING meanwhile: {servingWhileDown}); " +
            $"waiting line: {(waiting.Count > 0 ? $"\"{waiting[0].Trim()}\"" : "none")}; " +
            $"serving {(served is { } s ? $"{Seconds(s)} after the database came up" : $"not within {Seconds(ServeAfterDatabaseUp)} of the database coming up")}; first write {write}");
        Assert.True(waiting.Count > 0, $"the silo did not log that it is waiting for its database; its log:\n{silo.Log}");
        Assert.False(servingWhileDown, "health said SERVING while the database was down");
        Assert.True(served is not null, $"the silo did not serve within {Seconds(ServeAfterDatabaseUp)} of its database coming up; its log:\n{silo.Log}");
        Assert.True(first.IsAccepted, $"the first write after start-up was {write} (expected ACCEPTED); silo log:\n{silo.LogTail()}");
    }

    /// <summary>
    /// A log line that says the silo waits for its database (or retries it). Not a stack frame or the crash report:
    /// "unreachable" alone is what a silo that gives up says too.
    /// </summary>
    private static bool IsWaitingLine(string line) => !line.TrimStart().StartsWith("at ", StringComparison.Ordinal)
        && !line.Contains("Unhandled exception", StringComparison.Ordinal) && WaitingLine().IsMatch(line);

    [GeneratedRegex(@"(?i)(postgres|database).*(wait|retry|retrying)|(wait|retry|retrying).*(postgres|database)")]
    private static partial Regex WaitingLine();

    private static string Seconds(TimeSpan time) => $"{time.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s";

    private void Record(string test, string line) => TestSummary.Record(output, $"shutdown test ({test})", line);
}
