using System.Diagnostics;
using System.Globalization;

namespace LoyaltyGrains.LoadTests;

/// <summary>
/// A set of processes whose CPU is measured together: the engine's, PostgreSQL's, the tool itself, the echo server.
/// <paramref name="Resolve"/> is asked at every sample, so a process that starts during a run (a new PostgreSQL
/// backend) is counted from then on. <paramref name="Roots"/> are those whose reaped children's CPU
/// (cutime+cstime) is counted too, so a backend that exits inside the window is not lost.
/// </summary>
public sealed record CpuGroup(string Name, string Description, Func<IReadOnlyCollection<int>> Resolve, Func<IReadOnlyCollection<int>> Roots)
{
    public static CpuGroup Fixed(string name, string description, params int[] pids) => new(name, description, () => pids, () => []);
}

/// <summary>One group's CPU over a measured window.</summary>
public sealed record GroupCpu(string Group, string Description, int Processes, double CpuMicros, double WindowSeconds)
{
    public double CoreShare => WindowSeconds <= 0 ? 0 : CpuMicros / 1e6 / WindowSeconds;

    public double PerRequest(long requests) => requests <= 0 ? double.NaN : CpuMicros / requests;
}

/// <summary>
/// CPU time of process groups from /proc/PID/stat (utime+stime, in clock ticks), sampled at the start and at the
/// end of a measured window: the figure that survives a noisy shared machine where wall-clock ceilings do not.
/// Linux only; elsewhere (or for a process that cannot be read) a group is reported with what could be read.
/// </summary>
public sealed class CpuMeter(IReadOnlyList<CpuGroup> groups)
{
    public static readonly double MicrosPerTick = 1e6 / ClockTicksPerSecond();

    public IReadOnlyList<CpuGroup> Groups { get; } = groups;

    public static bool Supported => File.Exists("/proc/self/stat");

    public sealed record Sample(long Timestamp, IReadOnlyDictionary<string, (long Ticks, int Processes)> Groups);

    public Sample Take()
    {
        var figures = new Dictionary<string, (long, int)>(StringComparer.Ordinal);
        foreach (var group in Groups)
        {
            var pids = group.Resolve();
            var ticks = pids.Sum(pid => ProcFs.CpuTicks(pid, children: false) ?? 0) + group.Roots().Sum(pid => ProcFs.ChildrenCpuTicks(pid) ?? 0);
            figures[group.Name] = (ticks, pids.Count);
        }
        return new Sample(Stopwatch.GetTimestamp(), figures);
    }

    public IReadOnlyList<GroupCpu> Since(Sample start)
    {
        var end = Take();
        var seconds = (end.Timestamp - start.Timestamp) / (double)Stopwatch.Frequency;
        return [.. Groups.Select(g =>
        {
            var (before, _) = start.Groups[g.Name];
            var (after, processes) = end.Groups[g.Name];
            return new GroupCpu(g.Name, g.Description, processes, Math.Max(0, after - before) * MicrosPerTick, seconds);
        })];
    }

    private static double ClockTicksPerSecond()
    {
        // USER_HZ: 100 on every mainstream Linux architecture; asked of getconf when it is there.
        try
        {
            using var getconf = Process.Start(new ProcessStartInfo("getconf", "CLK_TCK") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false });
            if (getconf is not null && getconf.WaitForExit(2_000) && getconf.ExitCode == 0
                && double.TryParse(getconf.StandardOutput.ReadToEnd().Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var hz) && hz > 0)
            {
                return hz;
            }
        }
        catch (System.ComponentModel.Win32Exception)
        {
        }
        return 100;
    }
}

/// <summary>What the tool reads from /proc: CPU ticks of a process, the process listening on a TCP port, process trees.</summary>
public static class ProcFs
{
    /// <summary>utime+stime (or with <paramref name="children"/>, cutime+cstime) of <paramref name="pid"/>; null when it is gone or unreadable.</summary>
    public static long? CpuTicks(int pid, bool children)
    {
        var fields = StatFields(pid);
        if (fields is null) return null;
        // After "pid (comm) ": state is field 0, utime 11, stime 12, cutime 13, cstime 14.
        return children ? Long(fields[13]) + Long(fields[14]) : Long(fields[11]) + Long(fields[12]);
    }

    public static long? ChildrenCpuTicks(int pid) => CpuTicks(pid, children: true);

