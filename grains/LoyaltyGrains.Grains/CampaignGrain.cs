using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Grains;

[GenerateSerializer, Alias("lg.CampaignGrainState")]
public sealed class CampaignGrainState
{
    [Id(0)] public string CampaignJson { get; set; } = "";
    /// <summary>Budget out on leases or spent (lease grants minus returns).</summary>
    [Id(1)] public long BudgetLeasedMinor { get; set; }
    [Id(2)] public int SlotsLeased { get; set; }
    [Id(3)] public long LeaseCalls { get; set; }
}

/// <summary>
/// The single writer of a campaign's budget. Silos spend from leases drawn here in chunks, so this grain is called
/// per chunk, not per purchase. A lease is counted as spent until returned; that is what keeps the budget from ever
/// being overspent, with any number of silos: a crash can strand a lease's unspent part (under-spend), never
/// overspend.
/// </summary>
public sealed class CampaignGrain(
    [PersistentState("campaign", StorageNames.Loyalty)] IPersistentState<CampaignGrainState> state) : Grain, ICampaignGrain
{
    /// <summary>How long a recall waits for a silo: a dead silo's lease is simply not recovered (under-spend, never over).</summary>
    public static readonly TimeSpan RecallTimeout = TimeSpan.FromSeconds(2);

    private CampaignRule? _rule;
    // Silos that hold or held a lease since this activation; not persisted (a silo re-registers on its next lease).
    private readonly HashSet<ILeaseHolder> _holders = [];

    private string CampaignId => GrainKeys.IdOf(this.GetPrimaryKeyString());

    private CampaignRule Rule => _rule ??= state.State.CampaignJson.Length == 0
        ? throw new LoyaltyRejectedException(RejectionCode.NotFound, $"campaign_id: campaign '{CampaignId}' does not exist")
        : DomainJson.Deserialize<CampaignRule>(state.State.CampaignJson);

    public async Task<CampaignStatus> Upsert(string campaignJson)
    {
        var rule = DomainJson.Deserialize<CampaignRule>(campaignJson);
        if (rule.CampaignId != CampaignId) throw new LoyaltyRejectedException(RejectionCode.InvalidArgument, "campaign_id: does not match the grain");
        var errors = rule.Validate(MccCatalogue.Default);
        if (errors.Count > 0) throw new LoyaltyRejectedException(RejectionCode.InvalidArgument, string.Join("; ", errors));
        state.State.CampaignJson = campaignJson;
        _rule = rule;
        await state.WriteStateAsync();
        await GrainFactory.GetGrain<ICampaignRegistryGrain>(ICampaignRegistryGrain.Key).Put(CampaignId, campaignJson);
        return Status();
    }

    public Task<CampaignStatus> GetStatus()
    {
        _ = Rule;
        return Task.FromResult(Status());
    }

    public async Task<CampaignLease> AcquireLease(long budgetWantedMinor, int slotsWanted, ILeaseHolder holder)
    {
        var rule = Rule;
        var (budget, slots) = Available(rule, budgetWantedMinor, slotsWanted);
        if ((budget < budgetWantedMinor || slots < slotsWanted) && _holders.Count > 0)
        {
            await RecallAsync(holder);
            (budget, slots) = Available(rule, budgetWantedMinor, slotsWanted);
        }
        _holders.Add(holder);
        state.State.BudgetLeasedMinor += budget;
        state.State.SlotsLeased += slots;
        state.State.LeaseCalls++;
        // Durable before granted: a lease handed out and then forgotten by a crash here would allow overspend.
        await state.WriteStateAsync();
        return new CampaignLease(budget, slots, Exhausted: budget < budgetWantedMinor || slots < slotsWanted);
    }

    private (long Budget, int Slots) Available(CampaignRule rule, long budgetWantedMinor, int slotsWanted) => (
        rule.BudgetMinor == 0 ? budgetWantedMinor : Math.Clamp(rule.BudgetMinor - state.State.BudgetLeasedMinor, 0, budgetWantedMinor),
        rule.MaxMembers == 0 ? slotsWanted : Math.Clamp(rule.MaxMembers - state.State.SlotsLeased, 0, slotsWanted));

    /// <summary>Takes back the unspent part of every other silo's lease (the asking silo's own is empty).</summary>
    private async Task RecallAsync(ILeaseHolder asking)
    {
        foreach (var holder in _holders.ToArray())
        {
            if (holder.Equals(asking)) continue;
            try
            {
                var back = await holder.Recall(CampaignId).WaitAsync(RecallTimeout);
                state.State.BudgetLeasedMinor = Math.Max(0, state.State.BudgetLeasedMinor - back.BudgetMinor);
                state.State.SlotsLeased = Math.Max(0, state.State.SlotsLeased - back.Slots);
                state.State.LeaseCalls++;
            }
            catch (Exception)
            {
                // Gone or slow: forget it; whatever it held stays counted as spent (safe: under-spend only).
                _holders.Remove(holder);
            }
        }
    }

    public async Task<CampaignLease> Remaining(ILeaseHolder asking)
    {
        var rule = Rule;
        var budget = rule.BudgetMinor == 0 ? 0 : Math.Max(0, rule.BudgetMinor - state.State.BudgetLeasedMinor);
        var slots = rule.MaxMembers == 0 ? 0 : Math.Max(0, rule.MaxMembers - state.State.SlotsLeased);
        foreach (var holder in _holders.ToArray())
        {
            if (holder.Equals(asking)) continue;
            try
            {
                var held = await holder.Held(CampaignId).WaitAsync(RecallTimeout);
                budget += held.BudgetMinor;
                slots += held.Slots;
            }
            catch (Exception)
            {
                // Gone or slow: a recall would not get its lease back either.
            }
        }
        return new CampaignLease(budget, slots, Exhausted: false);
    }

    public async Task ReturnLease(long budgetMinor, int slots)
    {
        if (budgetMinor < 0 || slots < 0) throw new LoyaltyRejectedException(RejectionCode.InvalidArgument, "a lease return cannot be negative");
        state.State.BudgetLeasedMinor = Math.Max(0, state.State.BudgetLeasedMinor - budgetMinor);
        state.State.SlotsLeased = Math.Max(0, state.State.SlotsLeased - slots);
        state.State.LeaseCalls++;
        await state.WriteStateAsync();
    }

    private CampaignStatus Status() => new(state.State.CampaignJson, state.State.BudgetLeasedMinor, state.State.SlotsLeased, state.State.LeaseCalls);
}
