using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LoyaltyGrains.Grains;

/// <summary>The program versions every grain of this silo prices with; read from memory, never per request.</summary>
public interface IProgramProvider
{
    ProgramHistory Programs { get; }

    MccCatalogue Catalogue { get; }
}

/// <summary>
/// Keeps this silo's copy of the program in step with <see cref="IProgramGrain"/>: loaded at start-up, refreshed every
/// couple of seconds, so Admin.SetProgram reaches every silo without a restart. A new version carries the instant it
/// takes effect, and purchases are priced by the version in force at their occurred_at, so the refresh delay cannot
/// re-price anything.
/// </summary>
public sealed class ProgramProvider(IGrainFactory grains, ILogger<ProgramProvider> logger) : BackgroundService, IProgramProvider
{
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(2);

    private volatile ProgramHistory _programs = ProgramHistory.Of(ProgramConfig.Default);

    public ProgramHistory Programs => _programs;

    public MccCatalogue Catalogue => MccCatalogue.Default;

    /// <summary>Installs versions read from the program grain (also called by it directly on a change in this silo).</summary>
    public void Install(string[] versionsJson)
    {
        if (versionsJson.Length == 0) return;
        var versions = versionsJson.Select(ProgramJson.Deserialize).ToArray();
        if (versions[^1].Version != _programs.Current.Version || versions.Length != _programs.Versions.Count)
        {
            _programs = new ProgramHistory(versions);
            logger.LogInformation("Program version {Version} installed (effective from {EffectiveFrom:O})", versions[^1].Version, versions[^1].EffectiveFrom);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(RefreshInterval);
        do
        {
            try
            {
                Install(await grains.GetGrain<IProgramGrain>(IProgramGrain.Key).GetVersions());
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // The silo may still be joining the cluster; the last good program stays in force.
                logger.LogDebug(ex, "Program refresh failed; keeping version {Version}", _programs.Current.Version);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }
}