    /// <summary>Every process on the machine: pid, parent pid, command name (comm).</summary>
    public static IReadOnlyList<(int Pid, int Parent, string Comm)> Processes()
    {
        var list = new List<(int, int, string)>();
        foreach (var dir in SafeDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)) continue;
            var stat = ReadStat(pid);
            if (stat is null) continue;
            var open = stat.IndexOf('(', StringComparison.Ordinal);
            var close = stat.LastIndexOf(')');
            if (open < 0 || close < open) continue;
            var rest = stat[(close + 2)..].Split(' ');
            list.Add((pid, (int)Long(rest[1]), stat[(open + 1)..close]));
        }
        return list;
    }

    /// <summary><paramref name="root"/> and all its descendants.</summary>
    public static IReadOnlyCollection<int> Tree(int root)
    {
        var byParent = Processes().ToLookup(p => p.Parent, p => p.Pid);
        var tree = new HashSet<int>();
        var queue = new Queue<int>([root]);
        while (queue.TryDequeue(out var pid))
        {
            if (!tree.Add(pid)) continue;
            foreach (var child in byParent[pid]) queue.Enqueue(child);
        }
        return tree;
    }

    /// <summary>The processes whose command name is <paramref name="comm"/>, and of those the ones whose parent is not one of them.</summary>
    public static (IReadOnlyCollection<int> All, IReadOnlyCollection<int> Roots) Named(string comm)
    {
        var named = Processes().Where(p => p.Comm == comm).ToArray();
        var pids = named.Select(p => p.Pid).ToHashSet();
        return (pids, [.. named.Where(p => !pids.Contains(p.Parent)).Select(p => p.Pid)]);
    }

    /// <summary>
    /// The process listening on TCP <paramref name="port"/> (any local address, IPv4 or IPv6): the socket's inode from
    /// /proc/net/tcp{,6}, then the process holding that inode among /proc/*/fd. Null when none is found (another
    /// machine, or no permission to read the other process's descriptors).
    /// </summary>
    public static int? ListeningPid(int port)
    {
        var inodes = new HashSet<string>(StringComparer.Ordinal);
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            if (!File.Exists(table)) continue;
            foreach (var line in File.ReadLines(table).Skip(1))
            {
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                // sl local_address rem_address st ... inode (field 9); st 0A = LISTEN.
                if (f.Length < 10 || f[3] != "0A") continue;
                var local = f[1];
                if (int.Parse(local[(local.LastIndexOf(':') + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture) == port) inodes.Add($"socket:[{f[9]}]");
            }
        }
        if (inodes.Count == 0) return null;
        foreach (var dir in SafeDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)) continue;
            foreach (var fd in SafeFiles(Path.Combine(dir, "fd")))
            {
                try
                {
                    if (new FileInfo(fd).LinkTarget is { } target && inodes.Contains(target)) return pid;
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                }
            }
        }
        return null;
    }

    private static string[]? StatFields(int pid)
    {
        var stat = ReadStat(pid);
        if (stat is null) return null;
        var close = stat.LastIndexOf(')');
        return close < 0 || close + 2 >= stat.Length ? null : stat[(close + 2)..].Split(' ');
    }

    private static string? ReadStat(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static long Long(string text) => long.Parse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);

    private static IEnumerable<string> SafeDirectories(string path)
    {
        try
        {
            return Directory.GetDirectories(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static IEnumerable<string> SafeFiles(string path)
    {
        try
        {
            return Directory.GetFiles(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }
}

/// <summary>The groups a run measures: the engine, PostgreSQL, the tool itself, the echo server.</summary>
public static class CpuGroups
{
    public const string Engine = "engine";
    public const string Postgres = "postgresql";
    public const string Tool = "tool";
    public const string EchoServer = "echo server";

    public static CpuGroup Self(string description) => CpuGroup.Fixed(Tool, description, Environment.ProcessId);

    public static CpuGroup Echo(int pid) => CpuGroup.Fixed(EchoServer, $"the echo server process (pid {pid})", pid);

    /// <summary>--engine-pids, else the process listening on each --target port; null (and a log line) when none is found.</summary>
    public static CpuGroup? EngineProcesses(LoadOptions options, Action<string> log)
    {
        if (options.EnginePids.Count > 0) return CpuGroup.Fixed(Engine, $"--engine-pids {string.Join(',', options.EnginePids)}", [.. options.EnginePids]);
        var pids = options.Targets.Select(t => new Uri(t).Port).Distinct().Select(ProcFs.ListeningPid).OfType<int>().Distinct().ToArray();
        if (pids.Length == 0)
        {
            log("engine CPU not measured: no process on this machine listens on the --target port(s) (give --engine-pids)");
            return null;
        }
        return CpuGroup.Fixed(Engine, $"listening on the --target port(s): pid {string.Join(',', pids)}", pids);
    }

    /// <summary>--postgres-port: that postmaster's process tree; else every process named postgres on the machine.</summary>
    public static CpuGroup PostgresProcesses(LoadOptions options, Action<string> log)
    {
        if (options.PostgresPort is { } port)
        {
            if (ProcFs.ListeningPid(port) is { } postmaster)
            {
                return new CpuGroup(Postgres, $"the postmaster on port {port} (pid {postmaster}) and its backends", () => ProcFs.Tree(postmaster), () => [postmaster]);
            }
            log($"no process listens on --postgres-port {port}: measuring every process named postgres instead");
        }
        return new CpuGroup(Postgres, "every process named postgres on this machine", () => ProcFs.Named("postgres").All, () => ProcFs.Named("postgres").Roots);
    }
}
