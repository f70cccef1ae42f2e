using System.Diagnostics;
using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains.Ledger;
using Microsoft.Extensions.Logging;

namespace LoyaltyGrains.Grains;

/// <summary>
/// The journal: the member's one queue and the only way its entries reach the ledger. Every call is queued and done in
/// arrival order by one loop. Postings that queued up while a commit was under way are decided together, in order, in
/// memory, and committed in one append; each reply waits for that commit (ack = durable). A failed append fails every
/// posting of it the way a single one would fail, and the member is rebuilt from the ledger before anything else.
/// </summary>
public sealed partial class MemberGrain
{
    /// <summary>
    /// Times a message is decided again after another activation's append overtook this one's view (a sequence conflict:
    /// nothing of the message committed). Rare — after a database outage or a split activation — and bounded.
    /// </summary>
    public const int StaleRetriesMax = 3;

    /// <summary>Postings decided together and committed in one append at most: bounds an append and a batch's latency.</summary>
    public const int BatchPostingsMax = 128;

    /// <summary>Calls waiting in one member's queue at most; beyond it a call answers UNAVAILABLE, nothing recorded.</summary>
    public const int QueuedCallsMax = 4_096;

    private readonly Queue<Work> _queue = new();
    private readonly List<Batched> _batch = [];
    private Task? _drain;

    /// <summary>The deadline of the exclusive call running now: its commit waits no longer than its caller.</summary>
    private long? _exclusiveDeadline;

    /// <summary>A queued call. Completed by the loop only; never throws out of it.</summary>
    private abstract class Work(long? deadline)
    {
        /// <summary>The caller's deadline (UTC ticks): queued work runs outside the call, so it is carried here.</summary>
        public long? Deadline { get; } = deadline;
    }

    /// <summary>A call done alone between batches, exactly as a non-reentrant grain would do it.</summary>
    private sealed class Exclusive(Func<Task> run, long? deadline) : Work(deadline)
    {
        public Func<Task> Run { get; } = run;
    }

    /// <summary>A call decided in a batch with the postings around it and answered after the batch's append.</summary>
    private abstract class Batched(long? deadline) : Work(deadline)
    {
        public abstract string Kind { get; }
        public abstract string TransactionId { get; }

        // Set while its batch is decided and committed.
        public CampaignGrant[] Grants = [];
        public Exception? Error;
        /// <summary>Its entries in the batch's append: [FirstEntry, EndEntry).</summary>
        public int FirstEntry, EndEntry;
        /// <summary>Answered without the batch's append (a late duplicate, a conflicting id): not decided again.</summary>
        public bool Settled;

        public virtual void Reset()
        {
            Grants = [];
            Error = null;
            FirstEntry = EndEntry = 0;
        }

        public abstract void Fail(Exception error);
    }

    /// <summary>One processor or partner posting.</summary>
    private sealed class Posting(PostingItem item, RedeemCommand? redeem, CardFact card, long? deadline) : Batched(deadline)
    {
        public PostingItem Item { get; } = item;
        public RedeemCommand? Redeem { get; } = redeem;
        public CardFact Card { get; } = card;
        public TaskCompletionSource<PostingResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Result<PostingOutcome>? Decision;

        public override string Kind => Item.Authorize is not null ? "authorize" : Item.Capture is not null ? "capture" : Item.Reverse is not null ? "reverse"
            : Item.Refund is not null ? "refund" : "redeem";

        public override string TransactionId => Redeem?.TransactionId ?? Item.TransactionId;

        public override void Reset()
        {
            base.Reset();
            Decision = null;
        }

        public override void Fail(Exception error) => Completion.TrySetException(error);
    }

    /// <summary>
    /// A balance read: its housekeeping (lots past expiry written off) joins the batch's append, and it shows the balance
    /// after the postings queued before it, once they are committed. So a read between postings does not split a batch.
    /// </summary>
    private sealed class BalanceRead(long? deadline) : Batched(deadline)
    {
        public TaskCompletionSource<BalanceView> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public BalanceView? View;

        public override string Kind => "balance";
        public override string TransactionId => "";

        public override void Reset()
        {
            base.Reset();
            View = null;
        }

        public override void Fail(Exception error) => Completion.TrySetException(error);
    }

    /// <summary>What the member is told about the card of an authorization, by whom.</summary>
    private enum CardFact
    {
        /// <summary>Not about a card, or a caller that vouches for it (the engine's own tests and tools).</summary>
        Trusted,
        /// <summary>From a gateway that knows the card's member only: decided with what the card grain told this activation.</summary>
        Known,
        /// <summary>From the card grain: its card, not blocked.</summary>
        FromCardActive,
        /// <summary>From the card grain: its card, blocked.</summary>
        FromCardBlocked,
    }

