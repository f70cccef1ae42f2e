using System.Diagnostics;
using System.Globalization;
using LoyaltyGrains.Tests.Durability;
using LoyaltyGrains.Tests.Faults;
using Npgsql;

namespace LoyaltyGrains.Tests.Failover;

/// <summary>
/// A real pg_auto_failover formation on loopback, owned by one test: a monitor, a primary and a synchronous standby,
/// each its own data directory, port and <c>pg_autoctl run</c> keeper (as the postgres user when the tests run as root:
/// pg_autoctl and PostgreSQL refuse root). The monitor is tuned with <see cref="MonitorSettings"/> and the keepers with
/// <see cref="NetworkPartitionTimeoutSeconds"/> (see docs/OPERATIONS.md). A node's "machine" is lost by SIGKILL to its
/// keeper and every PostgreSQL process under it. Dispose kills every process of the formation and deletes its directory.
/// </summary>
public sealed class AutoFailoverFormation : IFaultDatabase
{
    public const string DatabaseName = "loyalty";

    /// <summary>
    /// The monitor's failure detection and promotion timing (its defaults promote ~50 s after a primary is lost:
    /// 20 s to call it unhealthy, 30 s demote timeout). Health checked every second with a 2 s connect timeout and two
    /// retries; unhealthy once those fail and its keeper has not reported for 6 s; promoted 10 s after that (the time
    /// the old primary has to notice it is cut off and demote itself: kept above the keepers' network partition timeout).
    /// </summary>
    public static readonly IReadOnlyList<(string Name, string Value)> MonitorSettings =
    [
        ("pgautofailover.health_check_period", "1000"),
        ("pgautofailover.health_check_timeout", "2000"),
        ("pgautofailover.health_check_max_retries", "2"),
        ("pgautofailover.health_check_retry_delay", "1000"),
        ("pgautofailover.node_considered_unhealthy_timeout", "6000"),
        ("pgautofailover.primary_demote_timeout", "10000"),
    ];

    /// <summary>A keeper that reaches neither the monitor nor a standby for this long demotes its own primary (default 20 s).</summary>
    public const int NetworkPartitionTimeoutSeconds = 8;

    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(120);

    private readonly string _bin;
    private readonly string _dir;
    private readonly bool _asPostgresUser;
    private readonly List<Keeper> _keepers = [];
    private long _readyEventId;

    private AutoFailoverFormation(string bin, string dir, bool asPostgresUser, string targetSessionAttributes)
    {
        _bin = bin;
        _dir = dir;
        _asPostgresUser = asPostgresUser;
        TargetSessionAttributes = targetSessionAttributes;
        MonitorPort = EngineProcess.FreePort();
        NodePorts = [EngineProcess.FreePort(), EngineProcess.FreePort()];
    }

    public int MonitorPort { get; }
    public IReadOnlyList<int> NodePorts { get; }
    public string TargetSessionAttributes { get; }

    /// <summary>
    /// Both nodes in one multi-host string, as docs/OPERATIONS.md tells an operator to configure the engine: a host seen
    /// down or read-only is asked again after 2 s (Npgsql's default is 10 s, which would hold writes that long after
    /// the promoted node opens for writes). The pool size is the only test-only setting.
    /// </summary>
    public string ConnectionString => new NpgsqlConnectionStringBuilder
    {
        Host = string.Join(',', NodePorts.Select(p => $"127.0.0.1:{p.ToString(CultureInfo.InvariantCulture)}")),
        Username = "postgres", Database = DatabaseName, TargetSessionAttributes = TargetSessionAttributes, HostRecheckSeconds = 2, MaxPoolSize = 50,
    }.ConnectionString;

