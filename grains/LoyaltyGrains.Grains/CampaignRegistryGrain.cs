using LoyaltyGrains.Contracts;

namespace LoyaltyGrains.Grains;

[GenerateSerializer, Alias("lg.CampaignRegistryState")]
public sealed class CampaignRegistryState
{
    [Id(0)] public Dictionary<string, string> CampaignsJson { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>The list of campaign definitions every silo replicates (no budgets here: those live in each CampaignGrain).</summary>
public sealed class CampaignRegistryGrain(
    [PersistentState("campaign-registry", StorageNames.Loyalty)] IPersistentState<CampaignRegistryState> state,
    RulesProvider rules) : Grain, ICampaignRegistryGrain
{
    public const int CampaignsMax = 10_000;

    public async Task Put(string campaignId, string campaignJson)
    {
        if (!state.State.CampaignsJson.ContainsKey(campaignId) && state.State.CampaignsJson.Count >= CampaignsMax)
        {
            throw new LoyaltyRejectedException(RejectionCode.FailedPrecondition, $"campaign_id: at most {CampaignsMax} campaigns");
        }
        state.State.CampaignsJson[campaignId] = campaignJson;
        await state.WriteStateAsync();
        rules.InstallCampaigns(Snapshot());
    }

    public Task<string[]> GetAll() => Task.FromResult(Snapshot());

    private string[] Snapshot() => [.. state.State.CampaignsJson.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Value)];
}
