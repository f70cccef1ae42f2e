using System.Diagnostics;

namespace LoyaltyGrains.Tests.Durability;

/// <summary>Runs one of the silo's commands (e.g. export) as a process against a database and returns its exit code and output.</summary>
public static class SiloCommand
{
    public static async Task<(int Exit, string Output)> RunAsync(string postgres, params string[] args)
    {
        var testBin = new DirectoryInfo(AppContext.BaseDirectory);
        var configuration = testBin.Parent!.Name;
        string? dll = null;
        for (var dir = testBin; dir is not null && dll is null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "silo", "bin", configuration, testBin.Name, "LoyaltyGrains.Silo.dll");
            if (File.Exists(candidate)) dll = candidate;
        }
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(dll ?? throw new FileNotFoundException("LoyaltyGrains.Silo.dll not found; build the solution first"));
        foreach (var arg in args) info.ArgumentList.Add(arg);
        info.Environment["LOYALTY_POSTGRES"] = postgres;
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        return (process.ExitCode, await stdout + await stderr);
    }
}
