using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LoyaltyGrains.Grains;

/// <summary>The rules every grain of this silo prices with: program versions and campaigns, read from memory.</summary>
public interface IRulesProvider
{
    ProgramHistory Programs { get; }

    MccCatalogue Catalogue { get; }

    /// <summary>Every known campaign, in stacking order (StackingOrder, then id).</summary>
    IReadOnlyList<CampaignRule> Campaigns { get; }

    CampaignRule? FindCampaign(string campaignId);
}

/// <summary>
/// Keeps this silo's copy of the program and campaigns in step with <see cref="IProgramGrain"/> and
/// <see cref="ICampaignRegistryGrain"/>: loaded at start-up, refreshed every couple of seconds and pushed directly by
/// the writer when it lives here, so Admin changes reach every silo without a restart. Program versions carry the
/// instant they take effect and purchases are priced by the version in force at their occurred_at, so the refresh
/// delay cannot re-price anything.
/// </summary>
public sealed class RulesProvider(IGrainFactory grains, ILogger<RulesProvider> logger) : BackgroundService, IRulesProvider
{
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(2);

    private volatile ProgramHistory _programs = ProgramHistory.Of(ProgramConfig.Default);
    private volatile CampaignRule[] _campaigns = [];
    private string[] _campaignsJson = [];

    public ProgramHistory Programs => _programs;

    public MccCatalogue Catalogue => MccCatalogue.Default;

    public IReadOnlyList<CampaignRule> Campaigns => _campaigns;

    public CampaignRule? FindCampaign(string campaignId) => Array.Find(_campaigns, c => c.CampaignId == campaignId);

    public void InstallPrograms(string[] versionsJson)
    {
        if (versionsJson.Length == 0) return;
        var versions = versionsJson.Select(DomainJson.Deserialize<ProgramConfig>).ToArray();
        if (versions[^1].Version != _programs.Current.Version || versions.Length != _programs.Versions.Count)
        {
            _programs = new ProgramHistory(versions);
            logger.LogInformation("Program version {Version} installed (effective from {EffectiveFrom:O})", versions[^1].Version, versions[^1].EffectiveFrom);
        }
    }

    public void InstallCampaigns(string[] campaignsJson)
    {
        if (campaignsJson.AsSpan().SequenceEqual(_campaignsJson)) return;
        _campaigns = [.. campaignsJson.Select(DomainJson.Deserialize<CampaignRule>)
            .OrderBy(c => c.StackingOrder).ThenBy(c => c.CampaignId, StringComparer.Ordinal)];
        _campaignsJson = campaignsJson;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(RefreshInterval);
        do
        {
            try
            {
                InstallPrograms(await grains.GetGrain<IProgramGrain>(IProgramGrain.Key).GetVersions());
                InstallCampaigns(await grains.GetGrain<ICampaignRegistryGrain>(ICampaignRegistryGrain.Key).GetAll());
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // The silo may still be joining the cluster; the last good rules stay in force.
                logger.LogDebug(ex, "Rules refresh failed; keeping program version {Version}", _programs.Current.Version);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }
}