    /// <summary>Queues a call done alone (reads, choices, enrolment, the sweep): same semantics as a non-reentrant call.</summary>
    private Task<T> RunExclusive<T>(Func<Task<T>> operation)
    {
        var completion = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        Enqueue(new Exclusive(async () =>
        {
            try
            {
                completion.SetResult(await operation());
            }
            catch (Exception ex)
            {
                completion.SetException(ex);
            }
        }, CallDeadline.Current()));
        return completion.Task;
    }

    private Task RunExclusive(Func<Task> operation) => RunExclusive(async () =>
    {
        await operation();
        return true;
    });

    private Task<PostingResult> Submit(PostingItem item, CardFact card = CardFact.Trusted, RedeemCommand? redeem = null)
    {
        var posting = new Posting(item, redeem, card, CallDeadline.Current());
        Enqueue(posting);
        return posting.Completion.Task;
    }

    private void Enqueue(Work work)
    {
        if (_queue.Count >= QueuedCallsMax)
        {
            throw new LoyaltyUnavailableException(outcomeUnknown: false,
                $"member '{MemberId}' has {QueuedCallsMax} calls waiting; nothing was recorded, retry with the same transaction_id");
        }
        _queue.Enqueue(work);
        _drain ??= DrainAsync();
    }

    /// <summary>
    /// The member's one loop, on the activation's scheduler: while calls are queued, runs an exclusive one alone, or
    /// decides the postings at the head of the queue (up to <see cref="BatchPostingsMax"/>) and commits them together.
    /// </summary>
    private async Task DrainAsync()
    {
        // The loop serves every queued call, not the one whose turn started it: no caller's context (deadline) leaks in.
        RequestContext.Clear();
        await Task.Yield(); // let the call that started the loop return first; postings queued meanwhile join the batch
        try
        {
            while (_queue.TryPeek(out var next))
            {
                if (next is Exclusive exclusive)
                {
                    _queue.Dequeue();
                    _exclusiveDeadline = exclusive.Deadline;
                    await exclusive.Run();
                    _exclusiveDeadline = null;
                    continue;
                }
                while (_batch.Count < BatchPostingsMax && _queue.TryPeek(out var head) && head is Batched batched)
                {
                    _queue.Dequeue();
                    _batch.Add(batched);
                }
                try
                {
                    await CommitBatchAsync(_batch);
                }
                catch (Exception ex)
                {
                    // Not expected (every path answers its postings); never leave a caller waiting.
                    logger.LogError(ex, "Member {MemberId}: a batch of postings failed unexpectedly", MemberId);
                    _account = null;
                    foreach (var batched in _batch) batched.Fail(ex);
                }
                _batch.Clear();
                SnapshotInBackground();
            }
        }
        finally
        {
            _drain = null;
        }
    }

    /// <summary>
    /// Decides the batch's postings in order against one in-memory state and commits all their entries in one append,
    /// then answers each. A duplicate inside the batch is answered from the first one's outcome (same commit). On a
    /// conflict the member is rebuilt and the rest decided again; an unreachable ledger fails them all as unary calls fail.
    /// </summary>
    private async Task CommitBatchAsync(List<Batched> batch)
    {
        for (var staleAttempt = 1; ;)
        {
            MemberAccount account;
            try
            {
                account = await AccountAsync();
            }
            catch (Exception ex)
            {
                FailUnsettled(batch, ex);
                return;
            }
            var (decided, entryCount, dirty) = await DecideBatchAsync(batch, account);
            // A half-decided posting's budget returns are not trusted: at worst a little budget is never paid out.
            var returns = dirty ? [] : account.BudgetReturns.ToArray();
            var entries = account.Uncommitted.Take(entryCount).ToArray();
            account.ClearUncommitted();
            try
            {
                await AppendAsync(account, entries, LatestDeadline(batch, decided));
                if (dirty) _account = null;
            }
            catch (LedgerConflictException conflict) when (conflict.Kind == LedgerConflictKind.MessageId)
            {
                // One message's id is in the ledger already: answer that one from the ledger, decide the others again.
                ReleaseAll(batch, decided);
                if (!await SettleTakenIdAsync(batch, decided, entries, conflict.MessageId)) return;
                continue;
            }
            catch (LedgerConflictException)
            {
                ReleaseAll(batch, decided);
                logger.LogInformation("Member {MemberId}: another append overtook this activation's view (sequence conflict); reloading", MemberId);
                if (staleAttempt++ < StaleRetriesMax) continue;
                FailUnsettled(batch, new LoyaltyRejectedException(RejectionCode.Aborted, $"member '{MemberId}' changed concurrently; retry the message"));
                return;
            }
            catch (LedgerUnavailableException unavailable)
            {
                // The entries may still commit when the outcome is unknown: their campaign budget stays spent (at worst a
                // little budget is never paid out; returning it could pay it twice).
                if (unavailable.NotCommitted) ReleaseAll(batch, decided);
                FailUnsettled(batch, new LoyaltyUnavailableException(!unavailable.NotCommitted, unavailable.NotCommitted
                    ? "the database is unreachable; nothing was recorded, retry with the same transaction_id"
                    : "the database did not confirm in time; the outcome is unknown, retry with the same transaction_id"));
                return;
            }
            catch (Exception ex)
            {
                ReleaseAll(batch, decided);
                FailUnsettled(batch, ex);
                return;
            }
            budgets.Return(returns);
            for (var i = 0; i < decided; i++) Answer(batch[i]);
            if (Array.Exists(entries, e => e.Kind == EntryKind.ReferralBonus && e.Detail == MemberId)) await NotifyReferrerAsync(account);
            return;
        }
    }

