using System.Diagnostics;
using Grpc.Health.V1;
using Grpc.Net.Client;
using LoyaltyGrains.Gateway.Auth;

namespace LoyaltyGrains.Tests.Durability;

/// <summary>
/// An engine host (a silo, or a gateway joining the silos as an Orleans client) as a separate OS process on loopback
/// ports: started from its built dll, its log kept, ready-checked by gRPC health, killed (-9) or stopped (SIGTERM).
/// </summary>
public abstract class EngineProcess : IAsyncDisposable
{
    private const int HeadCharsMax = 100_000;
    private const int TailLinesMax = 200;

    private readonly Process _process;
    private readonly Stopwatch _started;
    private readonly string _what;
    // The start of the log (how it came up) and its last lines (what it did last): a storming log keeps both readable.
    private readonly System.Text.StringBuilder _head = new();
    private readonly Queue<string> _tail = new();
    private long _headLines;
    private long _lines;
    // Kept at disposal: a caller may still hold a process the cluster replaced (its exit code stays readable, like its log).
    private bool _disposed;
    private int? _exitCodeAtDisposal;

    /// <summary>
    /// Starts <paramref name="dll"/> with <paramref name="environment"/> and returns at once; <paramref name="what"/> names it
    /// in messages. <paramref name="launcher"/> runs it through another command (e.g. <c>ip netns exec NAME</c>), and
    /// <paramref name="host"/> is where its gRPC and metrics ports are reached.
    /// </summary>
    protected EngineProcess(string what, string dll, IReadOnlyDictionary<string, string> environment, int grpcPort, int metricsPort,
        IReadOnlyList<string>? launcher = null, string host = "127.0.0.1")
    {
        _what = what;
        MetricsPort = metricsPort;
        Host = host;
        var info = new ProcessStartInfo(launcher is { Count: > 0 } ? launcher[0] : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        foreach (var argument in launcher is { Count: > 0 } ? [.. launcher.Skip(1), "dotnet", dll] : new[] { dll }) info.ArgumentList.Add(argument);
        foreach (var (name, value) in environment) info.Environment[name] = value;
        info.Environment["DOTNET_gcServer"] = "0";
        // One key for every engine process of this test run, so silos and gateways of one cluster accept the same
        // tokens; random, so the tests never touch the user's development key.
        info.Environment[LoyaltyAuthOptions.SigningKeyVariable] = SigningKey;
        _started = Stopwatch.StartNew();
        _process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {what}");
        Pid = _process.Id;
        GrpcPort = grpcPort;
        // The channel carries an admin+processor token signed with the run's key.
        Channel = BearerTokenHandler.Channel($"http://{host}:{grpcPort}", Token("tests", [LoyaltyClaims.Admin, LoyaltyClaims.Processor]));
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>The HMAC key every engine process of this test run is started with.</summary>
    public static string SigningKey { get; } = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    /// <summary>A token for this run's engines, with the given subject, roles and partner.</summary>
    public static string Token(string subject, string[] roles, string? partnerId = null) =>
        LoyaltyTokens.Mint(new LoyaltyAuthOptions { SigningKey = SigningKey }, new TokenRequest(subject, roles, partnerId, TimeSpan.FromHours(2)));

    public string Host { get; }
    public int GrpcPort { get; }
    public int MetricsPort { get; }
    public GrpcChannel Channel { get; }
    public int Pid { get; }
    public bool HasExited => _disposed || _process.HasExited;
    public int? ExitCode => _disposed ? _exitCodeAtDisposal : _process.HasExited ? _process.ExitCode : null;

    /// <summary>Lines the process wrote to stdout and stderr so far (all of them, also those the kept log dropped).</summary>
    public long LogLines
    {
        get
        {
            lock (_head) return _lines;
        }
    }

    /// <summary>The log for a failure message: its start, then its last lines.</summary>
    public string Log
    {
        get
        {
            lock (_head)
            {
                var after = _lines - _headLines;
                var dropped = after - _tail.Count;
                return _head + (dropped > 0 ? $"[… {dropped} lines …]\n" : "") + string.Join('\n', _tail.TakeLast((int)Math.Min(after, _tail.Count)));
            }
        }
    }

    /// <summary>The last lines of the log, for failure messages that already have the start.</summary>
    public string LogTail(int lines = 60)
    {
        lock (_head) return string.Join('\n', _tail.TakeLast(lines));
    }

    /// <summary>Log lines that match, for asserting what the process said.</summary>
    public IReadOnlyList<string> LogLinesMatching(Func<string, bool> match)
    {
        lock (_head) return [.. _head.ToString().Split('\n').Concat(_tail).Where(match).Distinct()];
    }

    /// <summary>Waits until the health check says SERVING; returns the time since launch. Fails at once if the process exits.</summary>
    public async Task<TimeSpan> WaitUntilServingAsync(TimeSpan timeout)
    {
        var health = new Health.HealthClient(Channel);
        var waited = Stopwatch.StartNew();
        var answers = new Dictionary<string, int>();
        while (true)
        {
            if (_process.HasExited) throw new InvalidOperationException($"{_what} exited with {_process.ExitCode}:\n{Log}");
            if (waited.Elapsed > timeout)
            {
                // What health said meanwhile and why the node is not ready, so a slow start can be told from a stuck one.
                throw new TimeoutException($"{_what} did not serve within {timeout}; health answers: " +
                    $"{string.Join(", ", answers.Select(a => $"{a.Key} x{a.Value}"))}; /readyz: {await ReadinessAsync()}\n{Log}");
            }
            var status = await CheckHealthAsync(health);
            if (status == HealthCheckResponse.Types.ServingStatus.Serving) return _started.Elapsed;
            var answer = status?.ToString() ?? "no answer within 1 s";
            answers[answer] = answers.GetValueOrDefault(answer) + 1;
            await Task.Delay(100);
        }
    }

    /// <summary>The readiness report from the metrics port (overall, then each check with its reason), for failure messages.</summary>
    public async Task<string> ReadinessAsync()
    {
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            using var reply = await http.GetAsync($"http://{Host}:{MetricsPort}/readyz");
            return $"{(int)reply.StatusCode} {(await reply.Content.ReadAsStringAsync()).Trim().Replace('\n', ';')}";
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return $"no answer ({ex.GetBaseException().Message})";
        }
    }

    /// <summary>The overall health (service ""), or null when there is no answer within a second.</summary>
    public static async Task<HealthCheckResponse.Types.ServingStatus?> CheckHealthAsync(Health.HealthClient health)
    {
        try
        {
            var reply = await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(1));
            return reply.Status;
        }
        catch (Grpc.Core.RpcException)
        {
            return null;
        }
    }

