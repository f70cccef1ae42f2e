using System.Diagnostics;
using System.Globalization;

namespace LoyaltyGrains.Tests.Failover;

/// <summary>
/// A network namespace for one silo, joined to this host by two veth pairs with private addresses made up here (no
/// real network is touched): one carries its database and client traffic, the other its silo-to-silo traffic, so
/// <see cref="CutSiloLinkAsync"/> isolates it from its peers while it still reaches PostgreSQL. Needs root and
/// iproute2 (<c>ip netns</c>). Dispose removes the links and the namespace.
/// </summary>
public sealed class SiloNetwork : IAsyncDisposable
{
    private readonly string _dbRoot;
    private readonly string _siloRoot;
    private readonly string _siloNamespace;
    private bool _created;

    private SiloNetwork(int id)
    {
        Namespace = $"lgpart{id}";
        _dbRoot = $"lgd{id}r";
        _siloRoot = $"lgs{id}r";
        _siloNamespace = $"lgs{id}n";
        var subnet = (id % 250).ToString(CultureInfo.InvariantCulture);
        DatabaseHostAddress = $"10.231.{subnet}.1";
        NamespaceAddress = $"10.231.{subnet}.2";
        SiloHostAddress = $"10.232.{subnet}.1";
        SiloNamespaceAddress = $"10.232.{subnet}.2";
    }

    public string Namespace { get; }

    /// <summary>This host's end of the database link: PostgreSQL listens here for the namespaced silo.</summary>
    public string DatabaseHostAddress { get; }

    /// <summary>The namespaced silo's end of the database link: its gRPC and metrics ports listen here.</summary>
    public string NamespaceAddress { get; }

    public string DatabaseCidr => $"{NamespaceAddress}/32";

    /// <summary>This host's end of the silo link: the silos outside advertise it.</summary>
    public string SiloHostAddress { get; }

    /// <summary>The namespaced silo's end of the silo link: it advertises this.</summary>
    public string SiloNamespaceAddress { get; }

    public static async Task<SiloNetwork> CreateAsync()
    {
        var network = new SiloNetwork(Environment.ProcessId % 10_000);
        try
        {
            await network.CleanUpAsync();
            await Ip("netns", "add", network.Namespace);
            network._created = true;
            await Ip("netns", "exec", network.Namespace, "ip", "link", "set", "lo", "up");
            await network.LinkAsync(network._dbRoot, $"lgd{Environment.ProcessId % 10_000}n", network.DatabaseHostAddress, network.NamespaceAddress);
            await network.LinkAsync(network._siloRoot, network._siloNamespace, network.SiloHostAddress, network.SiloNamespaceAddress);
            return network;
        }
        catch
        {
            await network.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Takes the namespace's end of the silo link down: silo-to-silo traffic is lost both ways; the database link stays
    /// up. The host's end keeps its address (only its carrier goes), so the silos outside still reach each other on it.
    /// </summary>
    public Task CutSiloLinkAsync() => Ip("netns", "exec", Namespace, "ip", "link", "set", _siloNamespace, "down");

    public async ValueTask DisposeAsync()
    {
        if (_created) await CleanUpAsync();
    }

    private async Task LinkAsync(string hostEnd, string namespaceEnd, string hostAddress, string namespaceAddress)
    {
        await Ip("link", "add", hostEnd, "type", "veth", "peer", "name", namespaceEnd);
        await Ip("link", "set", namespaceEnd, "netns", Namespace);
        await Ip("addr", "add", $"{hostAddress}/30", "dev", hostEnd);
        await Ip("link", "set", hostEnd, "up");
        await Ip("netns", "exec", Namespace, "ip", "addr", "add", $"{namespaceAddress}/30", "dev", namespaceEnd);
        await Ip("netns", "exec", Namespace, "ip", "link", "set", namespaceEnd, "up");
    }

    /// <summary>Removes what a previous run with the same id may have left (deleting a veth end deletes the pair).</summary>
    private async Task CleanUpAsync()
    {
        await Ip(allowFailure: true, "link", "del", _dbRoot);
        await Ip(allowFailure: true, "link", "del", _siloRoot);
        await Ip(allowFailure: true, "netns", "del", Namespace);
    }

    private static Task Ip(params string[] arguments) => Ip(false, arguments);

    private static async Task Ip(bool allowFailure, params string[] arguments)
    {
        var info = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        using var process = Process.Start(info) ?? throw new InvalidOperationException("could not start ip");
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardOutput.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await process.WaitForExitAsync(limit.Token);
        if (process.ExitCode != 0 && !allowFailure)
            throw new InvalidOperationException($"ip {string.Join(' ', arguments)} exited {process.ExitCode}: {await stderr}");
    }
}
