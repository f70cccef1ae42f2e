using System.Collections.Concurrent;
using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LoyaltyGrains.Gateway.V1;
using LoyaltyGrains.Tests.Durability;
using static Grpc.Health.V1.HealthCheckResponse.Types;

namespace LoyaltyGrains.Tests.Faults;

/// <summary>
/// One database fault under load, end to end: a dedicated PostgreSQL, the real silo on it, processors posting, the
/// silo's health polled; then the fault, the load kept on until every member's writes are ACCEPTED again (or the
/// recovery bound has clearly passed), and the ledger audit. Every wait is bounded, so a hung engine fails the test
/// with its figures instead of hanging it.
/// </summary>
public sealed class FaultRun : IAsyncDisposable
{
    /// <summary>The requirement: writes are ACCEPTED again within this long after the database is back.</summary>
    public static readonly TimeSpan DefaultRecoveryBound = TimeSpan.FromSeconds(10);

    /// <summary>Log lines the silo may write from the fault until recovery: one per event, not one per failed call.</summary>
    public const int LogLinesMax = 200;

    public static readonly TimeSpan CallDeadline = TimeSpan.FromSeconds(3);

    /// <summary>What a processor may be told while the database is away: "outcome unknown, retry" (ABORTED: "retry", documented too).</summary>
    public static readonly StatusCode[] RetryStatuses = [StatusCode.Unavailable, StatusCode.DeadlineExceeded, StatusCode.Aborted];

    private static readonly TimeSpan LoadBeforeFault = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan Drain = TimeSpan.FromSeconds(5);

    private readonly ConcurrentQueue<Acknowledged> _probesAcknowledged = new();
    private readonly ConcurrentBag<Task<Probe>> _outstanding = [];
    private readonly (int Grpc, int Silo, int Gateway, int Metrics) _ports;
    private int _probes;
    private IReadOnlyDictionary<string, string>? _siloSettings;

    private FaultRun(IFaultDatabase database, SiloProcess silo, (int, int, int, int) ports, LoadDriver load, IReadOnlyList<LoadMember> probeMembers)
    {
        Database = database;
        Silo = silo;
        _ports = ports;
        Load = load;
        ProbeMembers = probeMembers;
        Health = new HealthWatch(silo.Channel, () => load.Elapsed);
    }

    public IFaultDatabase Database { get; }

    /// <summary>The single server of a <see cref="StartAsync(string, int, int)"/> run (terminate, stop, freeze).</summary>
    public PostgresServer Server => Database as PostgresServer ?? throw new InvalidOperationException("this run's database is not a single PostgresServer");

    /// <summary>Writes must be ACCEPTED again for every member within this long after the fault returns.</summary>
    public TimeSpan RecoveryBound { get; private set; } = DefaultRecoveryBound;
    public SiloProcess Silo { get; private set; }
    public LoadDriver Load { get; }
    public HealthWatch Health { get; }
    public IReadOnlyList<LoadMember> ProbeMembers { get; }
    public TimeSpan Now => Load.Elapsed;

    /// <summary>A dedicated server, the silo on it, <paramref name="workers"/> members for the load and <paramref name="probes"/> warmed-up members for probes.</summary>
    public static async Task<FaultRun> StartAsync(string name, int workers, int probes = 0) =>
        await StartAsync(name, workers, probes, await PostgresServer.StartAsync(), DefaultRecoveryBound);

    /// <summary>
    /// As above on a database the caller started (owned by the run from here on), with its own recovery bound and
    /// <paramref name="siloSettings"/> as more environment for the silo.
    /// </summary>
    public static async Task<FaultRun> StartAsync(string name, int workers, int probes, IFaultDatabase database, TimeSpan recoveryBound,
        IReadOnlyDictionary<string, string>? siloSettings = null)
    {
        SiloProcess? silo = null;
        try
        {
            var ports = SiloProcess.FreePorts();
            (silo, _) = await SiloProcess.StartAsync(database.ConnectionString, ports, SiloProcess.StartTimeout, siloSettings);
            var members = await LoadDriver.EnrollAsync(silo.Channel, name, workers);
            var probeMembers = await LoadDriver.EnrollAsync(silo.Channel, $"{name}-probe", probes);
            var run = new FaultRun(database, silo, ports, new LoadDriver(silo.Channel, members, CallDeadline), probeMembers)
            {
                RecoveryBound = recoveryBound, _siloSettings = siloSettings,
            };
            // Each probe member active and its card's route known before the fault, so a probe measures only the commit.
            for (var i = 0; i < probes; i++)
            {
                var warm = await run.ProbeAsync(i, TimeSpan.FromSeconds(10));
                if (!warm.Acknowledged) throw new InvalidOperationException($"warming probe member {i} failed with {warm.Failure}");
            }
            return run;
        }
        catch
        {
            if (silo is not null) await silo.DisposeAsync();
            await database.DisposeAsync();
            throw;
        }
    }

