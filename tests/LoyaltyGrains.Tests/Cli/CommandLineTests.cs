using LoyaltyGrains.Cli;
using LoyaltyGrains.Tests.Durability;
using Microsoft.Extensions.Configuration;

namespace LoyaltyGrains.Tests.Cli;

/// <summary>
/// The silo executable's command line as a user meets it: help for the whole and for each verb (exit 0), one line
/// naming the argument or setting at fault (exit 2), a runtime failure (exit 1) that leaves nothing behind, and no
/// verb still meaning "run the engine".
/// </summary>
public sealed class CommandLineTests
{
    public static readonly TheoryData<string> VerbNames = ["demo", "token", "stats", "whatif", "export", "migrate"];

    [Fact]
    public async Task Help_lists_every_verb_and_exits_0()
    {
        var result = await SiloVerb.RunAsync(["--help"]);
        Assert.True(result.Exit == 0, result.ToString());
        foreach (var verb in VerbNames) Assert.Contains($"  {verb} ", result.Out, StringComparison.Ordinal);
        Assert.Equal("", result.Error);
    }

    [Theory]
    [MemberData(nameof(VerbNames))]
    public async Task Each_verb_has_help_that_exits_0(string verb)
    {
        var result = await SiloVerb.RunAsync([verb, "--help"]);
        Assert.True(result.Exit == 0, result.ToString());
        Assert.Contains($"LoyaltyGrains.Silo {verb} [options]", result.Out, StringComparison.Ordinal);
        Assert.Contains("--help", result.Out, StringComparison.Ordinal);
        Assert.Equal("", result.Error);
    }

    [Fact]
    public async Task An_unknown_verb_is_one_line_naming_it_and_exit_2()
    {
        var result = await SiloVerb.RunAsync(["frobnicate"]);
        Assert.True(result.Exit == 2, result.ToString());
        var line = Assert.Single(result.ErrorLines);
        Assert.Contains("'frobnicate'", line, StringComparison.Ordinal);
        Assert.Equal("", result.Out);
    }

