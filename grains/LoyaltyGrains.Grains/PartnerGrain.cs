using LoyaltyGrains.Contracts;
using LoyaltyGrains.Grains.Settlement;
using Orleans.Streams;
using Orleans.Streams.Core;

namespace LoyaltyGrains.Grains;

[GenerateSerializer, Alias("lg.PartnerGrainState")]
public sealed class PartnerGrainState
{
    [Id(0)] public string Name { get; set; } = "";
    [Id(1)] public bool Exists { get; set; }
}

/// <summary>
/// A partner that funds offers and accepts bonuses as payment. Its settlement (day totals) lives in the settlement
/// store, not in grain state: there it is committed together with the removal of the events it applied. Its events
/// arrive on its partner-event stream (implicit subscription; docs/SETTLEMENT.md), at least once: an apply counts only
/// the events it removes from the outbox, so a redelivery counts nothing.
/// </summary>
[ImplicitStreamSubscription(PartnerStreams.Namespace)]
public sealed class PartnerGrain(
    [PersistentState("partner", StorageNames.Loyalty)] IPersistentState<PartnerGrainState> state,
    IPartnerSettlementStore settlement,
    TimeProvider clock) : Grain, IPartnerGrain, IPartnerSettlementGrain, IStreamSubscriptionObserver, IAsyncObserver<PartnerEvent[]>
{
    /// <summary>
    /// The longest a ledger entry can take from its time stamp to its commit (commit wait plus a statement's timeout,
    /// rounded up): an entry stamped earlier than this may still be on its way, so payouts claim no later completeness.
    /// </summary>
    public static readonly TimeSpan InFlightWindow = TimeSpan.FromSeconds(30);

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

    public Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) => handleFactory.Create<PartnerEvent[]>().ResumeAsync(this);

    /// <summary>A batch of this partner's events from its stream. Throws when the apply fails: the stream retries, then redelivers.</summary>
    public async Task OnNextAsync(PartnerEvent[] events, StreamSequenceToken? token = null)
    {
        var applied = await settlement.ApplyAsync(PartnerId, events, CancellationToken.None);
        PayoutDeliveryMetrics.RecordApplied(events, applied, clock.GetUtcNow().UtcDateTime);
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;

    public async Task<PayoutReport> GetPayouts(DateTime fromDay, DateTime toDay)
    {
        // Undelivered first: an event applied between the two reads is then counted, never missed.
        var (undelivered, oldest) = await settlement.UndeliveredAsync(PartnerId, CancellationToken.None);
        var days = await settlement.ReadPayoutsAsync(PartnerId, fromDay, toDay, CancellationToken.None);
        var settled = clock.GetUtcNow().UtcDateTime - InFlightWindow;
        var completeThrough = oldest is { } first && first < settled ? first : settled;
        return new PayoutReport(PartnerId, [.. days], completeThrough, undelivered);
    }
}
