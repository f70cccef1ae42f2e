using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains.Ledger;
using Microsoft.Extensions.Logging;

namespace LoyaltyGrains.Grains;

/// <summary>The journal: every ledger append of this member goes through CommitAsync; replies wait for it (ack = durable).</summary>
public sealed partial class MemberGrain
{
    /// <summary>
    /// Times a message is decided again after another activation's append overtook this one's view (a sequence conflict:
    /// nothing of the message committed). Rare — after a database outage or a split activation — and bounded.
    /// </summary>
    public const int StaleRetriesMax = 3;

    private async Task<PostingResult> ReplyAsync(string kind, MemberAccount account, Result<PostingOutcome> result, CampaignGrant[] grants)
    {
        LoyaltyMetrics.Posting(kind, !result.IsOk ? "rejected" : result.Value!.Duplicate ? "duplicate" : "accepted");
        var returns = account.BudgetReturns.ToArray();
        LedgerEntry[] committed;
        try
        {
            committed = await CommitAsync(account);
        }
        catch (LateDuplicateException duplicate)
        {
            // A retry older than the in-memory dedupe window: the ledger has the original, answer with it.
            budgets.Release(grants);
            return Mapping.ToResult(PostingOutcome.From(duplicate.Original, duplicate: true));
        }
        catch (LoyaltyUnavailableException unavailable) when (unavailable.OutcomeUnknown)
        {
            // The entry may still commit: its campaign budget stays spent. At worst a little budget is never paid out;
            // returning it could pay it twice.
            throw;
        }
        catch
        {
            budgets.Release(grants);
            throw;
        }
        if (!result.IsOk || result.Value!.Duplicate) budgets.Release(grants);
        budgets.Return(returns);
        if (Array.Exists(committed, e => e.Kind == EntryKind.ReferralBonus && e.Detail == MemberId)) await NotifyReferrerAsync(account);
        ThrowIfRejected(result.Rejection);
        return Mapping.ToResult(result.Value!);
    }

    /// <summary>Commits what the last decision recorded. The reply waits for this: an ack means durable.</summary>
    private async Task<LedgerEntry[]> CommitAsync(MemberAccount account)
    {
        if (account.Uncommitted.Count == 0) return [];
        var entries = account.Uncommitted.ToArray();
        account.ClearUncommitted();
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            // The caller's gRPC deadline, when it has one, bounds the wait too: past it nobody reads the reply.
            using var deadline = CallDeadline.CancellationSource();
            await ledger.AppendAsync(entries, deadline?.Token ?? CancellationToken.None);
            LoyaltyMetrics.LedgerCommitMs.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            LoyaltyMetrics.LedgerEntries.Add(entries.Length);
        }
        catch (LedgerUnavailableException unavailable)
        {
            // The in-memory state applied entries that may not be in the ledger: rebuild from the truth first.
            _account = null;
            throw new LoyaltyUnavailableException(!unavailable.NotCommitted, unavailable.NotCommitted
                ? "the database is unreachable; nothing was recorded, retry with the same transaction_id"
                : "the database did not confirm in time; the outcome is unknown, retry with the same transaction_id");
        }
        catch (LedgerConflictException conflict)
        {
            // The in-memory state applied entries the ledger refused: rebuild from the truth before the next message.
            _account = null;
            if (conflict.Kind == LedgerConflictKind.MessageId)
            {
                var attempted = Array.Find(entries, e => e.MessageId == conflict.MessageId);
                var original = await ledger.FindAsync(conflict.MessageId);
                if (attempted is { Fingerprint: not 0 } && original is not null && original.MemberId == MemberId && original.Fingerprint == attempted.Fingerprint)
                {
                    throw new LateDuplicateException(original);
                }
                throw new LoyaltyRejectedException(RejectionCode.AlreadyExists,
                    $"transaction_id: '{conflict.MessageId}' was already used for a different message");
            }
            logger.LogInformation("Member {MemberId}: another append overtook this activation's view (sequence conflict); reloading", MemberId);
            throw new StaleMemberException();
        }
        catch
        {
            _account = null;
            throw;
        }
        NotifyWatchers(account);
        if (account.State.Sequence - _snapshotSequence >= SnapshotEveryEntries) await TrySnapshotAsync(SnapshotEveryEntries);
        SweepWhileBehind();
        return entries;
    }

    /// <summary>
    /// Runs a posting; when another append overtook this activation's view (nothing of the message committed) the
    /// member is rebuilt from the ledger and the message decided again, so the processor sees its real outcome.
    /// </summary>
    private async Task<PostingResult> RetryIfStaleAsync<TMessage>(TMessage message, Func<MemberGrain, TMessage, Task<PostingResult>> decide)
    {
        // Messages that waited here past their caller's deadline (a database stall queues them up) are not decided:
        // nobody reads the reply, the processor retries, and after a stall the backlog clears at once.
        if (CallDeadline.HasPassed())
        {
            throw new LoyaltyUnavailableException(outcomeUnknown: false, "the caller's deadline passed before the member could decide; nothing was recorded");
        }
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await decide(this, message);
            }
            catch (StaleMemberException) when (attempt < StaleRetriesMax)
            {
            }
            catch (StaleMemberException)
            {
                throw new LoyaltyRejectedException(RejectionCode.Aborted, $"member '{MemberId}' changed concurrently; retry the message");
            }
        }
    }

    /// <summary>
    /// The ledger rows of a purchase or redemption that left this member's memory, for the domain to rebuild it: null
    /// when the domain named none (the hot path), empty when the ledger has none of this member's under that id.
    /// </summary>
    private async Task<IReadOnlyList<LedgerEntry>?> ColdRowsAsync(string? reference)
    {
        if (reference is null) return null;
        try
        {
            LoyaltyMetrics.ColdPurchaseReads.Add(1);
            // Usually a row is recorded under the reference (an authorization's, a capture's or a redemption's id), and
            // the purchase's rows start there. A force post that named an authorization the engine never saw has no
            // row under that id: then the member's rows are searched by purchase id (rare: unknown references only).
            var first = await ledger.FindAsync(reference);
            if (first is null) return await ledger.ReadPurchaseAsync(MemberId, reference, 1);
            return first.MemberId == MemberId ? await ledger.ReadPurchaseAsync(MemberId, first.PurchaseId, first.Sequence) : [];
        }
        catch (Exception ex) when (ex is LedgerUnavailableException || Faults.IsUnavailable(ex))
        {
            throw new LoyaltyUnavailableException(outcomeUnknown: false, "the database is unreachable; nothing was recorded, retry with the same transaction_id");
        }
    }

    /// <summary>A ledger read; an unreachable database answers UNAVAILABLE (nothing changed).</summary>
    private async Task<IReadOnlyList<LedgerEntry>> ReadLedgerAsync(Func<ILedger, string, long, int, Task<IReadOnlyList<LedgerEntry>>> read, long sequence, int limit)
    {
        try
        {
            return await read(ledger, MemberId, sequence, limit);
        }
        catch (Exception ex) when (ex is LedgerUnavailableException || Faults.IsUnavailable(ex))
        {
            throw new LoyaltyUnavailableException(outcomeUnknown: false, "the database is unreachable; retry later");
        }
    }

    private sealed class LateDuplicateException(LedgerEntry original) : Exception("late duplicate")
    {
        public LedgerEntry Original { get; } = original;
    }

    /// <summary>This activation's view is behind the ledger: reload and decide again.</summary>
    private sealed class StaleMemberException() : Exception("stale member view");
}