    /// <summary>kill -9: no shutdown hooks, no flush, nothing graceful.</summary>
    public void KillHard()
    {
        if (_disposed) return;
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit(10_000);
    }

    /// <summary>SIGTERM, as systemd or Kubernetes stop a service: the process should drain and exit by itself.</summary>
    public void Terminate()
    {
        if (!_process.HasExited && !Signals.Send(_process.Id, Signals.Term) && !_process.HasExited)
        {
            throw new InvalidOperationException($"kill -TERM {_process.Id} failed");
        }
    }

    /// <summary>Waits at most <paramref name="timeout"/> for the process to exit; its exit code, or null if it is still running.</summary>
    public async Task<int?> WaitForExitAsync(TimeSpan timeout)
    {
        using var limit = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        KillHard();
        _exitCodeAtDisposal = _process.HasExited ? _process.ExitCode : null;
        _disposed = true;
        Channel.Dispose();
        _process.Dispose();
        GC.SuppressFinalize(this);
        await Task.CompletedTask;
    }

    /// <summary>
    /// The built dll of a project of this repository, <paramref name="projectDir"/>/bin/&lt;Configuration&gt;/net10.0,
    /// for the configuration the tests were built in (tests/LoyaltyGrains.Tests/bin/&lt;Configuration&gt;/net10.0).
    /// </summary>
    protected static string BuiltDll(string projectDir, string dllName)
    {
        var testBin = new DirectoryInfo(AppContext.BaseDirectory);
        var configuration = testBin.Parent!.Name;
        for (var dir = testBin; dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, projectDir, "bin", configuration, testBin.Name, dllName);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"{projectDir}/bin/{configuration}/{testBin.Name}/{dllName} not found; build the solution first");
    }

    /// <summary>The built silo, for tests that run it with their own arguments (verbs, start-up refusals).</summary>
    public static string SiloDll() => BuiltDll("silo", "LoyaltyGrains.Silo.dll");

    /// <summary>
    /// A free port below the kernel's ephemeral range (32768+): a port the kernel hands out to test ports asked for
    /// "any" can be taken by an outgoing connection (database clients, the load) before the process binds it.
    /// </summary>
    public static int FreePort()
    {
        for (var attempt = 0; attempt < 1_000; attempt++)
        {
            var port = Random.Shared.Next(20_000, 32_000);
            try
            {
                using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (System.Net.Sockets.SocketException)
            {
            }
        }
        throw new InvalidOperationException("no free port in 20000..31999");
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_head)
        {
            _lines++;
            if (_head.Length < HeadCharsMax)
            {
                _head.AppendLine(line);
                _headLines++;
            }
            _tail.Enqueue(line);
            if (_tail.Count > TailLinesMax) _tail.Dequeue();
        }
    }
}
