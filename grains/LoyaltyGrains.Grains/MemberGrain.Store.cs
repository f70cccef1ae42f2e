using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains.Ledger;
using LoyaltyGrains.Grains.Members;
using Microsoft.Extensions.Logging;

namespace LoyaltyGrains.Grains;

/// <summary>Activation state: load from snapshot + ledger, periodic snapshot and sweep while behind.</summary>
public sealed partial class MemberGrain
{
    /// <summary>Snapshot after this many entries, or on the timer/deactivation, so activation replays few rows.</summary>
    public const int SnapshotEveryEntries = 200;
    public static readonly TimeSpan SweepInterval = TimeSpan.FromMinutes(1);

    // Runs only while the snapshot is behind the ledger: an idle member holds no timer (a million of them would).
    private IGrainTimer? _sweep;
    private long _snapshotSequence;

    // The snapshot being written while the member goes on deciding: at most one at a time.
    private Task? _snapshotWrite;

    /// <summary>
    /// A busy member (thousands of postings a second) snapshots at most this often: more would only write the same hot
    /// state again, and activation replays at most a second of its rows more.
    /// </summary>
    public static readonly TimeSpan SnapshotIntervalMin = TimeSpan.FromSeconds(1);

    private long _snapshotStartedTicks;

    /// <summary>
    /// Starts a snapshot after a commit without holding the member's queue: the state is serialized in this turn and
    /// written while later postings are decided (a busy member's snapshot is large, and its replies must not wait for it).
    /// </summary>
    private void SnapshotInBackground()
    {
        if (_snapshotWrite is { IsCompleted: false }) return;
        if (Journal.Account is not { } account || account.State.Sequence - _snapshotSequence < SnapshotEveryEntries) return;
        var now = Environment.TickCount64;
        if (now - _snapshotStartedTicks < (long)SnapshotIntervalMin.TotalMilliseconds) return; // the sweep or a later commit writes it
        _snapshotStartedTicks = now;
        _snapshotWrite = TrySnapshotAsync(SnapshotEveryEntries);
    }

    /// <summary>A snapshot only shortens the next activation's replay; failing to write one never fails a reply.</summary>
    private async Task TrySnapshotAsync(long minimumEntries)
    {
        try
        {
            await SnapshotIfBehindAsync(minimumEntries);
        }
        catch (Exception ex) when (ContractFaults.IsUnreachable(ex))
        {
            logger.LogDebug(ex, "Member {MemberId}: snapshot not written (database unreachable); the sweep tries again", MemberId);
        }
        catch (Exception ex)
        {
            // E.g. another activation wrote it (a stale etag): the ledger is the truth, the reply stands.
            logger.LogWarning(ex, "Member {MemberId}: snapshot not written; the next activation replays more of the ledger", MemberId);
        }
    }

    /// <summary>The periodic sweep of an active member: expiries without waiting for a touch, then a snapshot if behind.</summary>
    private async Task SweepAsync()
    {
        if (Journal.Account is { State.Enrolled: true } account)
        {
            var now = clock.GetUtcNow();
            account.Touch(rules.Programs.At(now), now);
            try
            {
                await Journal.WriteAsync(account);
            }
            catch (LoyaltyUnavailableException)
            {
                // The outage is logged once by the database layer; the next tick or message tries again.
                return;
            }
        }
        await TrySnapshotAsync(1);
        if (Journal.Account is not { } after || after.State.Sequence == _snapshotSequence)
        {
            _sweep?.Dispose();
            _sweep = null;
        }
    }

    private void SweepWhileBehind()
    {
        if (_sweep is null && Journal.Account is { } account && account.State.Sequence != _snapshotSequence)
        {
            // The first tick is spread over a second interval: members touched together (a batch, a seeding, a restart)
            // must not all serialize and write their snapshots in the same second.
            var firstTick = SweepInterval + TimeSpan.FromMilliseconds(Random.Shared.Next((int)SweepInterval.TotalMilliseconds));
            _sweep = this.RegisterGrainTimer(_ => Exclusive(SweepAsync), new GrainTimerCreationOptions(firstTick, SweepInterval));
        }
    }

    /// <summary>The member from its snapshot and the ledger rows after it (the journal translates an unreachable database).</summary>
    private async Task<MemberAccount> LoadAsync(CancellationToken cancellationToken)
    {
        await snapshot.ReadStateAsync(cancellationToken);
        // A snapshot that cannot be read (damaged, or from a newer format) is rebuilt from the whole ledger instead.
        var state = MemberSnapshotFormat.TryRead(snapshot.State.StateJson, MemberId) ?? new MemberState { MemberId = MemberId };
        snapshot.State.StateJson = []; // the projection is in memory; keeping its JSON too would double a member's size
        var account = new MemberAccount(state);
        foreach (var entry in await ledger.ReadMemberAsync(MemberId, state.Sequence, cancellationToken)) account.Apply(entry);
        _snapshotSequence = snapshot.State.Sequence;
        return account;
    }

    private async Task SnapshotIfBehindAsync(long minimumEntries)
    {
        // One write at a time: Orleans state writes of one grain must not overlap (etag), and a later one supersedes.
        if (_snapshotWrite is { IsCompleted: false } inFlight) await inFlight;
        if (Journal.Account is not { } account || account.State.Sequence - _snapshotSequence < minimumEntries) return;
        var written = account.State.Sequence;
        snapshot.State.Sequence = written;
        snapshot.State.StateJson = MemberSnapshotFormat.Write(account.State);
        try
        {
            await snapshot.WriteStateAsync();
        }
        finally
        {
            snapshot.State.StateJson = [];
        }
        _snapshotSequence = written;
    }
}