    [Theory]
    [InlineData("stats", "--from", "2026-13-01", "--from: '2026-13-01' is not a day")]
    [InlineData("whatif", "--top", "many", "--top: 'many' is not a whole number")]
    [InlineData("token", "--expires-in", "soon", "--expires-in: 'soon' is not a positive duration")]
    [InlineData("demo", "--target", "localhost:5000", "--target: 'localhost:5000' is not an http:// or https:// address")]
    public async Task A_bad_option_value_is_one_line_naming_it_and_exit_2(string verb, string option, string value, string expected)
    {
        string[] arguments = verb switch
        {
            "stats" => [verb, option, value, "--to", "2026-11-30"],
            "whatif" => [verb, "--program", "default", "--from", "2026-11-01", "--to", "2026-11-30", option, value],
            "token" => [verb, "--role", "admin", option, value],
            _ => [verb, option, value],
        };
        var result = await SiloVerb.RunAsync(arguments);
        Assert.True(result.Exit == 2, result.ToString());
        Assert.Contains(expected, Assert.Single(result.ErrorLines), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Demo_without_a_target_uses_the_default_address_instead_of_refusing_it()
    {
        // The README's `-- demo`: the default address is used, whether or not an engine answers there (exit 0 or 1).
        var result = await SiloVerb.RunAsync(["demo"]);
        Assert.True(result.Exit != 2, result.ToString());
        Assert.DoesNotContain(result.ErrorLines, line => line.Contains("--target", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("LOYALTY_GRPC_PORT", "abc", "LOYALTY_GRPC_PORT = 'abc' is not a TCP port")]
    [InlineData("LOYALTY_METRICS_PORT", "70000", "LOYALTY_METRICS_PORT = '70000' is not a TCP port")]
    [InlineData("LOYALTY_LISTEN_ADDRESS", "localhost", "LOYALTY_LISTEN_ADDRESS = 'localhost' is not an IP address")]
    [InlineData("Loyalty__Ledger__CommitTimeout", "5s", "Loyalty:Ledger:CommitTimeout = '5s' is not a duration")]
    [InlineData("Loyalty__Database__StartupWait", "-00:01:00", "Loyalty:Database:StartupWait = '-00:01:00' must be above zero")]
    [InlineData("Loyalty__Ledger__Writers", "0", "Loyalty:Ledger:Writers = '0' is not a whole number from 1 to 16")]
    [InlineData("Loyalty__Database__ApplyMigrations", "no", "Loyalty:Database:ApplyMigrations = 'no' is not true or false")]
    public async Task The_engine_refuses_a_bad_setting_in_one_line_naming_it_with_exit_2(string variable, string value, string expected)
    {
        var result = await SiloVerb.RunAsync([], new Dictionary<string, string> { [variable] = value });
        Assert.True(result.Exit == 2, result.ToString());
        Assert.Equal($"configuration: {expected}", Assert.Single(result.ErrorLines)[..($"configuration: {expected}".Length)]);
    }

    [Fact]
    public async Task Export_with_the_database_down_exits_1_in_one_line_and_leaves_no_folder()
    {
        var parent = Directory.CreateTempSubdirectory("loyalty-export-down-").FullName;
        try
        {
            var outDir = Path.Combine(parent, "report");
            var down = $"Host=127.0.0.1;Port={FreePort()};Username=loyalty;Database=loyalty;Timeout=3";
            var result = await SiloVerb.RunAsync(["export", "--from", "2026-12-01", "--to", "2026-12-02", "--out", outDir],
                new Dictionary<string, string> { ["LOYALTY_POSTGRES"] = down });
            Assert.True(result.Exit == 1, result.ToString());
            // Progress lines, then the failure as the one line that is not progress; no stack trace.
            var failure = Assert.Single(result.ErrorLines, line => !line.StartsWith("export: [", StringComparison.Ordinal));
            Assert.StartsWith("export: PostgreSQL is unreachable", failure, StringComparison.Ordinal);
            Assert.DoesNotContain(result.ErrorLines, line => line.StartsWith("at ", StringComparison.Ordinal));
            Assert.Empty(Directory.GetFileSystemEntries(parent));
        }
        finally
        {
            Directory.Delete(parent, recursive: true);
        }
    }

    [Theory]
    [InlineData("export", "--from", "2026-12-01", "--to", "2026-12-02", "--out", "x")]
    [InlineData("stats", "--from", "2026-12-01", "--to", "2026-12-02")]
    [InlineData("migrate")]
    public async Task A_verb_that_reads_the_ledger_without_LOYALTY_POSTGRES_is_a_usage_error(params string[] arguments)
    {
        var result = await SiloVerb.RunAsync(arguments);
        Assert.True(result.Exit == 2, result.ToString());
        Assert.Contains("LOYALTY_POSTGRES", Assert.Single(result.ErrorLines), StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_verb_runs_the_engine_and_help_does_not()
    {
        var engineRuns = 0;
        Task<int> Engine(CancellationToken _)
        {
            engineRuns++;
            return Task.FromResult(42);
        }
        Assert.Equal(42, await LoyaltyCommandLine.RunAsync([], Engine, TextWriter.Null, TextWriter.Null));
        Assert.Equal(1, engineRuns);
        using var output = new StringWriter();
        Assert.Equal(0, await LoyaltyCommandLine.RunAsync(["--help"], Engine, output, TextWriter.Null));
        Assert.Equal(0, await LoyaltyCommandLine.RunAsync(["migrate", "--help"], Engine, TextWriter.Null, TextWriter.Null));
        Assert.Equal(1, engineRuns);
        Assert.Contains("migrate", output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void The_settings_check_accepts_the_shipped_configuration_and_well_formed_values()
    {
        var shipped = new ConfigurationBuilder().SetBasePath(Path.GetDirectoryName(EngineProcess.SiloDll())!).AddJsonFile("appsettings.json").Build();
        Assert.Null(ConfigurationCheck.FirstError(shipped));
        var tuned = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Loyalty:ListenAddress"] = "::1",
            ["Loyalty:Ledger:CommitTimeout"] = "00:00:10",
            ["Loyalty:Ledger:BatchDelayMax"] = "00:00:00.002",
            ["Loyalty:GrainCollection:CollectionAge"] = "04:00:00",
            ["Loyalty:Database:ApplyMigrations"] = "false",
            ["Loyalty:Limits:PostingAgeMax"] = "400.00:00:00",
            ["ConnectionStrings:Postgres"] = "Host=db;Username=u;Password=p;Database=loyalty",
        }).Build();
        Assert.Null(ConfigurationCheck.FirstError(tuned));
    }

    [Theory]
    [InlineData("Loyalty:Ledger:BatchDelayMax", "00:00:06", "Loyalty:Ledger:BatchDelayMax = '00:00:06' must be below Loyalty:Ledger:CommitTimeout")]
    [InlineData("Loyalty:Settlement:Queues", "65", "Loyalty:Settlement:Queues = '65' is not a whole number from 1 to 64")]
    [InlineData("Loyalty:Auth:Authority", "idp.bank", "Loyalty:Auth:Authority = 'idp.bank' is not an absolute URL")]
    [InlineData("Loyalty:GrainDirectory:CacheSize", "lots", "Loyalty:GrainDirectory:CacheSize = 'lots' is not a whole number")]
    [InlineData("ConnectionStrings:Postgres", "Hots=db", "ConnectionStrings:Postgres is not a PostgreSQL connection string")]
    public void The_settings_check_names_the_setting_and_value(string key, string value, string expected)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { [key] = value }).Build();
        Assert.StartsWith($"configuration: {expected}", ConfigurationCheck.FirstError(configuration), StringComparison.Ordinal);
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
