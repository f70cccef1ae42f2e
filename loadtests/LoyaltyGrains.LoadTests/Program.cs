using System.Globalization;
using LoyaltyGrains.LoadTests;
using Spectre.Console;

LoadOptions options;
try
{
    if (args.Contains("--help") || args.Contains("-h"))
    {
        Console.WriteLine(LoadOptions.Help);
        return 0;
    }
    options = LoadOptions.Parse(args);
}
catch (Exception ex) when (ex is ArgumentException or FormatException)
{
    Console.Error.WriteLine($"{ex.Message}\n\n{LoadOptions.Help}");
    return 2;
}

var run = DateTimeOffset.UtcNow.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
var folder = options.Out ?? Path.Combine("loadtests", "out", $"{run}-{options.Scenario}");
var commandLine = "dotnet run --project loadtests/LoyaltyGrains.LoadTests -c Release -- " + string.Join(' ', args);
void Progress(string line) => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]");

RunRecord? baseline = null;
if (options.Baseline || options.Scenario == "echo")
{
    await using var echo = await EchoServer.StartAsync();
    using var echoScenario = new EchoScenario(echo.Address, options.Connections);
    Progress($"echo baseline on {echo.Address}");
    baseline = await new OpenLoop(options).RunAsync("echo", echoScenario.ArrivalAsync, Progress);
    if (options.Scenario == "echo")
    {
        Reports.Console(baseline, null, null);
        Reports.Write(folder, commandLine, baseline, null, null);
        AnsiConsole.MarkupLine($"report: {Markup.Escape(Path.GetFullPath(folder))}/report.html");
        return 0;
    }
}

using var engine = new Engine(options, run);
IScenario scenario = options.Scenario switch
{
    "peak-day" => new PeakDay(engine),
    "hot-card" => new HotCard(engine),
    "campaign-rush" => new CampaignRush(engine),
    "retry-storm" => new RetryStorm(engine),
    "authorize" => new AuthorizeOnly(engine),
    "balance" => new BalanceOnly(engine),
    _ => new Bulk(engine),
};
try
{
    Progress($"{options.Scenario} against {options.Target}: enrolling {options.Members} members (run {run})");
    await scenario.SetupAsync(Progress);
}
catch (Grpc.Core.RpcException ex)
{
    AnsiConsole.MarkupLine($"[red]cannot set up against {Markup.Escape(options.Target)}: {Markup.Escape(ex.Status.StatusCode.ToString())} {Markup.Escape(ex.Status.Detail)}[/] — is the engine running?");
    return 2;
}
var record = await new OpenLoop(options).RunAsync(options.Scenario, scenario.ArrivalAsync, Progress);
if (scenario is IAsyncDisposable disposable) await disposable.DisposeAsync();

Progress("checking balances and ledgers against the replies received ...");
var (passed, members, ledgers, problems) = await Correctness.CheckAsync(engine);
var verdict = new Verdict(passed && record.UnfinishedAtEnd == 0, members, ledgers, engine.Expect.DuplicatesChecked,
    record.UnfinishedAtEnd == 0 ? problems : [.. problems, $"{record.UnfinishedAtEnd} requests had no reply 60 s after the run"]);
Reports.Console(record, baseline, verdict);
Reports.Write(folder, commandLine, record, baseline, verdict);
AnsiConsole.MarkupLine($"report: {Markup.Escape(Path.GetFullPath(folder))}/report.html");
return verdict.Passed ? 0 : 1;