    public sealed record Probe(TimeSpan StartedAt, TimeSpan EndedAt, PostingStatus? Reply, StatusCode? Failure)
    {
        public bool Acknowledged => Reply is not null;
        public string Outcome => Reply is { } reply ? reply.ToString().ToUpperInvariant() : Names.Of(Failure!.Value);
    }

    /// <summary>
    /// One authorization for probe member <paramref name="index"/> with its own deadline, timed on the run's clock.
    /// The run waits for every probe before its audit, so a probe may be left running across the fault's end.
    /// </summary>
    public Task<Probe> ProbeAsync(int index, TimeSpan deadline)
    {
        var probe = ProbeCoreAsync(index, deadline);
        _outstanding.Add(probe);
        return probe;
    }

    private async Task<Probe> ProbeCoreAsync(int index, TimeSpan deadline)
    {
        var member = ProbeMembers[index];
        var request = new AuthorizeRequest
        {
            TransactionId = $"{member.MemberId}-p{Interlocked.Increment(ref _probes)}", CardId = member.CardId, AmountMinor = 10_000, Currency = "RUB",
            Mcc = 5411, MerchantId = "shop", OccurredAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-1)),
        };
        Func<Processing.ProcessingClient, DateTime, Task<PostingReply>> send = (c, d) => c.AuthorizeAsync(request, deadline: d).ResponseAsync;
        var started = Now;
        try
        {
            var reply = await send(new Processing.ProcessingClient(Silo.Channel), DateTime.UtcNow + deadline);
            _probesAcknowledged.Enqueue(new Acknowledged(request.TransactionId, member.MemberId, reply, send));
            return new Probe(started, Now, reply.Status, null);
        }
        catch (RpcException ex)
        {
            return new Probe(started, Now, null, ex.StatusCode);
        }
    }

    /// <summary>
    /// Load, then <paramref name="fault"/> (it returns, with what it did, once the database is back), then load until
    /// recovery, then the audit. The report's <see cref="FaultReport.Problems"/> are what the test asserts.
    /// </summary>
    public async Task<FaultReport> RunAsync(Func<FaultRun, Task<string>> fault, bool databaseUnreachable)
    {
        Load.Start();
        await Task.Delay(LoadBeforeFault);
        var linesBefore = Silo.LogLines;
        var acknowledgedBefore = Load.Acknowledged.Count;
        var faultStart = Now;
        string what;
        try
        {
            what = await fault(this);
        }
        finally
        {
            Database.Thaw();
        }
        var faultEnd = Now;
        var workers = Load.Members.Count;
        // Past the bound by a margin, so a slow recovery is measured rather than cut off at exactly the bound.
        await Load.WaitUntilAsync(l => MembersAcceptedAfter(l.Attempts, faultEnd).Count == workers || Silo.HasExited, RecoveryBound + TimeSpan.FromSeconds(2));
        // Health is sampled every 250 ms: when writes recover at once, give it the same bound to be seen SERVING again.
        var healthBy = faultEnd + RecoveryBound + TimeSpan.FromSeconds(2);
        while (Now < healthBy && !Silo.HasExited && Health.First(ServingStatus.Serving, faultEnd) is null) await Task.Delay(100);
        var windowEnd = Now;
        var logLines = Silo.LogLines - linesBefore;
        await Load.StopAsync(Drain);
        // Bounded: each probe has its own deadline.
        await Task.WhenAll(_outstanding);
        await Health.DisposeAsync();
        var siloLog = Silo.LogTail();

        var siloExit = Silo.ExitCode;
        if (siloExit is not null)
        {
            // The audit needs a silo: a new one on the same database, as an operator would start.
            await Silo.DisposeAsync();
            (Silo, _) = await SiloProcess.StartAsync(Database.ConnectionString, _ports, SiloProcess.StartTimeout, _siloSettings);
        }
        var audit = await LedgerAudit.RunAsync(Silo.Channel, Database.ConnectionString, [.. Load.Members, .. ProbeMembers],
            [.. Load.Acknowledged, .. _probesAcknowledged]);
        return new FaultReport(this, what, databaseUnreachable, faultStart, faultEnd, windowEnd, acknowledgedBefore, logLines, siloExit, siloLog, audit);
    }

    /// <summary>Per member, when its first write started after <paramref name="since"/> was ACCEPTED.</summary>
    public static Dictionary<int, TimeSpan> MembersAcceptedAfter(IReadOnlyList<Attempt> attempts, TimeSpan since) =>
        attempts.Where(a => a.IsAccepted && a.StartedAt >= since).GroupBy(a => a.Worker).ToDictionary(g => g.Key, g => g.Min(a => a.EndedAt));

    public async ValueTask DisposeAsync()
    {
        await Load.DisposeAsync();
        await Health.DisposeAsync();
        await Silo.DisposeAsync();
        await Database.DisposeAsync();
    }
}

