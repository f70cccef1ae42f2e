using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Grains;

[GenerateSerializer, Alias("lg.ProgramGrainState")]
public sealed class ProgramGrainState
{
    /// <summary>Every version's JSON, oldest first.</summary>
    [Id(0)] public List<string> Versions { get; set; } = [];
}

/// <summary>The program's version history; the single writer of program changes.</summary>
public sealed class ProgramGrain(
    [PersistentState("program", StorageNames.Loyalty)] IPersistentState<ProgramGrainState> state,
    TimeProvider clock,
    RulesProvider provider) : Grain, IProgramGrain
{
    /// <summary>Two refresh intervals of <see cref="RulesProvider"/>: by then every running silo holds the new version.</summary>
    public static readonly TimeSpan PropagationDelay = 2 * RulesProvider.RefreshInterval;

    public Task<string[]> GetVersions() =>
        Task.FromResult(state.State.Versions.Count == 0 ? [DomainJson.Serialize(ProgramConfig.Default)] : state.State.Versions.ToArray());

    public async Task<string> SetProgram(string programJson)
    {
        var program = DomainJson.Deserialize<ProgramConfig>(programJson);
        var errors = program.Validate(MccCatalogue.Default);
        if (errors.Count > 0) throw new LoyaltyRejectedException(RejectionCode.InvalidArgument, string.Join("; ", errors));

        var versions = state.State.Versions.Count == 0 ? [DomainJson.Serialize(ProgramConfig.Default)] : state.State.Versions;
        var current = DomainJson.Deserialize<ProgramConfig>(versions[^1]);
        // A version never takes effect in the past (purchases already priced keep their prices), nor before every
        // silo's rules replica has fetched it, so no silo prices a purchase by a version it has not seen yet.
        var earliest = clock.GetUtcNow() + PropagationDelay;
        var effectiveFrom = program.EffectiveFrom > earliest ? program.EffectiveFrom : earliest;
        if (effectiveFrom < current.EffectiveFrom)
        {
            throw new LoyaltyRejectedException(RejectionCode.FailedPrecondition,
                $"effective_from: must not precede the current version {current.Version}'s {current.EffectiveFrom:O}");
        }
        var stored = program with { Version = current.Version + 1, EffectiveFrom = effectiveFrom };
        var json = DomainJson.Serialize(stored);
        state.State.Versions = [.. versions, json];
        await state.WriteStateAsync();
        provider.InstallPrograms([.. state.State.Versions]);
        return json;
    }
}