    /// <summary>
    /// Decides the batch's unsettled postings in order: how many were decided and how many of the account's uncommitted
    /// entries are theirs. A posting whose decision threw after the domain recorded part of it (never expected) ends the
    /// batch there: it fails, the postings after it go back to the head of the queue, and the member is rebuilt after
    /// the append of what came before it.
    /// </summary>
    private async Task<(int Decided, int Entries, bool Dirty)> DecideBatchAsync(List<Batched> batch, MemberAccount account)
    {
        for (var i = 0; i < batch.Count; i++)
        {
            var posting = batch[i];
            if (posting.Settled) continue;
            posting.Reset();
            posting.FirstEntry = account.Uncommitted.Count;
            try
            {
                // Postings that waited past their caller's deadline (a database stall queues them up) are not decided:
                // nobody reads the reply, the processor retries, and after a stall the backlog clears at once.
                if (CallDeadline.HasPassed(posting.Deadline))
                {
                    throw new LoyaltyUnavailableException(outcomeUnknown: false, "the caller's deadline passed before the member could decide; nothing was recorded");
                }
                switch (posting)
                {
                    case Posting one:
                        one.Decision = await DecideAsync(one, account);
                        break;
                    case BalanceRead read:
                        read.View = ReadBalance(account);
                        break;
                }
            }
            catch (Exception ex)
            {
                posting.Error = ex;
                if (account.Uncommitted.Count != posting.FirstEntry)
                {
                    logger.LogError(ex, "Member {MemberId}: deciding {TransactionId} failed midway; rebuilding", MemberId, posting.TransactionId);
                    budgets.Release(posting.Grants);
                    posting.Settled = true;
                    posting.Fail(ex);
                    Requeue(batch, i + 1);
                    batch.RemoveRange(i, batch.Count - i);
                    return (i, posting.FirstEntry, true);
                }
            }
            posting.EndEntry = account.Uncommitted.Count;
        }
        return (batch.Count, account.Uncommitted.Count, false);
    }

    private void Requeue(List<Batched> batch, int from)
    {
        if (from >= batch.Count) return;
        var rest = new List<Work>(batch.Count - from + _queue.Count);
        rest.AddRange(batch.Skip(from));
        rest.AddRange(_queue);
        _queue.Clear();
        foreach (var work in rest) _queue.Enqueue(work);
    }

    /// <summary>After a committed append: the reply each posting would have had as a unary call, with its metric.</summary>
    private void Answer(Batched batched)
    {
        if (batched.Settled) return;
        if (batched.Error is { } error)
        {
            budgets.Release(batched.Grants);
            batched.Fail(error);
            return;
        }
        if (batched is BalanceRead read)
        {
            read.Completion.TrySetResult(read.View!);
            return;
        }
        var posting = (Posting)batched;
        var result = posting.Decision!.Value;
        LoyaltyMetrics.Posting(posting.Kind, !result.IsOk ? "rejected" : result.Value!.Duplicate ? "duplicate" : "accepted");
        if (!result.IsOk || result.Value!.Duplicate) budgets.Release(posting.Grants);
        if (result.Rejection is { } rejection)
        {
            posting.Completion.TrySetException(new LoyaltyRejectedException((RejectionCode)(int)rejection.Kind, rejection.Message));
            return;
        }
        posting.Completion.TrySetResult(Mapping.ToResult(result.Value!));
    }

