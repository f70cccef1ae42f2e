using System.Globalization;
using System.Security.Cryptography;
using Grpc.Core;
using LoyaltyGrains.LoadTests;
using Spectre.Console;

if (Array.IndexOf(args, "--serve-echo") is var serve and >= 0)
{
    // The echo baseline's own process (started by the tool itself, see EchoProcess): its CPU is measured apart.
    var port = serve + 1 < args.Length && int.TryParse(args[serve + 1], CultureInfo.InvariantCulture, out var p) ? p : 0;
    await using var server = await EchoServer.StartAsync(port);
    Console.WriteLine(EchoProcess.AddressPrefix + server.Address);
    await server.ServeUntilStoppedAsync();
    return 0;
}
if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(LoadOptions.Help);
    return 0;
}
LoadOptions options;
try
{
    options = LoadOptions.Parse(args);
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine($"{ex.Message}\n\nrun with --help for the options");
    return 2;
}

// Ids are namespaced by the run so runs against the same engine never collide: lt-<run>-m<N>.
var runId = DateTimeOffset.UtcNow.ToString("yyMMddHHmmss", CultureInfo.InvariantCulture) + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(2));
var folder = options.Out ?? Path.Combine("loadtests", "out", $"{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}-{options.Scenario}{(options.FindMax ? "-max" : "")}");
// Secrets never reach the reports: a token or key on the command line is shown as "***".
var commandLine = "dotnet run --project loadtests/LoyaltyGrains.LoadTests -c Release -- " +
    string.Join(' ', args.Select((arg, i) => i > 0 && args[i - 1] is "--token" or "--signing-key" ? "***" : Quote(arg.StartsWith("--token=", StringComparison.Ordinal) || arg.StartsWith("--signing-key=", StringComparison.Ordinal) ? arg[..(arg.IndexOf('=') + 1)] + "***" : arg)));
using var cancellation = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // First Ctrl+C ends the schedule early; the run still drains, checks and reports.
    e.Cancel = true;
    cancellation.Cancel();
};

void Log(string line) => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(DateTime.Now.ToString("HH:mm:ss", CultureInfo.InvariantCulture))}[/] {Markup.Escape(line)}");
// Redirected output (CI, a file) gets wide plain lines instead of an 80-column wrap.
if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200;
var view = new ProgressView(AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected, Log);

if (options.Scenario != "echo" && options.BearerToken() is null)
{
    Log("no bearer token (--token, --signing-key, LOYALTY_AUTH_SIGNING_KEY or a development key file): the engine will refuse every call");
}
Log($"run {runId}: scenario {options.Scenario}{(options.FindMax ? " (find-max)" : "")}, report folder {folder}");
var notes = new List<string>();
RunRecord? baseline = null;
IReadOnlyList<StepResult>? baselineSteps = null;
double? baselineMax = null;

async Task<(RunRecord Record, IReadOnlyList<StepResult>? Steps, double? Max)> Drive(string name, IScenario scenario, CpuMeter? meter, LoadOptions runOptions)
{
    if (!runOptions.FindMax) return (await view.RunAsync(name, p => new OpenLoop(runOptions, meter).RunAsync(name, scenario, p, cancellation.Token)), null, null);
    var (max, steps) = await new FindMax(runOptions, meter).RunAsync(name, scenario, view.RunAsync, Log, cancellation.Token);
    // The charts show the highest step that held (its latencies are the ones the maximum stands for).
    var shown = steps.Where(s => s.Held).OrderByDescending(s => s.RatePerSecond).FirstOrDefault() ?? steps[^1];
    return (shown.Record, steps, max);
}

