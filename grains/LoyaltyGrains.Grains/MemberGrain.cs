using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains.Ledger;
using LoyaltyGrains.Grains.Members;
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
/// Host of a member: its activation, its API and its timers. Every call goes into the member's
/// <see cref="MemberJournal"/> (one queue, done in arrival order; postings that queued behind a write are decided
/// together and written in one append) and the domain's <see cref="MemberAccount"/> decides. Reentrant only so that
/// calls can queue; no call sees another's uncommitted state. By job: postings, membership, views, watchers and the
/// store (activation, snapshot, sweep), each in its own MemberGrain.*.cs.
/// </summary>
[Reentrant]
public sealed partial class MemberGrain(
    [PersistentState("member", StorageNames.Loyalty)] IPersistentState<MemberSnapshot> snapshot,
    ILedger ledger,
    IRulesProvider rules,
    ICampaignBudget budgets,
    TimeProvider clock,
    ILogger<MemberGrain> logger) : Grain, IMemberGrain, IMemberJournalHost
{
    private string? _memberId;
    private MemberJournal? _journal;

    private string MemberId => _memberId ??= GrainKeys.IdOf(this.GetPrimaryKeyString());

    private MemberJournal Journal => _journal ??= new MemberJournal(MemberId, ledger, budgets, rules, clock, logger, this);

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var account = await Journal.AccountAsync(cancellationToken);
        SweepWhileBehind();
        if (account.State.ReferralEarned) await NotifyReferrerAsync(account);
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        try
        {
            // Deactivation waits for its calls; the loop may still be deciding, and a snapshot may be in flight (awaited below).
            if (Journal.Running is { } drain) await drain.WaitAsync(cancellationToken);
            await SnapshotIfBehindAsync(1);
        }
        catch (Exception ex)
        {
            // The ledger holds everything; a missing snapshot only makes the next activation replay more rows.
            logger.LogWarning(ex, "Member {MemberId}: snapshot on deactivation failed", MemberId);
        }
    }

    /// <summary>Queues a call done alone, with its caller's deadline.</summary>
    private Task<T> Exclusive<T>(Func<Task<T>> operation) => Journal.RunExclusive(operation, CallDeadline.Current());

    private Task Exclusive(Func<Task> operation) => Exclusive(async () =>
    {
        await operation();
        return true;
    });

    void IMemberJournalHost.EnteringLoop() => RequestContext.Clear();

    Task<MemberAccount> IMemberJournalHost.LoadAsync(CancellationToken cancellationToken) => LoadAsync(cancellationToken);

    void IMemberJournalHost.Written(MemberAccount account)
    {
        NotifyWatchers(account);
        SweepWhileBehind();
    }

    void IMemberJournalHost.SnapshotMayBeDue() => SnapshotInBackground();

    Task IMemberJournalHost.ReferralWrittenAsync(MemberAccount account) => NotifyReferrerAsync(account);

    private static MemberInfo Info(MemberState state) => new(state.MemberId, state.Premium, state.ReferredBy, state.TierId, state.EnrolledAt);

    private static void ThrowIfRejected(Rejection? rejection)
    {
        if (rejection is not null) throw ContractFaults.Rejected(rejection);
    }
}
