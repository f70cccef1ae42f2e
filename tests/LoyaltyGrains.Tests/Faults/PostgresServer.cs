using System.Diagnostics;
using System.Globalization;
using LoyaltyGrains.Tests.Durability;
using Npgsql;

namespace LoyaltyGrains.Tests.Faults;

/// <summary>
/// A throwaway PostgreSQL cluster owned by one test, so it can be restarted, frozen or have its backends killed
/// without disturbing tests that share the suite's server: initdb into a temp directory, pg_ctl on a free
/// 127.0.0.1 port, fsync on. Binaries from $LOYALTY_TEST_PG_BIN or /usr/lib/postgresql/*/bin; as root, the server
/// runs as the postgres user (it refuses root). Dispose always thaws, stops and deletes it.
/// </summary>
public sealed class PostgresServer : IFaultDatabase
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);

    private readonly string _bin;
    private readonly string _dir;
    private readonly bool _asPostgresUser;
    private readonly HashSet<int> _frozen = [];
    private readonly IReadOnlyList<string> _settings;

    private PostgresServer(string bin, string dir, bool asPostgresUser, int port, string database, IReadOnlyList<string>? settings = null)
    {
        _bin = bin;
        _dir = dir;
        _asPostgresUser = asPostgresUser;
        Port = port;
        Database = database;
        _settings = settings ?? [];
    }

    public int Port { get; }
    public string Database { get; }
    private string DataDir => Path.Combine(_dir, "db");
    private string ServerLogPath => Path.Combine(_dir, "server.log");

    /// <summary>The test database, as the silo would be configured (Npgsql's default timeouts; no test-only tuning).</summary>
    public string ConnectionString => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1", Port = Port, Username = "postgres", Database = Database, MaxPoolSize = 200,
    }.ConnectionString;

    /// <summary>The maintenance database, for the admin's own connection (never pooled with the silo's).</summary>
    private string AdminConnectionString => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1", Port = Port, Username = "postgres", Database = "postgres", Pooling = false, Timeout = 5, CommandTimeout = 10,
    }.ConnectionString;

    /// <summary>The server's log so far (for failure messages).</summary>
    public string ServerLog => File.Exists(ServerLogPath) ? ReadShared(ServerLogPath) : "(no server log)";

    /// <summary>
    /// initdb, start, and create <paramref name="database"/> (empty: the silo applies its migrations). Each of
    /// <paramref name="settings"/> (<c>name=value</c>, quoted for a shell where needed) is a server option on every start.
    /// </summary>
    public static async Task<PostgresServer> StartAsync(string database = "loyalty", IReadOnlyList<string>? settings = null)
    {
        var bin = FindBin();
        var dir = Directory.CreateTempSubdirectory("loyalty-pgfault.").FullName;
        var asPostgresUser = Environment.UserName == "root";
        var server = new PostgresServer(bin, dir, asPostgresUser, EngineProcess.FreePort(), database, settings);
        try
        {
            if (asPostgresUser) await server.RunAsync("chown", ["-R", "postgres", dir]);
            await server.RunPgAsync("initdb", ["-D", server.DataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]);
            await server.StartServerAsync();
            await using var connection = new NpgsqlConnection(server.AdminConnectionString);
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{database}\"", connection);
            await create.ExecuteNonQueryAsync();
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// A new server from a base backup (a plain-format <c>pg_basebackup</c> directory), recovered from the WAL archive
    /// <paramref name="walArchive"/> up to <paramref name="recoverySettings"/>' target (e.g. <c>recovery_target_name='x'</c>)
    /// and promoted; returns once it takes writes. Its own directory and port; the backup is copied, not used in place.
    /// </summary>
    public static async Task<PostgresServer> RestoreAsync(string baseBackup, string walArchive, IReadOnlyList<string> recoverySettings, string database = "loyalty")
    {
        var dir = Directory.CreateTempSubdirectory("loyalty-pgrestore.").FullName;
        var asPostgresUser = Environment.UserName == "root";
        var server = new PostgresServer(FindBin(), dir, asPostgresUser, EngineProcess.FreePort(), database,
            [$"restore_command='cp {walArchive}/%f %p'", "recovery_target_action=promote", .. recoverySettings]);
        try
        {
            if (asPostgresUser) await server.RunAsync("chown", ["-R", "postgres", dir]);
            await server.RunAsUserAsync("cp", ["-a", baseBackup, server.DataDir]);
            await server.RunAsUserAsync("touch", [Path.Combine(server.DataDir, "recovery.signal")]);
            await server.StartServerAsync();
            for (var attempt = 0; ; attempt++)
            {
                await using var connection = new NpgsqlConnection(server.AdminConnectionString);
                await connection.OpenAsync();
                await using var inRecovery = new NpgsqlCommand("SELECT pg_is_in_recovery()", connection);
                if (!(bool)(await inRecovery.ExecuteScalarAsync())!) return server;
                if (attempt >= 240) throw new InvalidOperationException($"the restored server did not finish recovery in 120 s; server log:\n{server.ServerLog}");
                await Task.Delay(500);
            }
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Lets clients from <paramref name="cidr"/> in without a password (pg_hba.conf), as initdb lets in loopback.</summary>
    public async Task AllowHostsAsync(string cidr)
    {
        await File.AppendAllTextAsync(Path.Combine(DataDir, "pg_hba.conf"), $"{Environment.NewLine}host all all {cidr} trust{Environment.NewLine}");
        await AdminScalarAsync("SELECT pg_reload_conf()");
    }

    /// <summary>A directory under the server's own, owned by the server's user (a WAL archive, a base backup's parent).</summary>
    public async Task<string> OwnedDirectoryAsync(string name)
    {
        var path = Path.Combine(_dir, name);
        Directory.CreateDirectory(path);
        if (_asPostgresUser) await RunAsync("chown", ["postgres", path]);
        return path;
    }

    /// <summary>A PostgreSQL client tool (pg_basebackup, …) from the server's binaries, as the server's user.</summary>
    public Task RunToolAsync(string tool, IReadOnlyList<string> arguments) => RunPgAsync(tool, arguments);

    /// <summary>One statement on the maintenance database (its own connection); returns the first column of the first row.</summary>
    public async Task<object?> AdminScalarAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }

    /// <summary>pg_terminate_backend of every backend of the test database (not the admin connection that asks).</summary>
    public async Task<int> TerminateBackendsAsync()
    {
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var terminate = new NpgsqlCommand(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", connection);
        terminate.Parameters.Add(new NpgsqlParameter { Value = Database });
        return (int)(long)(await terminate.ExecuteScalarAsync())!;
    }

    /// <summary>Stops the server (fast: sessions ended; immediate: as a crash, recovery on start).</summary>
    public async Task StopAsync(bool immediate = false)
    {
        Thaw();
        await RunPgAsync("pg_ctl", ["-D", DataDir, "-m", immediate ? "immediate" : "fast", "-w", "-t", "60", "stop"], allowFailure: true);
    }

    /// <summary>Starts it again on the same port and data directory (after <see cref="StopAsync"/>).</summary>
    public Task StartAgainAsync() => StartServerAsync();

    /// <summary>Stop, then start again on the same port and data directory after <paramref name="down"/>.</summary>
    public async Task RestartAsync(TimeSpan down, bool immediate = true)
    {
        await StopAsync(immediate);
        await Task.Delay(down);
        await StartServerAsync();
    }

    /// <summary>
    /// SIGSTOP to the postmaster and every process under it: connections stay open and requests go unanswered, the
    /// way a hung server or a lost network path looks to a client (no error, no reset).
    /// </summary>
    /// <returns>How many processes it stopped.</returns>
    public int Freeze()
    {
        var postmaster = PostmasterPid() ?? throw new InvalidOperationException($"no running postmaster in {DataDir}");
        // The postmaster first, so it forks no new child while its children are being stopped; then until no new one appears.
        Stop(postmaster);
        for (var round = 0; round < 10; round++)
        {
            var fresh = Descendants(postmaster).Where(pid => !_frozen.Contains(pid)).ToList();
            if (fresh.Count == 0) break;
            fresh.ForEach(Stop);
        }
        return _frozen.Count;

        void Stop(int pid)
        {
            if (Signals.Send(pid, Signals.Stop)) _frozen.Add(pid);
        }
    }

    /// <summary>SIGCONT to every process <see cref="Freeze"/> stopped (harmless when nothing is frozen).</summary>
    public void Thaw()
    {
        foreach (var pid in _frozen) Signals.Send(pid, Signals.Cont);
        _frozen.Clear();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            Thaw();
            if (File.Exists(Path.Combine(DataDir, "postmaster.pid")))
            {
                await RunPgAsync("pg_ctl", ["-D", DataDir, "-m", "immediate", "-w", "-t", "30", "stop"], allowFailure: true);
            }
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            try
            {
                Directory.Delete(_dir, recursive: true);
            }
            catch (IOException)
            {
                // A server that would not stop still holds files; the temp directory is left for the OS to clean.
            }
        }
    }

    private async Task StartServerAsync()
    {
        RemoveStalePidFile();
        var options = string.Join(' ',
            "-h 127.0.0.1", $"-p {Port.ToString(CultureInfo.InvariantCulture)}", $"-k {_dir}", "-c max_connections=200",
            "-c fsync=on", "-c synchronous_commit=on", "-c shared_buffers=64MB", string.Join(' ', _settings.Select(setting => $"-c {setting}")));
        var started = await RunPgAsync("pg_ctl", ["-D", DataDir, "-l", ServerLogPath, "-w", "-t", "60", "-o", options, "start"], allowFailure: true);
        for (var i = 0; i < 60; i++)
        {
            if (await RunPgAsync("pg_isready", ["-h", "127.0.0.1", "-p", Port.ToString(CultureInfo.InvariantCulture), "-q"], allowFailure: true) == 0) return;
            await Task.Delay(500);
        }
        throw new InvalidOperationException($"PostgreSQL did not become ready on port {Port} (pg_ctl start exited {started}); server log:\n{ServerLog}");
    }

    /// <summary>A pid file left by a server that is gone (killed, or the machine restarted) would stop pg_ctl start.</summary>
    private void RemoveStalePidFile()
    {
        var pidFile = Path.Combine(DataDir, "postmaster.pid");
        if (File.Exists(pidFile) && PostmasterPid() is null) File.Delete(pidFile);
    }

    private int? PostmasterPid() => ProcessTree.PostmasterPid(DataDir);

    private static List<int> Descendants(int root) => ProcessTree.Descendants(root);

    private static string FindBin()
    {
        if (Environment.GetEnvironmentVariable("LOYALTY_TEST_PG_BIN") is { Length: > 0 } configured) return configured;
        var found = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "pg_ctl"))).Order().LastOrDefault()
            : null;
        return found ?? throw new InvalidOperationException("PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin; set LOYALTY_TEST_PG_BIN (scripts/test.sh installs them)");
    }

    private Task<int> RunAsUserAsync(string file, IReadOnlyList<string> arguments) =>
        _asPostgresUser ? RunAsync("runuser", ["-u", "postgres", "--", file, .. arguments]) : RunAsync(file, arguments);

    private Task<int> RunPgAsync(string tool, IReadOnlyList<string> arguments, bool allowFailure = false) =>
        _asPostgresUser
            ? RunAsync("runuser", ["-u", "postgres", "--", Path.Combine(_bin, tool), .. arguments], allowFailure)
            : RunAsync(Path.Combine(_bin, tool), arguments, allowFailure);

    private async Task<int> RunAsync(string file, IReadOnlyList<string> arguments, bool allowFailure = false)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
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
            throw new TimeoutException($"{file} {string.Join(' ', arguments)} did not finish within {CommandTimeout}");
        }
        if (process.ExitCode != 0 && !allowFailure)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} exited {process.ExitCode}:\n{await stdout}{await stderr}");
        }
        return process.ExitCode;
    }

    private static string ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
