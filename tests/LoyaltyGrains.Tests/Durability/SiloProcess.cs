using System.Diagnostics;
using System.Globalization;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace LoyaltyGrains.Tests.Durability;

/// <summary>The real silo (silo/LoyaltyGrains.Silo.dll) as a separate OS process on loopback ports, to kill -9 or SIGTERM.</summary>
public sealed class SiloProcess : IAsyncDisposable
{
    private const int HeadCharsMax = 100_000;
    private const int TailLinesMax = 200;

    private readonly Process _process;
    private readonly Stopwatch _started;
    // The start of the log (how it came up) and its last lines (what it did last): a storming log keeps both readable.
    private readonly System.Text.StringBuilder _head = new();
    private readonly Queue<string> _tail = new();
    private long _headLines;
    private long _lines;

    private SiloProcess(Process process, int grpcPort, Stopwatch started)
    {
        _process = process;
        _started = started;
        GrpcPort = grpcPort;
        Channel = GrpcChannel.ForAddress($"http://127.0.0.1:{grpcPort}");
    }

    public int GrpcPort { get; }
    public GrpcChannel Channel { get; }
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;
    public int? ExitCode => _process.HasExited ? _process.ExitCode : null;

    /// <summary>Lines the silo wrote to stdout and stderr so far (all of them, also those the kept log dropped).</summary>
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

    /// <summary>Log lines that match, for asserting what the silo said.</summary>
    public IReadOnlyList<string> LogLinesMatching(Func<string, bool> match)
    {
        lock (_head) return [.. _head.ToString().Split('\n').Concat(_tail).Where(match).Distinct()];
    }

    /// <summary>How long a start may take on a shared CI machine (migrations, Orleans, first health check).</summary>
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(45);

    public static (int Grpc, int Silo, int Gateway, int Metrics) FreePorts() => (FreePort(), FreePort(), FreePort(), FreePort());

    /// <summary>Starts the silo and waits until its gRPC health check says SERVING; returns the time that took.</summary>
    public static async Task<(SiloProcess Silo, TimeSpan StartTime)> StartAsync(string postgres, (int Grpc, int Silo, int Gateway, int Metrics) ports,
        TimeSpan timeout)
    {
        var silo = Launch(postgres, ports);
        try
        {
            return (silo, await silo.WaitUntilServingAsync(timeout));
        }
        catch
        {
            await silo.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts the silo process and returns at once (it may still be starting, or waiting for its database).</summary>
    public static SiloProcess Launch(string postgres, (int Grpc, int Silo, int Gateway, int Metrics) ports)
    {
        var dll = SiloDll();
        var info = new ProcessStartInfo("dotnet", $"\"{dll}\"")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        info.Environment["LOYALTY_POSTGRES"] = postgres;
        info.Environment["LOYALTY_GRPC_PORT"] = ports.Grpc.ToString(CultureInfo.InvariantCulture);
        info.Environment["LOYALTY_SILO_PORT"] = ports.Silo.ToString(CultureInfo.InvariantCulture);
        info.Environment["LOYALTY_GATEWAY_PORT"] = ports.Gateway.ToString(CultureInfo.InvariantCulture);
        info.Environment["LOYALTY_METRICS_PORT"] = ports.Metrics.ToString(CultureInfo.InvariantCulture);
        info.Environment["DOTNET_gcServer"] = "0";
        var stopwatch = Stopwatch.StartNew();
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start the silo");
        var silo = new SiloProcess(process, ports.Grpc, stopwatch);
        process.OutputDataReceived += (_, e) => silo.Append(e.Data);
        process.ErrorDataReceived += (_, e) => silo.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return silo;
    }

    /// <summary>Waits until the health check says SERVING; returns the time since launch. Fails at once if the silo exits.</summary>
    public async Task<TimeSpan> WaitUntilServingAsync(TimeSpan timeout)
    {
        var health = new Health.HealthClient(Channel);
        var waited = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited) throw new InvalidOperationException($"the silo exited with {_process.ExitCode}:\n{Log}");
            if (waited.Elapsed > timeout) throw new TimeoutException($"the silo did not serve within {timeout}:\n{Log}");
            if (await CheckHealthAsync(health) == HealthCheckResponse.Types.ServingStatus.Serving) return _started.Elapsed;
            await Task.Delay(100);
        }
    }

    /// <summary>The silo's overall health (service ""), or null when it does not answer within a second.</summary>
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
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit(10_000);
    }

    /// <summary>SIGTERM, as systemd or Kubernetes stop a service: the silo should drain and exit by itself.</summary>
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
        KillHard();
        Channel.Dispose();
        _process.Dispose();
        await Task.CompletedTask;
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

    private static string SiloDll()
    {
        // tests/LoyaltyGrains.Tests/bin/<Configuration>/net10.0 → silo/bin/<Configuration>/net10.0
        var testBin = new DirectoryInfo(AppContext.BaseDirectory);
        var configuration = testBin.Parent!.Name;
        for (var dir = testBin; dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "silo", "bin", configuration, testBin.Name, "LoyaltyGrains.Silo.dll");
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"silo/bin/{configuration}/{testBin.Name}/LoyaltyGrains.Silo.dll not found; build the solution first");
    }

    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
