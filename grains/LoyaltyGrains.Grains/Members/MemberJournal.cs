using System.Diagnostics;
using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains.Ledger;
using Microsoft.Extensions.Logging;

namespace LoyaltyGrains.Grains.Members;

/// <summary>What the journal needs from the member's host (the grain): loading, and what follows a write.</summary>
public interface IMemberJournalHost
{
    /// <summary>The member rebuilt from its snapshot and the ledger rows after it (the journal drops its state after a failed write).</summary>
    Task<MemberAccount> LoadAsync(CancellationToken cancellationToken);

    /// <summary>The loop starts serving queued calls: no caller's ambient context (its deadline) may leak into them.</summary>
    void EnteringLoop();

    /// <summary>Entries were written (committed to the ledger): watchers hear the new balance, the sweep runs while behind.</summary>
    void Written(MemberAccount account);

    /// <summary>A batch or an exclusive call's write is done: a snapshot may be due.</summary>
    void SnapshotMayBeDue();

    /// <summary>The ledger now holds the member's referral bonus entry: the referrer is credited (at least once, idempotent there).</summary>
    Task ReferralWrittenAsync(MemberAccount account);
}

/// <summary>
/// A member's journal: its one queue and the only way its entries reach the ledger. Every call is queued and done in
/// arrival order by one loop. Postings (and balance reads) that queued up while a write was under way are decided
/// together, in order, against one in-memory state, and written in one ledger append; each reply waits for that
/// append's commit (an acknowledged message is durable). A failed write fails every posting of it the way a single one
/// would fail, and the member is rebuilt from the ledger before anything else. No Orleans in here: the grain hosts it on
/// its activation's single-threaded scheduler, tests on any exclusive scheduler.
/// </summary>
public sealed class MemberJournal(
    string memberId,
    ILedger ledger,
    ICampaignBudget budgets,
    IRulesProvider rules,
    TimeProvider clock,
    ILogger logger,
    IMemberJournalHost host)
{
    /// <summary>
    /// Times a batch is decided again after another activation's append overtook this one's view (a sequence conflict:
    /// nothing of the batch committed). Rare — after a database outage or a split activation — and bounded.
    /// </summary>
    public const int StaleRetriesMax = 3;

    /// <summary>Postings decided together and written in one append at most: bounds an append and a batch's latency.</summary>
    public const int BatchPostingsMax = 128;

    /// <summary>Calls waiting in one member's queue at most; beyond it a call answers UNAVAILABLE, nothing recorded.</summary>
    public const int QueuedCallsMax = 4_096;

    private readonly Queue<Work> _queue = new();
    private readonly List<Batched> _batch = [];
    private MemberAccount? _account;
    private Task? _drain;

    /// <summary>The deadline of the exclusive call running now: its write waits no longer than its caller.</summary>
    private long? _exclusiveDeadline;

    public string MemberId => memberId;

    /// <summary>The member in memory; null when it must be rebuilt from the ledger before the next decision.</summary>
    public MemberAccount? Account => _account;

    /// <summary>The member's cards as their card grains told this activation.</summary>
    public MemberCards Cards { get; } = new();

    /// <summary>The loop while it serves queued calls (deactivation waits for it), else null.</summary>
    public Task? Running => _drain;

    /// <summary>The member in memory, rebuilt from snapshot and ledger first when needed (UNAVAILABLE when out of reach).</summary>
    public async Task<MemberAccount> AccountAsync(CancellationToken cancellationToken = default) =>
        _account ??= await ContractFaults.ReadAsync(() => host.LoadAsync(cancellationToken));

    public async Task<MemberAccount> EnrolledAsync()
    {
        var account = await AccountAsync();
        if (!account.State.Enrolled) throw NotEnrolled();
        return account;
    }

    /// <summary>Queues a processor's posting; its card (for an authorization) vouched for as <paramref name="vouch"/> says.</summary>
    public Task<PostingResult> Post(PostingItem item, CardVouch vouch, long? deadline) => Submit(new Posting(item, null, vouch, deadline));

    public Task<PostingResult> Redeem(RedeemCommand command, long? deadline) => Submit(new Posting(new PostingItem(), command, CardVouch.Member, deadline));

    /// <summary>The balance after the postings queued before it, once they are written; lots past expiry are written off first.</summary>
    public Task<BalanceView> ReadBalance(long? deadline)
    {
        var read = new BalanceRead(deadline);
        Enqueue(read);
        return read.Completion.Task;
    }

    /// <summary>Queues a call done alone between batches (reads, choices, enrolment, the sweep): as a non-reentrant call would be.</summary>
    public Task<T> RunExclusive<T>(Func<Task<T>> operation, long? deadline)
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
        }, deadline));
        return completion.Task;
    }

    /// <summary>
    /// Writes what an exclusive call's decision recorded and returns the campaign budget it gave back. The reply waits
    /// for this: an ack means durable. A failed write answers as <see cref="ContractFaults.OfWrite"/> says.
    /// </summary>
    public async Task<LedgerEntry[]> WriteAsync(MemberAccount account)
    {
        if (account.Uncommitted.Count == 0) return [];
        var entries = account.Uncommitted.ToArray();
        var returns = account.BudgetReturns.ToArray();
        account.ClearUncommitted();
        try
        {
            await AppendAsync(account, entries, _exclusiveDeadline);
        }
        catch (Exception ex)
        {
            LogIfOvertaken(ex);
            throw ContractFaults.OfWrite(ex, memberId);
        }
        budgets.ReturnBudget(returns);
        host.SnapshotMayBeDue();
        return entries;
    }

    /// <summary>A ledger read for a call: UNAVAILABLE (nothing changed) when the database is out of reach.</summary>
    public Task<T> ReadLedgerAsync<T>(Func<ILedger, Task<T>> read) => ContractFaults.ReadAsync(() => read(ledger));

    private LoyaltyRejectedException NotEnrolled() => new(RejectionCode.NotFound, $"member_id: member '{memberId}' is not enrolled");

    private Task<PostingResult> Submit(Posting posting)
    {
        Enqueue(posting);
        return posting.Completion.Task;
    }

    private void Enqueue(Work work)
    {
        if (_queue.Count >= QueuedCallsMax)
        {
            throw new LoyaltyUnavailableException(outcomeUnknown: false,
                $"member '{memberId}' has {QueuedCallsMax} calls waiting; nothing was recorded, retry with the same transaction_id");
        }
        _queue.Enqueue(work);
        _drain ??= DrainAsync();
    }

    /// <summary>
    /// The member's one loop: while calls are queued, runs an exclusive one alone, or decides the postings at the head of
    /// the queue (up to <see cref="BatchPostingsMax"/>) and writes them together.
    /// </summary>
    private async Task DrainAsync()
    {
        // The loop serves every queued call, not the one whose turn started it: no caller's context (deadline) leaks in.
        host.EnteringLoop();
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
                    await WriteBatchAsync(_batch);
                }
                catch (Exception ex)
                {
                    // Not expected (every path answers its postings); never leave a caller waiting.
                    logger.LogError(ex, "Member {MemberId}: a batch of postings failed unexpectedly", memberId);
                    _account = null;
                    foreach (var batched in _batch) batched.Fail(ex);
                }
                _batch.Clear();
                host.SnapshotMayBeDue();
            }
        }
        finally
        {
            _drain = null;
        }
    }

    /// <summary>
    /// Decides the batch's postings in order against one in-memory state and writes all their entries in one append,
    /// then answers each. A duplicate inside the batch is answered from the first one's outcome (same append). A used
    /// message id is answered from the ledger and the rest decided again; a sequence conflict rebuilds the member and
    /// decides the batch again (bounded); any other failure fails them all as unary calls fail.
    /// </summary>
    private async Task WriteBatchAsync(List<Batched> batch)
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
            catch (Exception failure)
            {
                var outcome = failure is LedgerUnavailableException { NotCommitted: false } ? WriteOutcome.Unknown : WriteOutcome.NotWritten;
                for (var i = 0; i < decided; i++) SettleGrants(batch[i], outcome);
                LogIfOvertaken(failure);
                switch (failure)
                {
                    case LedgerConflictException { Kind: LedgerConflictKind.MessageId } taken:
                        // One message's id is in the ledger already: answer that one from the ledger, decide the others again.
                        if (!await SettleTakenIdAsync(batch, decided, entries, taken.MessageId)) return;
                        continue;
                    case LedgerConflictException when staleAttempt++ < StaleRetriesMax:
                        continue;
                    default:
                        FailUnsettled(batch, ContractFaults.OfWrite(failure, memberId));
                        return;
                }
            }
            budgets.ReturnBudget(returns);
            for (var i = 0; i < decided; i++) Answer(batch[i]);
            if (Array.Exists(entries, e => e.Kind == EntryKind.ReferralBonus && e.Detail == memberId)) await host.ReferralWrittenAsync(account);
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
                        if (!account.State.Enrolled) throw NotEnrolled();
                        var now = clock.GetUtcNow();
                        account.ExpireLots(now);
                        read.View = MemberViews.Balance(account, rules, now);
                        break;
                }
            }
            catch (Exception ex)
            {
                posting.Error = ex;
                if (account.Uncommitted.Count != posting.FirstEntry)
                {
                    logger.LogError(ex, "Member {MemberId}: deciding {TransactionId} failed midway; rebuilding", memberId, posting.TransactionId);
                    SettleGrants(posting, WriteOutcome.NotWritten);
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

    /// <summary>
    /// One posting decided against the batch's in-memory state, in the domain's two steps: gather what it needs (the rows
    /// of a purchase that left memory, then the campaign budget it claims), then decide; a refusal the domain cannot tell
    /// from a late retry is decided again with the ledger's row under the message's id. Entries stay uncommitted.
    /// </summary>
    private async ValueTask<Result<PostingOutcome>> DecideAsync(Posting posting, MemberAccount account)
    {
        var now = clock.GetUtcNow();
        var command = Command(posting);
        var coldRows = await ColdRowsAsync(account.NeedsOf(command, now));
        posting.Grants = await budgets.ReserveAsync(account.ClaimsOf(command, coldRows, rules.Programs, rules.Catalogue, rules.Campaigns, now));
        var facts = new PostingFacts(coldRows, posting.Grants);
        var decision = account.Decide(command, facts, rules.Programs, rules.Catalogue, now);
        if (!decision.NeedsLedgerRow) return decision.Result;
        var row = await ContractFaults.ReadAsync(() => ledger.FindAsync(command.TransactionId));
        return account.Decide(command, facts with { LedgerRow = row, LedgerRowRead = true }, rules.Programs, rules.Catalogue, now).Result;
    }

    /// <summary>The domain command of a queued posting; an authorization's card as whoever vouches for it says.</summary>
    private PostingCommand Command(Posting posting) => posting.Item switch
    {
        _ when posting.Redeem is { } redeem => redeem,
        { Authorize: { } m } => new AuthorizeCommand(m.TransactionId, Cards.Shared(m.CardId), m.AmountMinor, SharedStrings.Currencies.Share(m.Currency),
            m.Mcc, SharedStrings.Merchants.Share(m.MerchantId), m.OccurredAt, Cards.Standing(memberId, m.CardId, posting.Vouch)),
        { Capture: { } m } => new CaptureCommand(m.TransactionId, m.AuthorizationId, Cards.Shared(m.CardId), m.AmountMinor, m.OccurredAt, m.Mcc,
            SharedStrings.Merchants.Share(m.MerchantId), SharedStrings.Currencies.Share(m.Currency)),
        { Reverse: { } m } => new ReverseCommand(m.TransactionId, m.AuthorizationId, m.CardId, m.AmountMinor, m.OccurredAt),
        { Refund: { } m } => new RefundCommand(m.TransactionId, m.OriginalTransactionId, m.CardId, m.AmountMinor, m.OccurredAt),
        _ => throw new LoyaltyRejectedException(RejectionCode.InvalidArgument, "kind: one of authorize, capture, reverse, refund is required"),
    };

    /// <summary>
    /// The ledger rows of a purchase or redemption that left this member's memory, for the domain to rebuild it: null
    /// when the domain named none (the hot path), empty when the ledger has none of this member's under that id.
    /// </summary>
    private async Task<IReadOnlyList<LedgerEntry>?> ColdRowsAsync(string? reference)
    {
        if (reference is null) return null;
        LoyaltyMetrics.ColdPurchaseReads.Add(1);
        return await ContractFaults.ReadAsync(async () =>
        {
            // Usually a row is recorded under the reference (an authorization's, a capture's or a redemption's id), and
            // the purchase's rows start there. A force post that named an authorization the engine never saw has no
            // row under that id: then the member's rows are searched by purchase id (rare: unknown references only).
            var first = await ledger.FindAsync(reference);
            if (first is null) return await ledger.ReadPurchaseAsync(memberId, reference, 1);
            return first.MemberId == memberId ? await ledger.ReadPurchaseAsync(memberId, first.PurchaseId, first.Sequence) : [];
        });
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
        SettleGrants(batched, WriteOutcome.Written);
        if (batched.Error is { } error)
        {
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
        Reply(posting, result, !result.IsOk ? "rejected" : result.Value!.Duplicate ? "duplicate" : "accepted");
    }

    private static void Reply(Posting posting, Result<PostingOutcome> result, string metric)
    {
        LoyaltyMetrics.Posting(posting.Kind, metric);
        if (result.Rejection is { } rejection) posting.Completion.TrySetException(ContractFaults.Rejected(rejection));
        else posting.Completion.TrySetResult(Mapping.ToResult(result.Value!));
    }

    /// <summary>
    /// The one place campaign budget reserved for a decision is kept or given back. Kept only by an accepted, new
    /// posting whose entries were written, or may have been (an unknown outcome: giving it back could pay it twice, so
    /// at worst a little budget is never paid out). A refusal, a duplicate, a failure or an unwritten batch gives it back.
    /// </summary>
    private void SettleGrants(Batched batched, WriteOutcome outcome)
    {
        var used = batched is Posting { Error: null, Decision: { IsOk: true, Value.Duplicate: false } } && outcome != WriteOutcome.NotWritten;
        if (!used) budgets.Release(batched.Grants);
        batched.Grants = [];
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
            original = await ContractFaults.ReadAsync(() => ledger.FindAsync(messageId));
        }
        catch (LoyaltyUnavailableException unreachable)
        {
            FailUnsettled(batch, unreachable);
            return false;
        }
        if (owner is null)
        {
            // Not a posting's own id (never expected): nothing of the batch committed; refuse them all rather than guess.
            FailUnsettled(batch, ContractFaults.Rejected(MemberAccount.AlreadyUsed(messageId)));
            return false;
        }
        owner.Settled = true;
        var answer = MemberAccount.AnswerSeenId(memberId, messageId, entries[index].Fingerprint, original);
        Reply(owner, answer, answer.IsOk ? "duplicate" : "rejected");
        return true;
    }

    private static void FailUnsettled(List<Batched> batch, Exception error)
    {
        foreach (var posting in batch)
        {
            if (!posting.Settled) posting.Fail(posting.Error ?? error);
        }
    }

    private void LogIfOvertaken(Exception failure)
    {
        if (failure is LedgerConflictException { Kind: LedgerConflictKind.Sequence })
        {
            logger.LogInformation("Member {MemberId}: another append overtook this activation's view (sequence conflict); reloading", memberId);
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
        host.Written(account);
    }

    private enum WriteOutcome
    {
        Written,
        NotWritten,
        /// <summary>The ledger could not confirm: the entries may still commit.</summary>
        Unknown,
    }

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

        // Set while its batch is decided and written.
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
    private sealed class Posting(PostingItem item, RedeemCommand? redeem, CardVouch vouch, long? deadline) : Batched(deadline)
    {
        public PostingItem Item { get; } = item;
        public RedeemCommand? Redeem { get; } = redeem;
        public CardVouch Vouch { get; } = vouch;
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
    /// after the postings queued before it, once they are written. So a read between postings does not split a batch.
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
}
