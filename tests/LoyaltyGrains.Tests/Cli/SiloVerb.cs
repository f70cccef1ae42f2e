using System.Diagnostics;
using LoyaltyGrains.Gateway.Auth;
using LoyaltyGrains.Tests.Durability;

namespace LoyaltyGrains.Tests.Cli;

/// <summary>The real silo executable run with a command line and an environment of the test's choosing, to its exit.</summary>
public static class SiloVerb
{
    public sealed record Result(int Exit, string Out, string Error)
    {
        /// <summary>The non-empty lines on stderr.</summary>
        public string[] ErrorLines => Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

        public override string ToString() => $"exit {Exit}\nstdout:\n{Out}\nstderr:\n{Error}";
    }

    public static async Task<Result> RunAsync(IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null, string? workingDirectory = null)
    {
        var dll = EngineProcess.SiloDll();
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetDirectoryName(dll)!,
        };
        info.ArgumentList.Add(dll);
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        // Nothing inherited decides the outcome (scripts/test.sh exports a key; a developer may have a database set).
        info.Environment.Remove(LoyaltyAuthOptions.SigningKeyVariable);
        info.Environment.Remove("LOYALTY_POSTGRES");
        info.Environment[LoyaltyAuthOptions.SigningKeyVariable] = EngineProcess.SigningKey;
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) info.Environment[name] = value;
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"silo {string.Join(' ', arguments)} did not exit: {await output}{await error}");
        }
        return new Result(process.ExitCode, await output, await error);
    }
}
