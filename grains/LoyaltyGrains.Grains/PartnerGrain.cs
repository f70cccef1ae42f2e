using LoyaltyGrains.Contracts;

namespace LoyaltyGrains.Grains;

[GenerateSerializer, Alias("lg.PartnerGrainState")]
public sealed class PartnerGrainState
{
    [Id(0)] public string Name { get; set; } = "";
    [Id(1)] public bool Exists { get; set; }
}

/// <summary>A partner that funds offers and accepts bonuses as payment.</summary>
public sealed class PartnerGrain([PersistentState("partner", StorageNames.Loyalty)] IPersistentState<PartnerGrainState> state) : Grain, IPartnerGrain
{
    private string PartnerId => GrainKeys.IdOf(this.GetPrimaryKeyString());

    public async Task<PartnerInfo> Upsert(string name)
    {
        if (!state.State.Exists || state.State.Name != name)
        {
            state.State.Name = name;
            state.State.Exists = true;
            await state.WriteStateAsync();
        }
        return new PartnerInfo(PartnerId, name);
    }

    public Task<PartnerInfo?> GetPartner() => Task.FromResult(state.State.Exists ? new PartnerInfo(PartnerId, state.State.Name) : null);
}
