using System.Diagnostics;

namespace LoyaltyGrains.LoadTests;

/// <summary>
/// The echo baseline in a separate process: this tool started again as <c>--serve-echo 0</c> (same binary, same
/// runtime settings). It prints its address on its first line; it stops when disposed, or by itself when this
/// process's end closes its standard input.
/// </summary>
public sealed class EchoProcess : IDisposable
{
    public const string AddressPrefix = "echo listening on ";

    private readonly Process _process;

    private EchoProcess(Process process, string address)
    {
        _process = process;
        Address = address;
    }

    public string Address { get; }
    public int Pid => _process.Id;

    public static async Task<EchoProcess> StartAsync(int port, CancellationToken cancellation)
    {
        var start = SelfStart();
        start.ArgumentList.Add("--serve-echo");
        start.ArgumentList.Add(port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        start.RedirectStandardInput = true;
        start.RedirectStandardOutput = true;
        start.UseShellExecute = false;
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the echo server process");
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                if (line.StartsWith(AddressPrefix, StringComparison.Ordinal)) return new EchoProcess(process, line[AddressPrefix.Length..].Trim());
            }
            throw new InvalidOperationException($"the echo server process exited (code {(process.WaitForExit(1_000) ? process.ExitCode : -1)}) before listening");
        }
        catch
        {
            Stop(process);
            throw;
        }
    }

    /// <summary>How to run this tool again: the apphost, or <c>dotnet tool.dll</c> when started through dotnet.</summary>
    private static ProcessStartInfo SelfStart()
    {
        var host = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell where this tool's executable is");
        var assembly = typeof(EchoProcess).Assembly.Location;
        var start = new ProcessStartInfo(host);
        if (Path.GetFileNameWithoutExtension(host) == "dotnet") start.ArgumentList.Add(assembly);
        return start;
    }

    public void Dispose()
    {
        Stop(_process);
        _process.Dispose();
    }

    private static void Stop(Process process)
    {
        try
        {
            process.StandardInput.Close();
            if (!process.WaitForExit(5_000)) process.Kill();
            process.WaitForExit(5_000);
        }
        catch (InvalidOperationException)
        {
        }
    }
}