    private string MonitorConnectionString => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1", Port = MonitorPort, Username = "postgres", Database = "pg_auto_failover", Pooling = false, Timeout = 5, CommandTimeout = 10,
    }.ConnectionString;

    public string ServerLog => string.Join('\n', _keepers.Select(k => $"--- {k.Name} keeper log (last lines):\n" +
        string.Join('\n', (File.Exists(k.LogPath) ? ReadShared(k.LogPath) : "").Split('\n').TakeLast(15))));

    /// <summary>Creates and starts monitor, primary (node1) and standby (node2), and waits until they are primary and secondary.</summary>
    public static async Task<AutoFailoverFormation> StartAsync(string targetSessionAttributes)
    {
        var dir = Directory.CreateTempSubdirectory("loyalty-pgaf.").FullName;
        var formation = new AutoFailoverFormation(FindBin(), dir, Environment.UserName == "root", targetSessionAttributes);
        try
        {
            foreach (var state in new[] { "config", "share", "run" }) Directory.CreateDirectory(Path.Combine(dir, state));
            if (formation._asPostgresUser) await formation.RunAsync("chown", ["-R", "postgres", dir]);
            await formation.StartMonitorAsync();
            await formation.StartNodeAsync("node1", formation.NodePorts[0]);
            await formation.WaitForAsync("node1 to be the single primary", rows => rows.Any(r => r is { Name: "node1", Reported: "single", Goal: "single" }), TimeSpan.FromSeconds(60));
            await formation.StartNodeAsync("node2", formation.NodePorts[1]);
            await formation.WaitForAsync("node1 primary and node2 secondary", rows =>
                rows.Any(r => r is { Name: "node1", Reported: "primary", Goal: "primary" }) && rows.Any(r => r is { Name: "node2", Reported: "secondary", Goal: "secondary" }),
                TimeSpan.FromSeconds(90));
            formation._readyEventId = await formation.LastEventIdAsync();
            return formation;
        }
        catch
        {
            await formation.DisposeAsync();
            throw;
        }
    }

    public sealed record NodeState(string Name, int Port, string Reported, string Goal);

    /// <summary>Every node as the monitor sees it.</summary>
    public async Task<IReadOnlyList<NodeState>> StatesAsync()
    {
        await using var connection = new NpgsqlConnection(MonitorConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT nodename, nodeport, reportedstate::text, goalstate::text FROM pgautofailover.node ORDER BY nodeid", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var states = new List<NodeState>();
        while (await reader.ReadAsync()) states.Add(new NodeState(reader.GetString(0), reader.GetInt32(1), reader.GetString(2), reader.GetString(3)));
        return states;
    }

    /// <summary>The node both reported and assigned primary (the one that takes writes), or null.</summary>
    public async Task<NodeState?> PrimaryAsync() =>
        (await StatesAsync()).FirstOrDefault(s => s.Reported == s.Goal && s.Reported is "primary" or "wait_primary" or "single");

    /// <summary>
    /// The monitor's failure decisions since the formation was ready: failovers (a primary's goal set to draining
    /// because it "became unhealthy") and health alarms (a node "marked as unhealthy"). Read before the kill, they are
    /// the false failovers and false alarms under load.
    /// </summary>
    public async Task<(int Failovers, int Unhealthy)> FailoverEventsAsync()
    {
        await using var connection = new NpgsqlConnection(MonitorConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            """
            SELECT count(*) FILTER (WHERE goalstate = 'draining' AND description LIKE '%became unhealthy%'),
                   count(*) FILTER (WHERE description LIKE '%marked as unhealthy%')
              FROM pgautofailover.event
             WHERE eventid > $1
            """, connection);
        command.Parameters.Add(new NpgsqlParameter { Value = _readyEventId });
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return ((int)reader.GetInt64(0), (int)reader.GetInt64(1));
    }

    private async Task<long> LastEventIdAsync()
    {
        await using var connection = new NpgsqlConnection(MonitorConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT coalesce(max(eventid), 0) FROM pgautofailover.event", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Client connections to the loyalty database on <paramref name="node"/> (the engine's pools), not counting this one.</summary>
    public async Task<int> ClientConnectionsAsync(NodeState node)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = node.Port, Username = "postgres", Database = DatabaseName, Pooling = false, Timeout = 5,
        }.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = DatabaseName });
        return (int)(long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>The node's whole machine lost: SIGKILL to its keeper, the keeper's children and every PostgreSQL process of the node at once.</summary>
    /// <returns>How many processes were killed.</returns>
    public int LoseMachine(string nodeName)
    {
        var keeper = _keepers.Single(k => k.Name == nodeName);
        var pids = new HashSet<int>();
        if (!keeper.Process.HasExited)
        {
            pids.Add(keeper.Process.Id);
            pids.UnionWith(ProcessTree.Descendants(keeper.Process.Id));
        }
        if (ProcessTree.PostmasterPid(keeper.DataDir) is { } postmaster)
        {
            pids.Add(postmaster);
            pids.UnionWith(ProcessTree.Descendants(postmaster));
        }
        return pids.Count(ProcessTree.Kill);
    }

    /// <summary>A planned switchover (<c>pg_autoctl perform switchover</c>): returns once the monitor reports it done.</summary>
    public Task SwitchoverAsync() =>
        RunAutoctlAsync(["perform", "switchover", "--pgdata", Path.Combine(_dir, "monitor"), "--formation", "default", "--group", "0"]);

    /// <summary>Waits until the monitor's view of the nodes satisfies <paramref name="done"/>; throws with the states after <paramref name="timeout"/>.</summary>
    public async Task WaitForAsync(string what, Func<IReadOnlyList<NodeState>, bool> done, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        IReadOnlyList<NodeState> states = [];
        while (clock.Elapsed < timeout)
        {
            try
            {
                states = await StatesAsync();
                if (done(states)) return;
            }
            catch (NpgsqlException)
            {
                // The monitor is starting up.
            }
            await Task.Delay(500);
        }
        throw new TimeoutException($"waited {timeout.TotalSeconds:0} s for {what}; monitor says: " +
            string.Join(", ", states.Select(s => $"{s.Name} {s.Reported}/{s.Goal}")) + $"\n{ServerLog}");
    }

    public void Thaw()
    {
        // Nothing is ever frozen in a formation: its faults are kills and switchovers.
    }

    public async ValueTask DisposeAsync()
    {
        // Data nodes before the monitor, so no keeper reacts to the monitor's going; all with SIGKILL (nothing here is kept).
        foreach (var keeper in Enumerable.Reverse(_keepers)) LoseMachine(keeper.Name);
        foreach (var keeper in _keepers)
        {
            try
            {
                await keeper.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (TimeoutException)
            {
            }
            keeper.Process.Dispose();
        }
        NpgsqlConnection.ClearAllPools();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // A process that would not die still holds files; the temp directory is left for the OS to clean.
        }
    }

    private async Task StartMonitorAsync()
    {
        var data = Path.Combine(_dir, "monitor");
        await RunAutoctlAsync(["create", "monitor", "--pgdata", data, "--pgport", Port(MonitorPort), "--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl"]);
        // The monitor listens on every interface by default: loopback only, like everything a test starts.
        await RunAutoctlAsync(["config", "set", "--pgdata", data, "postgresql.listen_addresses", "127.0.0.1"]);
        Launch("monitor", data);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await using var connection = new NpgsqlConnection(MonitorConnectionString);
                await connection.OpenAsync();
                foreach (var (name, value) in MonitorSettings)
                {
                    await using var set = new NpgsqlCommand($"ALTER SYSTEM SET {name} = {value}", connection);
                    await set.ExecuteNonQueryAsync();
                }
                await using var reload = new NpgsqlCommand("SELECT pg_reload_conf()", connection);
                await reload.ExecuteNonQueryAsync();
                return;
            }
            catch (NpgsqlException) when (attempt < 60)
            {
                await Task.Delay(500);
            }
        }
    }

    private async Task StartNodeAsync(string name, int port)
    {
        var data = Path.Combine(_dir, name);
        var monitor = $"postgres://autoctl_node@127.0.0.1:{Port(MonitorPort)}/pg_auto_failover?sslmode=disable";
        await RunAutoctlAsync(["create", "postgres", "--pgdata", data, "--pgport", Port(port), "--listen", "127.0.0.1", "--hostname", "127.0.0.1",
            "--name", name, "--auth", "trust", "--no-ssl", "--monitor", monitor, "--dbname", DatabaseName, "--username", "postgres"]);
        await RunAutoctlAsync(["config", "set", "--pgdata", data, "timeout.network_partition_timeout", NetworkPartitionTimeoutSeconds.ToString(CultureInfo.InvariantCulture)]);
        Launch(name, data);
    }

    private void Launch(string name, string data)
    {
        var log = Path.Combine(_dir, $"{name}.log");
        var keeper = Start("sh", ["-c", "exec \"$0\" run --pgdata \"$1\" >>\"$2\" 2>&1", "pg_autoctl", data, log]);
        _keepers.Add(new Keeper(name, data, log, keeper));
    }

    private sealed record Keeper(string Name, string DataDir, string LogPath, Process Process);

    private Task RunAutoctlAsync(IReadOnlyList<string> arguments) => RunProcessAsync(Start("pg_autoctl", arguments), $"pg_autoctl {string.Join(' ', arguments)}");

    private Task RunAsync(string file, IReadOnlyList<string> arguments)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        return RunProcessAsync(Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}"), $"{file} {string.Join(' ', arguments)}");
    }

    /// <summary>Starts <paramref name="file"/> as the postgres user (as root) with this formation's own pg_autoctl state directories.</summary>
    private Process Start(string file, IReadOnlyList<string> arguments)
    {
        var environment = new[]
        {
            $"XDG_CONFIG_HOME={Path.Combine(_dir, "config")}", $"XDG_DATA_HOME={Path.Combine(_dir, "share")}",
            $"XDG_RUNTIME_DIR={Path.Combine(_dir, "run")}", $"PG_CONFIG={Path.Combine(_bin, "pg_config")}",
            $"PATH={_bin}:/usr/bin:/bin", $"HOME={_dir}",
        };
        var info = new ProcessStartInfo(_asPostgresUser ? "runuser" : "env") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (_asPostgresUser)
        {
            foreach (var argument in new[] { "-u", "postgres", "--", "env" }) info.ArgumentList.Add(argument);
        }
        foreach (var variable in environment) info.ArgumentList.Add(variable);
        info.ArgumentList.Add(file);
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        return Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
    }

    private static async Task RunProcessAsync(Process process, string what)
    {
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var limit = new CancellationTokenSource(CommandTimeout);
            try
            {
                await process.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"{what} did not finish within {CommandTimeout}");
            }
            if (process.ExitCode != 0) throw new InvalidOperationException($"{what} exited {process.ExitCode}:\n{await stdout}{await stderr}");
        }
    }

    private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);

    private static string FindBin()
    {
        if (Environment.GetEnvironmentVariable("LOYALTY_TEST_PG_BIN") is { Length: > 0 } configured) return configured;
        var found = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "pg_ctl"))).Order().LastOrDefault()
            : null;
        if (found is null || !File.Exists("/usr/bin/pg_autoctl"))
        {
            throw new InvalidOperationException("pg_auto_failover not found (/usr/bin/pg_autoctl and /usr/lib/postgresql/*/bin); scripts/test.sh installs postgresql-*-auto-failover");
        }
        return found;
    }

    private static string ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