/// <summary>What a fault run measured, its one summary line, and the requirements it broke (empty when none).</summary>
public sealed class FaultReport
{
    private readonly FaultRun _run;
    private readonly string _siloLog;

    public FaultReport(FaultRun run, string fault, bool databaseUnreachable, TimeSpan faultStart, TimeSpan faultEnd, TimeSpan windowEnd,
        int acknowledgedBefore, long logLines, int? siloExit, string siloLog, LedgerAudit audit)
    {
        _run = run;
        _siloLog = siloLog;
        Fault = fault;
        FaultStart = faultStart;
        FaultEnd = faultEnd;
        Audit = audit;
        LogLines = logLines;
        SiloExit = siloExit;
        AcknowledgedBefore = acknowledgedBefore;
        var attempts = run.Load.Attempts;
        var failures = attempts.Where(a => a.Failure is not null).ToList();
        During = Count(failures.Where(a => a.EndedAt >= faultStart && a.EndedAt <= windowEnd));
        Outside = Count(failures.Where(a => a.EndedAt < faultStart || a.EndedAt > windowEnd));
        FirstError = failures.Where(a => a.EndedAt >= faultStart).Select(a => (TimeSpan?)(a.EndedAt - faultStart)).Min();
        LastError = failures.Select(a => (TimeSpan?)(a.EndedAt - faultStart)).Max();
        var recovered = FaultRun.MembersAcceptedAfter(attempts, faultEnd);
        MembersRecovered = recovered.Count;
        Members = run.Load.Members.Count;
        FirstAccepted = recovered.Count > 0 ? recovered.Values.Min() - faultEnd : null;
        Recovery = recovered.Count == Members ? recovered.Values.Max() - faultEnd : null;
        // While the database was away, not after: a health check that notices only once it is back helps no load balancer.
        NotServingAt = run.Health.First(ServingStatus.NotServing, faultStart, faultEnd) - faultStart;
        ServingAgainAt = run.Health.First(ServingStatus.Serving, Max(faultEnd, faultStart + (NotServingAt ?? TimeSpan.Zero))) - faultEnd;
        HealthDuring = run.Health.Describe(faultStart, windowEnd);
        Problems = FindProblems(databaseUnreachable);
    }

    public string Fault { get; }
    public TimeSpan FaultStart { get; }
    public TimeSpan FaultEnd { get; }
    public LedgerAudit Audit { get; }
    public long LogLines { get; }
    public int? SiloExit { get; }
    public int AcknowledgedBefore { get; }
    public IReadOnlyDictionary<StatusCode, int> During { get; }
    public IReadOnlyDictionary<StatusCode, int> Outside { get; }
    public TimeSpan? FirstError { get; }
    public TimeSpan? LastError { get; }
    public int Members { get; }
    public int MembersRecovered { get; }
    public TimeSpan? FirstAccepted { get; }
    public TimeSpan? Recovery { get; }
    public TimeSpan? NotServingAt { get; }
    public TimeSpan? ServingAgainAt { get; }
    public string HealthDuring { get; }
    public IReadOnlyList<string> Problems { get; }

