using System.Globalization;
using Grpc.Net.Client;
using LoyaltyGrains.Tests.Durability;
using Npgsql;

namespace LoyaltyGrains.Tests.Topology;

/// <summary>
/// A production-shaped cluster as processes on 127.0.0.1, as deploy/local-cluster.sh starts it: a fresh database on the
/// test PostgreSQL server, 3 silos on fixed ports of their own (a silo restarted on them takes its predecessor's place at
/// once) and 2 gateways that join as Orleans clients through PostgreSQL membership. Every process is ready-checked (gRPC
/// health), and every silo is Active in the membership table before the cluster is handed out.
/// </summary>
public sealed class TopologyCluster : IAsyncDisposable
{
    public const int SiloCount = 3;
    public const int GatewayCount = 2;

    /// <summary>How long a silo may take to be Active in membership once it serves (it joins after its health says SERVING).</summary>
    public static readonly TimeSpan JoinTimeout = TimeSpan.FromSeconds(45);

    private readonly (int Grpc, int Silo, int Gateway, int Metrics)[] _ports;
    private readonly SiloProcess?[] _silos = new SiloProcess?[SiloCount];
    private readonly List<GatewayProcess> _gateways = [];

    private TopologyCluster(TestDatabase database)
    {
        Database = database;
        _ports = [.. Enumerable.Range(0, SiloCount).Select(_ => SiloProcess.FreePorts())];
    }

    public TestDatabase Database { get; }
    public IReadOnlyList<SiloProcess> Silos => [.. _silos.Select(s => s!)];
    public IReadOnlyList<GatewayProcess> Gateways => _gateways;

    /// <summary>Where processors connect: every gateway (the silos serve gRPC too, but the load goes through the gateways).</summary>
    public IReadOnlyList<GrpcChannel> GatewayChannels => [.. _gateways.Select(g => g.Channel)];

    public static async Task<TopologyCluster> StartAsync(string name)
    {
        var cluster = new TopologyCluster(await TestDatabase.CreateAsync(name));
        try
        {
            // Side by side, as an orchestrator starts them: the migrations run under an advisory lock, the others wait.
            for (var i = 0; i < SiloCount; i++) cluster._silos[i] = SiloProcess.Launch(cluster.Database.ConnectionString, cluster._ports[i]);
            await Task.WhenAll(cluster.Silos.Select(s => s.WaitUntilServingAsync(SiloProcess.StartTimeout)));
            await cluster.AssertAllActiveAsync(JoinTimeout);
            for (var j = 0; j < GatewayCount; j++) cluster._gateways.Add(GatewayProcess.Launch(cluster.Database.ConnectionString));
            await Task.WhenAll(cluster._gateways.Select(g => g.WaitUntilServingAsync(SiloProcess.StartTimeout)));
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Starts silo <paramref name="index"/> again on its own ports once its process is gone, and waits until it serves;
    /// returns the time that took. The previous process's log stays readable on the object the caller held.
    /// </summary>
    public async Task<TimeSpan> RestartSiloAsync(int index)
    {
        var previous = _silos[index]!;
        if (!previous.HasExited) throw new InvalidOperationException($"silo {index} is still running");
        await previous.DisposeAsync();
        var (silo, took) = await SiloProcess.StartAsync(Database.ConnectionString, _ports[index], SiloProcess.StartTimeout);
        _silos[index] = silo;
        return took;
    }

    /// <summary>
    /// Membership as Orleans keeps it: the number of Active silo rows, and of those the latest incarnation at their
    /// address (a restarted silo is a new generation; its crashed predecessor must not be what counts).
    /// </summary>
    public async Task<(int Active, int ActiveLatest)> MembershipAsync()
    {
        await using var connection = new NpgsqlConnection(Database.ConnectionString);
        await connection.OpenAsync();
        // Status 3 is Orleans' SiloStatus.Active.
        await using var command = new NpgsqlCommand(
            "SELECT count(*) FILTER (WHERE status = 3), count(*) FILTER (WHERE status = 3 AND latest) FROM " +
            "(SELECT status, generation = max(generation) OVER (PARTITION BY address, port) AS latest FROM orleansmembershiptable) m", connection);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return ((int)reader.GetInt64(0), (int)reader.GetInt64(1));
    }

    /// <summary>Waits until every silo is Active in its latest incarnation and no other row is; returns how long that took.</summary>
    public async Task<TimeSpan> AssertAllActiveAsync(TimeSpan timeout)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        var membership = (Active: 0, ActiveLatest: 0);
        while (waited.Elapsed < timeout)
        {
            membership = await MembershipAsync();
            if (membership == (SiloCount, SiloCount)) return waited.Elapsed;
            await Task.Delay(250);
        }
        Assert.Fail($"the cluster did not have {SiloCount} active silos within {timeout.TotalSeconds:0} s: {membership.Active} active rows, " +
            $"{membership.ActiveLatest} of them latest incarnations\n{Logs()}");
        return waited.Elapsed;
    }

    /// <summary>Postings the silo's own grains made so far, from its metrics (loyalty.postings): non-zero once calls are routed to it.</summary>
    public async Task<long> PostingsOnSiloAsync(int index)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var text = await http.GetStringAsync($"http://127.0.0.1:{_ports[index].Metrics}/metrics");
        return text.Split('\n')
            .Where(line => line.StartsWith("loyalty_postings", StringComparison.Ordinal) && !line.StartsWith('#'))
            .Sum(line => (long)double.Parse(SampleValue(line), CultureInfo.InvariantCulture));
    }

    /// <summary>The value of a Prometheus sample line: after the name and labels, before an optional timestamp.</summary>
    private static string SampleValue(string line)
    {
        var afterLabels = line.Contains('}', StringComparison.Ordinal) ? line[(line.LastIndexOf('}') + 1)..] : line[line.IndexOf(' ', StringComparison.Ordinal)..];
        return afterLabels.Trim().Split(' ')[0];
    }

    /// <summary>The last lines of every process's log, for a failure message.</summary>
    public string Logs(int lines = 25) => string.Join('\n',
        _silos.Select((s, i) => s is null ? "" : $"--- silo {i} (pid {s.Pid}{(s.HasExited ? $", exited {s.ExitCode}" : "")}):\n{s.LogTail(lines)}")
            .Concat(_gateways.Select((g, j) => $"--- gateway {j} (pid {g.Pid}{(g.HasExited ? $", exited {g.ExitCode}" : "")}):\n{g.LogTail(lines)}")));

    public async ValueTask DisposeAsync()
    {
        // Gateways first, as local-cluster.sh stops them: nothing new comes in while the silos go.
        foreach (var gateway in _gateways) await gateway.DisposeAsync();
        foreach (var silo in _silos.OfType<SiloProcess>()) await silo.DisposeAsync();
        await Database.DisposeAsync();
    }
}
