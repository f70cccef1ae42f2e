using System.Runtime.InteropServices;

namespace LoyaltyGrains.Tests.Durability;

/// <summary>POSIX signals to other processes (the silo, PostgreSQL): .NET's Process API has only SIGKILL.</summary>
public static class Signals
{
    public const int Term = 15;
    public const int Stop = 19;
    public const int Cont = 18;

    /// <summary>Sends the signal; false when the process is gone (ESRCH) or not ours to signal.</summary>
    public static bool Send(int pid, int signal) => Kill(pid, signal) == 0;

    // DllImport rather than LibraryImport: two ints need no marshalling, and the project need not allow unsafe code.
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int Kill(int pid, int signal);
}