    public string Summary => string.Join("; ",
        $"{Fault}; {AcknowledgedBefore} acknowledged before the fault",
        Audit.Summary,
        $"statuses during the fault: {Names.Describe(During)}" +
            (FirstError is { } firstError ? $" (first +{Seconds(firstError)}, last +{Seconds(LastError)} from fault start)" : "") +
            (Outside.Count > 0 ? $", outside it: {Names.Describe(Outside)}" : ""),
        Recovery is { } all
            ? $"recovery {Seconds(all)}: all {Members} members ACCEPTED again (first after {Seconds(FirstAccepted)})"
            : $"recovery: only {MembersRecovered}/{Members} members ACCEPTED again within {(_run.RecoveryBound + TimeSpan.FromSeconds(2)).TotalSeconds:0} s" +
                (FirstAccepted is { } first ? $" (first after {Seconds(first)})" : ""),
        $"health: NOT_SERVING {(NotServingAt is { } n ? $"at +{Seconds(n)}" : "never during the fault")}, SERVING again {(ServingAgainAt is { } s ? $"{Seconds(s)} after it returned" : "never")} [{HealthDuring}]",
        $"silo log lines from fault to recovery {LogLines}",
        $"unknown outcomes left {_run.Load.Unresolved.Count}" + (SiloExit is { } exit ? $"; the silo EXITED with {exit}" : ""));

    /// <summary>Fails the test with every broken requirement at once (its own and the caller's <paramref name="more"/>), the figures, and both logs' tails.</summary>
    public void AssertMet(IReadOnlyList<string>? more = null)
    {
        var problems = Problems.Concat(more ?? []).ToList();
        if (problems.Count == 0) return;
        Assert.Fail($"{problems.Count} requirement(s) not met:\n- {string.Join("\n- ", problems)}\n{Summary}\n" +
            $"audit examples:\n  {(Audit.Examples.Count == 0 ? "none" : string.Join("\n  ", Audit.Examples))}\n" +
            $"silo log (last lines):\n{_siloLog}\nPostgreSQL log (last lines):\n{string.Join('\n', _run.Database.ServerLog.Split('\n').TakeLast(20))}");
    }

    private List<string> FindProblems(bool databaseUnreachable)
    {
        var problems = new List<string>();
        if (SiloExit is { } exit) problems.Add($"the silo exited with code {exit} during the fault");
        if (!Audit.IsClean) problems.Add($"ledger audit: {Audit.Summary}");
        var wrong = During.Concat(Outside).Where(s => !FaultRun.RetryStatuses.Contains(s.Key)).GroupBy(s => s.Key).ToDictionary(g => g.Key, g => g.Sum(s => s.Value));
        if (wrong.Count > 0) problems.Add($"callers were told {Names.Describe(wrong)}; acceptable: UNAVAILABLE or DEADLINE_EXCEEDED (outcome unknown, retry), ABORTED (retry)");
        if (Recovery is not { } recovery) problems.Add($"writes not ACCEPTED again for {Members - MembersRecovered} of {Members} members within {_run.RecoveryBound.TotalSeconds:0} s");
        else if (recovery > _run.RecoveryBound) problems.Add($"writes ACCEPTED again for every member only after {recovery.TotalSeconds:0.0} s (bound {_run.RecoveryBound.TotalSeconds:0} s)");
        if (databaseUnreachable && NotServingAt is null) problems.Add($"health never said NOT_SERVING while the database was unreachable [{HealthDuring}]");
        if (ServingAgainAt is null) problems.Add($"health did not say SERVING again after the database returned [{HealthDuring}]");
        if (LogLines >= FaultRun.LogLinesMax) problems.Add($"the silo wrote {LogLines} log lines from the fault to recovery (bound {FaultRun.LogLinesMax})");
        return problems;
    }

    private static Dictionary<StatusCode, int> Count(IEnumerable<Attempt> failures) =>
        failures.GroupBy(a => a.Failure!.Value).ToDictionary(g => g.Key, g => g.Count());

    private static string Seconds(TimeSpan? time) => time is { } t ? $"{t.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s" : "none";

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}

/// <summary>gRPC status names as the wire and the docs spell them (DEADLINE_EXCEEDED, not DeadlineExceeded).</summary>
public static class Names
{
    public static string Of(StatusCode status) => string.Concat(status.ToString().Select((c, i) => i > 0 && char.IsUpper(c) ? $"_{c}" : $"{char.ToUpperInvariant(c)}"));

    public static string Describe(IReadOnlyDictionary<StatusCode, int> counts) =>
        counts.Count == 0 ? "none" : string.Join(", ", counts.OrderByDescending(c => c.Value).Select(c => $"{Of(c.Key)} {c.Value}"));
}
