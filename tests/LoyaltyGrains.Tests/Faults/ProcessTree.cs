using System.Diagnostics;
using System.Globalization;

namespace LoyaltyGrains.Tests.Faults;

/// <summary>Processes under a PostgreSQL server or a keeper, read from /proc (for freezing or killing them).</summary>
public static class ProcessTree
{
    /// <summary>The postmaster's pid from <paramref name="dataDir"/>/postmaster.pid, or null when the file is missing or names no live process.</summary>
    public static int? PostmasterPid(string dataDir)
    {
        var pidFile = Path.Combine(dataDir, "postmaster.pid");
        if (!File.Exists(pidFile)) return null;
        string first;
        try
        {
            using var stream = new FileStream(pidFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            first = (reader.ReadLine() ?? "").Trim();
        }
        catch (IOException)
        {
            return null;
        }
        return int.TryParse(first, CultureInfo.InvariantCulture, out var pid) && Directory.Exists($"/proc/{pid}") ? pid : null;
    }

    /// <summary>Every process whose parent chain leads to <paramref name="root"/>, from /proc/&lt;pid&gt;/stat.</summary>
    public static List<int> Descendants(int root)
    {
        var parents = new Dictionary<int, int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), CultureInfo.InvariantCulture, out var pid)) continue;
            try
            {
                // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the last ')'.
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                parents[pid] = int.Parse(fields[1], CultureInfo.InvariantCulture);
            }
            catch (IOException)
            {
                // The process exited while we looked.
            }
        }
        var found = new List<int>();
        var queue = new Queue<int>([root]);
        while (queue.TryDequeue(out var parent))
        {
            foreach (var (pid, ppid) in parents)
            {
                if (ppid != parent) continue;
                found.Add(pid);
                queue.Enqueue(pid);
            }
        }
        return found;
    }

    /// <summary>SIGKILL; false when the process is already gone.</summary>
    public static bool Kill(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            process.Kill();
            return true;
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
