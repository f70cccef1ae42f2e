using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains.Ledger;
using Orleans.Concurrency;
using Microsoft.Extensions.Logging;

namespace LoyaltyGrains.Grains;

/// <summary>A member's snapshot: the projection up to Sequence, as JSON of the domain's MemberState (stable names).</summary>
[GenerateSerializer, Alias("lg.MemberSnapshot")]
public sealed class MemberSnapshot
{
    [Id(0)] public long Sequence { get; set; }
    [Id(1)] public byte[] StateJson { get; set; } = [];
}

/// <summary>
/// The grain that hosts a <see cref="MemberAccount"/>: decides a command in memory, commits its ledger entries, then replies.
/// Serial through one in-grain queue (the journal): calls are done one after another in arrival order, and postings
/// that queued behind a commit are decided together and committed in one append. Reentrant only so that they can
/// queue; no call sees another's uncommitted state. If a commit fails, the in-memory state (which already applied the
/// entries) is dropped and rebuilt from snapshot + ledger.
/// By job: postings, membership, cards, views, watchers, the journal (the queue, every append and reply) and the
/// store (activation, snapshot, sweep), each in its own MemberGrain.*.cs.
/// </summary>
[Reentrant]
public sealed partial class MemberGrain(
    [PersistentState("member", StorageNames.Loyalty)] IPersistentState<MemberSnapshot> snapshot,
    ILedger ledger,
    IRulesProvider rules,
    CampaignBudgets budgets,
    TimeProvider clock,
    ILogger<MemberGrain> logger) : Grain, IMemberGrain
{
    private MemberAccount? _account;

    private string? _memberId;

    private string MemberId => _memberId ??= GrainKeys.IdOf(this.GetPrimaryKeyString());

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        await LoadAsync(cancellationToken);
        SweepWhileBehind();
        if (_account!.State.ReferralEarned) await NotifyReferrerAsync(_account);
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        try
        {
            // Deactivation waits for its calls; the loop may still be deciding, and a snapshot may be in flight (awaited below).
            if (_drain is { } drain) await drain.WaitAsync(cancellationToken);
            await SnapshotIfBehindAsync(1);
        }
        catch (Exception ex)
        {
            // The ledger holds everything; a missing snapshot only makes the next activation replay more rows.
            logger.LogWarning(ex, "Member {MemberId}: snapshot on deactivation failed", MemberId);
        }
    }

    private static MemberInfo Info(MemberState state) => new(state.MemberId, state.Premium, state.ReferredBy, state.TierId, state.EnrolledAt);

    private static void ThrowIfRejected(Rejection? rejection)
    {
        if (rejection is not null) throw new LoyaltyRejectedException((RejectionCode)(int)rejection.Kind, rejection.Message);
    }
}
