using System.Diagnostics;
using Grpc.Net.Client;
using LoyaltyGrains.Gateway.Auth;

namespace LoyaltyGrains.Tests.Durability;

/// <summary>The real silo (silo/LoyaltyGrains.Silo.dll) as a separate OS process on loopback ports, to kill -9.</summary>
public sealed class SiloProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly System.Text.StringBuilder _log = new();

    private SiloProcess(Process process, int grpcPort, string signingKey)
    {
        _process = process;
        GrpcPort = grpcPort;
        SigningKey = signingKey;
        // The channel carries an admin+processor token signed with this silo's key.
        Channel = BearerTokenHandler.Channel($"http://127.0.0.1:{grpcPort}", Token("tests", [LoyaltyClaims.Admin, LoyaltyClaims.Processor]));
    }

    /// <summary>This silo's HMAC key (its own, random: the tests never touch the user's development key).</summary>
    public string SigningKey { get; }

    public string Token(string subject, string[] roles, string? partnerId = null) =>
        LoyaltyTokens.Mint(new LoyaltyAuthOptions { SigningKey = SigningKey }, new TokenRequest(subject, roles, partnerId, TimeSpan.FromHours(2)));

    public int GrpcPort { get; }
    public GrpcChannel Channel { get; }
    public string Log
    {
        get
        {
            lock (_log) return _log.ToString();
        }
    }

    public static (int Grpc, int Silo, int Gateway, int Metrics) FreePorts() => (FreePort(), FreePort(), FreePort(), FreePort());

    /// <summary>Starts the silo and waits until its gRPC health check says SERVING; returns the time that took.</summary>
    public static async Task<(SiloProcess Silo, TimeSpan StartTime)> StartAsync(string postgres, (int Grpc, int Silo, int Gateway, int Metrics) ports,
        TimeSpan timeout)
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
        info.Environment["LOYALTY_GRPC_PORT"] = ports.Grpc.ToString(System.Globalization.CultureInfo.InvariantCulture);
        info.Environment["LOYALTY_SILO_PORT"] = ports.Silo.ToString(System.Globalization.CultureInfo.InvariantCulture);
        info.Environment["LOYALTY_GATEWAY_PORT"] = ports.Gateway.ToString(System.Globalization.CultureInfo.InvariantCulture);
        info.Environment["LOYALTY_METRICS_PORT"] = ports.Metrics.ToString(System.Globalization.CultureInfo.InvariantCulture);
        info.Environment["DOTNET_gcServer"] = "0";
        var signingKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        info.Environment[LoyaltyAuthOptions.SigningKeyVariable] = signingKey;
        var stopwatch = Stopwatch.StartNew();
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start the silo");
        var silo = new SiloProcess(process, ports.Grpc, signingKey);
        process.OutputDataReceived += (_, e) => silo.Append(e.Data);
        process.ErrorDataReceived += (_, e) => silo.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var health = new Grpc.Health.V1.Health.HealthClient(silo.Channel);
        while (true)
        {
            if (process.HasExited) throw new InvalidOperationException($"the silo exited with {process.ExitCode}:\n{silo.Log}");
            if (stopwatch.Elapsed > timeout) throw new TimeoutException($"the silo did not serve within {timeout}:\n{silo.Log}");
            try
            {
                var reply = await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(1));
                if (reply.Status == Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving) break;
            }
            catch (Grpc.Core.RpcException)
            {
            }
            await Task.Delay(100);
        }
        return (silo, stopwatch.Elapsed);
    }

    /// <summary>kill -9: no shutdown hooks, no flush, nothing graceful.</summary>
    public void KillHard()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit(10_000);
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
        lock (_log)
        {
            if (_log.Length < 200_000) _log.AppendLine(line);
        }
    }

    public static string SiloDll()
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

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