// The echo baseline runs in a process of its own, so its server CPU per call is measured the way the engine's is.
using var echoProcess = options.Baseline || options.Scenario is "echo" or "cpu" ? await EchoProcess.StartAsync(0, cancellation.Token) : null;
using var echo = echoProcess is null ? null : new EchoScenario(echoProcess.Address, options.Connections, options.RequestTimeout);
var echoMeter = echoProcess is null || !CpuMeter.Supported ? null : new CpuMeter([CpuGroups.Echo(echoProcess.Pid), CpuGroups.Self("this load tool, the echo client")]);
if (echoProcess is not null) Log($"echo baseline: bare gRPC unary service on {echoProcess.Address} (process {echoProcess.Pid})");
if (echo is not null && options.Scenario != "cpu") (baseline, baselineSteps, baselineMax) = await Drive("echo", echo, echoMeter, options);

if (options.Scenario == "echo")
{
    var echoReport = new RunReport("echo", runId, commandLine, options, baseline!, baselineSteps, baselineMax, baseline, null, null, null, notes, MachineFacts.Collect());
    Reports.Console(echoReport);
    Reports.Write(folder, echoReport);
    Log($"report: {Path.GetFullPath(Path.Combine(folder, "report.html"))}");
    return 0;
}

using var engine = new Engine(options, runId);
var engineMeter = !CpuMeter.Supported ? null
    : new CpuMeter([.. new[] { CpuGroups.EngineProcesses(options, Log), CpuGroups.PostgresProcesses(options, Log), CpuGroups.Self("this load tool, the engine's client") }.OfType<CpuGroup>()]);
if (engineMeter is not null) Log("CPU measured: " + string.Join("; ", engineMeter.Groups.Select(g => $"{g.Name}: {g.Description}")));
if (options.Scenario == "cpu")
{
    var suite = new CpuSuite(options, engine, Drive, Log);
    return await suite.RunAsync(echo!, echoMeter, engineMeter, new RunFacts(runId, commandLine, folder));
}
EngineScenario scenario = options.Scenario switch
{
    "peak-day" => new PeakDay(engine),
    "hot-card" => new HotCard(engine),
    "campaign-rush" => new CampaignRush(engine),
    "retry-storm" => new RetryStorm(engine),
    "bulk" => new Bulk(engine),
    "clearing" => new Clearing(engine, unary: false),
    "clearing-unary" => new Clearing(engine, unary: true),
    "authorize" => new AuthorizeOnly(engine),
    "balance" => new BalanceOnly(engine),
    _ => throw new InvalidOperationException($"scenario {options.Scenario} has no runner"),
};
try
{
    Log($"setup against {options.Target}: enrolling {options.Members:N0} members with {options.CardsPerMember} card(s) each (ids lt-{runId}-m<N>)");
    await scenario.SetupAsync(Log);
}
catch (RpcException ex)
{
    AnsiConsole.MarkupLine($"[red]cannot set up against {Markup.Escape(options.Target)}: {Markup.Escape(Arrival.StatusName(ex.StatusCode))} {Markup.Escape(ex.Status.Detail)}[/] — is the engine running there?");
    return 2;
}
var (record, steps, max) = await Drive(options.Scenario, scenario, engineMeter, options);
if (scenario is IAsyncDisposable disposable) await disposable.DisposeAsync();

Log("checking every balance (and a sample of statements) against the replies received");
var unfinished = steps is null ? record.UnfinishedAtEnd : steps.Sum(s => s.Record.UnfinishedAtEnd);
var verdict = await Correctness.CheckAsync(engine, unfinished, Log, CancellationToken.None);
if (scenario is CampaignRush rush) notes.Add($"campaign lines granted in authorizations: {rush.GrantedMinor:N0} minor");
notes.InsertRange(0, scenario.Notes);
var report = new RunReport(options.Scenario, runId, commandLine, options, record, steps, max, baseline, baselineSteps, baselineMax, verdict, notes, MachineFacts.Collect());
Reports.Console(report);
Reports.Write(folder, report);
Log($"report: {Path.GetFullPath(Path.Combine(folder, "report.html"))}");
return verdict.Passed ? 0 : 1;

static string Quote(string arg) => arg.Length > 0 && arg.All(ch => char.IsLetterOrDigit(ch) || "-_./:=@,".Contains(ch)) ? arg : "'" + arg.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