    /// <summary>
    /// The ledger already holds a message id one of the batch's postings used: a retry from beyond the in-memory dedupe
    /// window (answered DUPLICATE with the original) or another message's id (ALREADY_EXISTS). False when that cannot
    /// be told (database unreachable): then every posting of the batch failed, nothing recorded.
    /// </summary>
    private async Task<bool> SettleTakenIdAsync(List<Batched> batch, int decided, LedgerEntry[] entries, string messageId)
    {
        var index = Array.FindIndex(entries, e => e.MessageId == messageId);
        var owner = index < 0 ? null : batch.Take(decided).FirstOrDefault(p => !p.Settled && p.FirstEntry <= index && index < p.EndEntry) as Posting;
        LedgerEntry? original;
        try
        {
            original = await ledger.FindAsync(messageId);
        }
        catch (Exception ex) when (ex is LedgerUnavailableException || Faults.IsUnavailable(ex))
        {
            FailUnsettled(batch, new LoyaltyUnavailableException(outcomeUnknown: false, "the database is unreachable; nothing was recorded, retry with the same transaction_id"));
            return false;
        }
        var rejection = new LoyaltyRejectedException(RejectionCode.AlreadyExists, $"transaction_id: '{messageId}' was already used for a different message");
        if (owner is null)
        {
            // Not a posting's own id (never expected): nothing of the batch committed; refuse them all rather than guess.
            FailUnsettled(batch, rejection);
            return false;
        }
        owner.Settled = true;
        var attempted = entries[index];
        if (attempted is { Fingerprint: not 0 } && original is not null && original.MemberId == MemberId && original.Fingerprint == attempted.Fingerprint)
        {
            LoyaltyMetrics.Posting(owner.Kind, "duplicate");
            owner.Completion.TrySetResult(Mapping.ToResult(PostingOutcome.From(original, duplicate: true)));
        }
        else
        {
            LoyaltyMetrics.Posting(owner.Kind, "rejected");
            owner.Completion.TrySetException(rejection);
        }
        return true;
    }

    private void ReleaseAll(List<Batched> batch, int decided)
    {
        for (var i = 0; i < decided; i++)
        {
            budgets.Release(batch[i].Grants);
            batch[i].Grants = [];
        }
    }

    private static void FailUnsettled(List<Batched> batch, Exception error)
    {
        foreach (var posting in batch)
        {
            if (!posting.Settled) posting.Fail(posting.Error ?? error);
        }
    }

    /// <summary>The append may wait as long as the last caller of the batch waits (none: the ledger's own bound).</summary>
    private static long? LatestDeadline(List<Batched> batch, int decided)
    {
        long latest = 0;
        for (var i = 0; i < decided; i++)
        {
            if (batch[i].Deadline is not { } ticks) return null;
            latest = Math.Max(latest, ticks);
        }
        return latest == 0 ? null : latest;
    }

    /// <summary>
    /// The single path to the ledger: appends entries the account decided and applied, in order, and returns after the
    /// commit. On any failure the in-memory state (which already applied them) is dropped and rebuilt from the truth.
    /// </summary>
    private async Task AppendAsync(MemberAccount account, LedgerEntry[] entries, long? deadline)
    {
        if (entries.Length == 0) return;
        var started = Stopwatch.GetTimestamp();
        try
        {
            // The caller's gRPC deadline, when it has one, bounds the wait too: past it nobody reads the reply.
            using var cancel = CallDeadline.CancellationSource(deadline);
            await ledger.AppendAsync(entries, cancel?.Token ?? CancellationToken.None);
        }
        catch
        {
            _account = null;
            throw;
        }
        LoyaltyMetrics.LedgerCommitSeconds.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
        LoyaltyMetrics.LedgerEntries.Add(entries.Length);
        NotifyWatchers(account);
        SweepWhileBehind();
    }

    /// <summary>Commits what an exclusive call's decision recorded. The reply waits for this: an ack means durable.</summary>
    private async Task<LedgerEntry[]> CommitAsync(MemberAccount account)
    {
        var deadline = _exclusiveDeadline;
        if (account.Uncommitted.Count == 0) return [];
        var entries = account.Uncommitted.ToArray();
        account.ClearUncommitted();
        try
        {
            await AppendAsync(account, entries, deadline);
        }
        catch (LedgerUnavailableException unavailable)
        {
            throw new LoyaltyUnavailableException(!unavailable.NotCommitted, unavailable.NotCommitted
                ? "the database is unreachable; nothing was recorded, retry with the same transaction_id"
                : "the database did not confirm in time; the outcome is unknown, retry with the same transaction_id");
        }
        catch (LedgerConflictException conflict) when (conflict.Kind == LedgerConflictKind.MessageId)
        {
            throw new LoyaltyRejectedException(RejectionCode.AlreadyExists, $"transaction_id: '{conflict.MessageId}' was already used for a different message");
        }
        catch (LedgerConflictException)
        {
            logger.LogInformation("Member {MemberId}: another append overtook this activation's view (sequence conflict); reloading", MemberId);
            throw new LoyaltyRejectedException(RejectionCode.Aborted, $"member '{MemberId}' changed concurrently; retry");
        }
        SnapshotInBackground();
        return entries;
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
}
