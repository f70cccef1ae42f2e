using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains.Ledger;
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
/// Thin host of a <see cref="MemberAccount"/>: decides a command in memory, commits its ledger entries, then replies.
/// Not reentrant: one message at a time, so a decision always sees the committed state. If a commit fails, the
/// in-memory state (which already applied the entries) is dropped and rebuilt from snapshot + ledger.
/// </summary>
public sealed class MemberGrain(
    [PersistentState("member", StorageNames.Loyalty)] IPersistentState<MemberSnapshot> snapshot,
    ILedger ledger,
    IRulesProvider rules,
    CampaignBudgets budgets,
    TimeProvider clock,
    ILogger<MemberGrain> logger) : Grain, IMemberGrain
{
    /// <summary>Snapshot after this many entries, or on the timer/deactivation, so activation replays few rows.</summary>
    public const int SnapshotEveryEntries = 200;
    public static readonly TimeSpan SweepInterval = TimeSpan.FromMinutes(1);
    public const int StatementPageSizeMax = 200;

    /// <summary>Watchers per member at most: a limit on everything.</summary>
    public const int WatchersMax = 64;

    /// <summary>
    /// Times a message is decided again after another activation's append overtook this one's view (a sequence conflict:
    /// nothing of the message committed). Rare — after a database outage or a split activation — and bounded.
    /// </summary>
    public const int StaleRetriesMax = 3;

    private MemberAccount? _account;

    // Runs only while the snapshot is behind the ledger: an idle member holds no timer (a million of them would).
    private IGrainTimer? _sweep;
    private long _snapshotSequence;
    private Dictionary<IBalanceObserver, DateTimeOffset>? _watchers;

    // This member's cards as their card grains last said, for authorizations routed past the card grain. Not
    // persisted: learnt again after activation. A card's member never changes once issued; a block is pushed here by
    // the card grain before it is acknowledged, so an authorization after a block always sees it.
    private (string CardId, bool Blocked)[] _cards = [];

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
            await SnapshotIfBehindAsync(1);
        }
        catch (Exception ex)
        {
            // The ledger holds everything; a missing snapshot only makes the next activation replay more rows.
            logger.LogWarning(ex, "Member {MemberId}: snapshot on deactivation failed", MemberId);
        }
    }

    // ------------------------------------------------------------------ member and postings

    public async Task<MemberInfo> Enroll(bool premium, string referredBy, string tier)
    {
        var account = await AccountAsync();
        var now = clock.GetUtcNow();
        var result = account.Enroll(new EnrollCommand(MemberId, premium, referredBy, tier), rules.Programs.At(now), now);
        await CommitAsync(account);
        ThrowIfRejected(result.Rejection);
        return Info(account.State);
    }

    public async Task<MemberInfo> GetMember() => Info((await EnrolledAsync()).State);

    public async Task<bool> IsEnrolled() => (await AccountAsync()).State.Enrolled;

    public Task<PostingResult> Authorize(AuthorizeMessage m) => RetryIfStaleAsync(m, static (grain, m) => grain.AuthorizeOnce(m, CardStanding.Active));

    private async Task<PostingResult> AuthorizeOnce(AuthorizeMessage m, CardStanding card)
    {
        var account = await AccountAsync();
        var cold = await ColdRowsAsync(account.ColdAuthorization(m.TransactionId, m.OccurredAt, clock.GetUtcNow()));
        // Nothing reserved for a message that cannot earn (a retry, an unknown member, a card the domain will refuse).
        var grants = account.HasProcessed(m.TransactionId) || !account.State.Enrolled || card != CardStanding.Active
            ? []
            : await budgets.ReserveAsync(account.PlanCampaigns(rules.Programs, rules.Catalogue, rules.Campaigns, m.AmountMinor, m.Mcc, m.MerchantId, m.OccurredAt));
        var result = account.Authorize(new AuthorizeCommand(m.TransactionId, KnownCardId(m.CardId), m.AmountMinor, SharedStrings.Currencies.Share(m.Currency), m.Mcc,
                SharedStrings.Merchants.Share(m.MerchantId), m.OccurredAt, card),
            rules.Programs, rules.Catalogue, clock.GetUtcNow(), grants, cold);
        return await ReplyAsync("authorize", account, result, grants);
    }

    /// <summary>An authorization on a card: the domain refuses a blocked card or another member's, after its duplicate check.</summary>
    public Task<PostingResult> AuthorizeOnCard(AuthorizeMessage m) =>
        RetryIfStaleAsync(m, static async (grain, m) => await grain.AuthorizeOnce(m, await grain.CardStandingAsync(m.CardId)));

    public Task CardBlocked(string cardId)
    {
        var index = CardIndex(cardId);
        if (index >= 0) _cards[index].Blocked = true;
        else _cards = [.. _cards, (cardId, true)];
        return Task.CompletedTask;
    }

    /// <summary>Where this card is in the member's known cards, or -1. A member has a few cards: a scan is the fastest lookup.</summary>
    private int CardIndex(string cardId)
    {
        for (var i = 0; i < _cards.Length; i++)
        {
            if (_cards[i].CardId == cardId) return i;
        }
        return -1;
    }

    /// <summary>The instance of this card id the member already holds, so a purchase does not keep its own copy.</summary>
    private string KnownCardId(string cardId) => CardIndex(cardId) is var i and >= 0 ? _cards[i].CardId : cardId;

    /// <summary>What the card grain said of this card (asked once per activation; a block is pushed here).</summary>
    private async ValueTask<CardStanding> CardStandingAsync(string cardId)
    {
        if (CardIndex(cardId) is var known and >= 0) return _cards[known].Blocked ? CardStanding.Blocked : CardStanding.Active;
        var card = await GrainFactory.CardGrain(cardId).GetCard();
        if (card.MemberId != MemberId) return CardStanding.OtherMember;
        // Non-reentrant: no CardBlocked ran while we waited, so what the card said is current.
        _cards = [.. _cards, (cardId, card.Blocked)];
        return card.Blocked ? CardStanding.Blocked : CardStanding.Active;
    }

    public Task<PostingResult> Capture(CaptureMessage m) => RetryIfStaleAsync(m, static (grain, m) => grain.CaptureOnce(m));

    private async Task<PostingResult> CaptureOnce(CaptureMessage m)
    {
        var account = await AccountAsync();
        var cold = await ColdRowsAsync(account.ColdReference(m.TransactionId, m.AuthorizationId));
        var grants = account.HasProcessed(m.TransactionId) || !account.State.Enrolled || !account.IsForcePost(m.AuthorizationId, m.Mcc, cold)
            ? []
            : await budgets.ReserveAsync(account.PlanCampaigns(rules.Programs, rules.Catalogue, rules.Campaigns, m.AmountMinor, m.Mcc, m.MerchantId,
                m.OccurredAt ?? clock.GetUtcNow()));
        var result = account.Capture(new CaptureCommand(m.TransactionId, m.AuthorizationId, KnownCardId(m.CardId), m.AmountMinor, m.OccurredAt, m.Mcc,
                SharedStrings.Merchants.Share(m.MerchantId), SharedStrings.Currencies.Share(m.Currency)), rules.Programs, rules.Catalogue, clock.GetUtcNow(), grants, cold);
        return await ReplyAsync("capture", account, result, grants);
    }

    public Task<PostingResult> Reverse(ReverseMessage m) => RetryIfStaleAsync(m, static (grain, m) => grain.ReverseOnce(m));

    private async Task<PostingResult> ReverseOnce(ReverseMessage m)
    {
        var account = await AccountAsync();
        var cold = await ColdRowsAsync(account.ColdReference(m.TransactionId, m.AuthorizationId));
        var result = account.Reverse(new ReverseCommand(m.TransactionId, m.AuthorizationId, m.CardId, m.AmountMinor, m.OccurredAt),
            rules.Programs, clock.GetUtcNow(), cold);
        return await ReplyAsync("reverse", account, result, []);
    }

    public Task<PostingResult> Refund(RefundMessage m) => RetryIfStaleAsync(m, static (grain, m) => grain.RefundOnce(m));

    private async Task<PostingResult> RefundOnce(RefundMessage m)
    {
        var account = await AccountAsync();
        var cold = await ColdRowsAsync(account.ColdReference(m.TransactionId, m.OriginalTransactionId));
        var result = account.Refund(new RefundCommand(m.TransactionId, m.OriginalTransactionId, m.CardId, m.AmountMinor, m.OccurredAt),
            rules.Programs, clock.GetUtcNow(), cold);
        return await ReplyAsync("refund", account, result, []);
    }

    public Task<PostingResult> Redeem(string transactionId, string partnerId, long amountMinor) =>
        RetryIfStaleAsync(new RedeemCommand(transactionId, partnerId, amountMinor), static (grain, command) => grain.RedeemOnce(command));

    private async Task<PostingResult> RedeemOnce(RedeemCommand command)
    {
        var account = await AccountAsync();
        var result = account.Redeem(command, rules.Programs, clock.GetUtcNow());
        return await ReplyAsync("redeem", account, result, []);
    }

    public async Task CreditReferral(string referredMemberId)
    {
        var account = await AccountAsync();
        var now = clock.GetUtcNow();
        var result = account.CreditReferral(referredMemberId, rules.Programs.At(now), now);
        await CommitAsync(account);
        ThrowIfRejected(result.Rejection);
    }

    // ------------------------------------------------------------------ reads and choices

    public async Task<BalanceView> GetBalance()
    {
        var account = await EnrolledAsync();
        // Lots past expiry are written off before they are shown (rule "expiry", on next touch).
        account.ExpireLots(clock.GetUtcNow());
        await CommitAsync(account);
        return BalanceOf(account);
    }

    public async Task<BalanceView> ChooseCategories(string month, string[] categories)
    {
        if (!MonthKey.TryParse(month, out var monthKey))
        {
            throw new LoyaltyRejectedException(RejectionCode.InvalidArgument, $"month: '{month}' is not a month in the form YYYY-MM");
        }
        var account = await AccountAsync();
        var result = account.ChooseCategories(new ChooseCategoriesCommand(monthKey, categories), rules.Programs, clock.GetUtcNow());
        await CommitAsync(account);
        ThrowIfRejected(result.Rejection);
        return BalanceOf(account, monthKey);
    }

    public async Task<StatementPage> GetStatement(int pageSize, long beforeSequence)
    {
        var account = await EnrolledAsync();
        var size = Math.Clamp(pageSize, 1, StatementPageSizeMax);
        var before = beforeSequence <= 0 ? account.State.Sequence + 1 : beforeSequence;
        var entries = await ReadLedgerAsync(static (ledger, member, before, size) => ledger.ReadMemberPageAsync(member, before, size), before, size + 1);
        var page = entries.Take(size).Select(Mapping.ToStatementLine).ToArray();
        var next = entries.Count > size ? page[^1].Sequence : 0;
        return new StatementPage(page, next);
    }

    /// <summary>
    /// What an authorization of this purchase would earn now, with its breakdown: the same decision Authorize makes
    /// (same housekeeping first, same plan, what a reservation would grant), reserving nothing.
    /// </summary>
    public async Task<Eligibility> Quote(string merchantId, int mcc, long amountMinor)
    {
        var account = await EnrolledAsync();
        var now = clock.GetUtcNow();
        // Expiries due now are what an authorization's touch would release first (rule "on next touch", as a balance read).
        account.Touch(rules.Programs.At(now), now);
        var returns = account.BudgetReturns.ToArray();
        await CommitAsync(account);
        budgets.Return(returns);
        var claims = account.PlanCampaigns(rules.Programs, rules.Catalogue, rules.Campaigns, amountMinor, mcc, merchantId, now);
        var grants = await budgets.WouldReserveAsync(claims);
        var accrual = account.Quote(rules.Programs, rules.Catalogue, amountMinor, mcc, merchantId, now, grants);
        var applied = grants.Where(g => g.GrantedMinor > 0).Select(g => g.Campaign.CampaignId).ToArray();
        return new Eligibility(MemberId, applied, accrual.TotalMinor, Mapping.ToItems(accrual.Lines));
    }

    public async Task<OfferListing> ListOffers() => await OffersAsync(await EnrolledAsync());

    public async Task<OfferListing> ActivateOffer(string campaignId)
    {
        var account = await EnrolledAsync();
        var campaign = rules.FindCampaign(campaignId)
            ?? throw new LoyaltyRejectedException(RejectionCode.NotFound, $"campaign_id: campaign '{campaignId}' does not exist");
        var result = account.ActivateCampaign(campaign, clock.GetUtcNow());
        await CommitAsync(account);
        ThrowIfRejected(result.Rejection);
        return await OffersAsync(account);
    }

    public async Task<BalanceView> Watch(IBalanceObserver observer)
    {
        var account = await EnrolledAsync();
        _watchers ??= [];
        if (!_watchers.ContainsKey(observer) && _watchers.Count >= WatchersMax)
        {
            throw new LoyaltyRejectedException(RejectionCode.FailedPrecondition, $"member_id: at most {WatchersMax} watchers per member");
        }
        _watchers[observer] = clock.GetUtcNow().AddSeconds(IMemberGrain.WatchLeaseSeconds);
        return BalanceOf(account);
    }

    public Task Unwatch(IBalanceObserver observer)
    {
        _watchers?.Remove(observer);
        return Task.CompletedTask;
    }

    // ------------------------------------------------------------------ plumbing

    /// <summary>Pushes the new balance to watchers after a commit; one-way, so a slow watcher cannot hold the member.</summary>
    private void NotifyWatchers(MemberAccount account)
    {
        if (_watchers is not { Count: > 0 }) return;
        var now = clock.GetUtcNow();
        var view = BalanceOf(account);
        foreach (var (observer, expiresAt) in _watchers.ToArray())
        {
            if (expiresAt < now)
            {
                _watchers.Remove(observer);
                continue;
            }
            try
            {
                observer.BalanceChanged(view).Ignore();
            }
            catch (Exception ex)
            {
                logger.LogDebug(ex, "Member {MemberId}: dropping a watcher", MemberId);
                _watchers.Remove(observer);
            }
        }
    }

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

    /// <summary>A snapshot only shortens the next activation's replay; failing to write one never fails a reply.</summary>
    private async Task TrySnapshotAsync(long minimumEntries)
    {
        try
        {
            await SnapshotIfBehindAsync(minimumEntries);
        }
        catch (Exception ex) when (Faults.IsUnavailable(ex))
        {
            logger.LogDebug(ex, "Member {MemberId}: snapshot not written (database unreachable); the sweep tries again", MemberId);
        }
        catch (Exception ex)
        {
            // E.g. another activation wrote it (a stale etag): the ledger is the truth, the reply stands.
            logger.LogWarning(ex, "Member {MemberId}: snapshot not written; the next activation replays more of the ledger", MemberId);
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

    /// <summary>The referrer's bonus: at least once (after commit, and again on every activation), idempotent at the referrer.</summary>
    private async Task NotifyReferrerAsync(MemberAccount account)
    {
        try
        {
            await GrainFactory.MemberGrain(account.State.ReferredBy).CreditReferral(MemberId);
        }
        catch (Exception ex)
        {
            logger.LogWarning(ex, "Member {MemberId}: crediting referrer {Referrer} failed; retried on next activation", MemberId, account.State.ReferredBy);
        }
    }

    /// <summary>The periodic sweep of an active member: expiries without waiting for a touch, then a snapshot if behind.</summary>
    private async Task SweepAsync()
    {
        if (_account is { State.Enrolled: true } account)
        {
            var now = clock.GetUtcNow();
            account.Touch(rules.Programs.At(now), now);
            var returns = account.BudgetReturns.ToArray();
            try
            {
                await CommitAsync(account);
            }
            catch (LoyaltyUnavailableException)
            {
                // The outage is logged once by the database layer; the next tick or message tries again.
                return;
            }
            budgets.Return(returns);
        }
        await TrySnapshotAsync(1);
        if (_account is null || _account.State.Sequence == _snapshotSequence)
        {
            _sweep?.Dispose();
            _sweep = null;
        }
    }

    private void SweepWhileBehind()
    {
        if (_sweep is null && _account is { } account && account.State.Sequence != _snapshotSequence)
        {
            // The first tick is spread over a second interval: members touched together (a batch, a seeding, a restart)
            // must not all serialize and write their snapshots in the same second.
            var firstTick = SweepInterval + TimeSpan.FromMilliseconds(Random.Shared.Next((int)SweepInterval.TotalMilliseconds));
            _sweep = this.RegisterGrainTimer(_ => SweepAsync(), new GrainTimerCreationOptions(firstTick, SweepInterval));
        }
    }

    private async Task<MemberAccount> AccountAsync()
    {
        if (_account is null) await LoadAsync(CancellationToken.None);
        return _account!;
    }

    private async Task<MemberAccount> EnrolledAsync()
    {
        var account = await AccountAsync();
        if (!account.State.Enrolled) throw new LoyaltyRejectedException(RejectionCode.NotFound, $"member_id: member '{MemberId}' is not enrolled");
        return account;
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        try
        {
            await LoadFromStoreAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is LedgerUnavailableException || Faults.IsUnavailable(ex))
        {
            throw new LoyaltyUnavailableException(outcomeUnknown: false, "the database is unreachable; nothing was recorded, retry with the same transaction_id");
        }
    }

    private async Task LoadFromStoreAsync(CancellationToken cancellationToken)
    {
        await snapshot.ReadStateAsync(cancellationToken);
        // A snapshot that cannot be read (damaged, or from a newer format) is rebuilt from the whole ledger instead.
        var state = MemberSnapshotFormat.TryRead(snapshot.State.StateJson, MemberId) ?? new MemberState { MemberId = MemberId };
        snapshot.State.StateJson = []; // the projection is in memory; keeping its JSON too would double a member's size
        var account = new MemberAccount(state);
        foreach (var entry in await ledger.ReadMemberAsync(MemberId, state.Sequence, cancellationToken)) account.Apply(entry);
        _snapshotSequence = snapshot.State.Sequence;
        _account = account;
    }

    private async Task SnapshotIfBehindAsync(long minimumEntries)
    {
        if (_account is not { } account || account.State.Sequence - _snapshotSequence < minimumEntries) return;
        snapshot.State.Sequence = account.State.Sequence;
        snapshot.State.StateJson = MemberSnapshotFormat.Write(account.State);
        try
        {
            await snapshot.WriteStateAsync();
        }
        finally
        {
            snapshot.State.StateJson = [];
        }
        _snapshotSequence = account.State.Sequence;
    }

    private BalanceView BalanceOf(MemberAccount account, MonthKey? month = null)
    {
        var now = clock.GetUtcNow();
        var program = rules.Programs.At(now);
        var key = month ?? program.MonthOf(now);
        var state = account.State;
        var monthState = state.Months.GetValueOrDefault(key.Value);
        var tier = account.TierFor(program, key);
        var capLeft = Math.Max(0, tier.CategoryCapFor(state.Premium) - (monthState?.CategoryCapUsedMinor ?? 0));
        var (expiringMinor, expiringAt) = account.NextExpiry();
        return new BalanceView(MemberId, state.AvailableMinor, state.PendingMinor, tier.TierId, monthState?.ChosenCategories ?? [],
            key.ToString(), capLeft, expiringMinor, expiringAt, state.Premium, state.Sequence);
    }

    private async Task<OfferListing> OffersAsync(MemberAccount account)
    {
        var now = clock.GetUtcNow();
        var program = rules.Programs.At(now);
        var tier = account.TierFor(program, program.MonthOf(now));
        var campaigns = rules.Campaigns.Where(c => c.EndsAt > now && c.QualifiesTier(program, tier.TierId)).ToArray();
        var usage = new OfferUsage[campaigns.Length];
        for (var i = 0; i < campaigns.Length; i++) usage[i] = await budgets.UsageAsync(campaigns[i]);
        return new OfferListing([.. campaigns.Select(DomainJson.Serialize)], [.. (account.State.ActivatedCampaigns ?? []).Order(StringComparer.Ordinal)], usage);
    }

    private sealed class LateDuplicateException(LedgerEntry original) : Exception("late duplicate")
    {
        public LedgerEntry Original { get; } = original;
    }

    /// <summary>This activation's view is behind the ledger: reload and decide again.</summary>
    private sealed class StaleMemberException() : Exception("stale member view");

    private static MemberInfo Info(MemberState state) => new(state.MemberId, state.Premium, state.ReferredBy, state.TierId, state.EnrolledAt);

    private static void ThrowIfRejected(Rejection? rejection)
    {
        if (rejection is not null) throw new LoyaltyRejectedException((RejectionCode)(int)rejection.Kind, rejection.Message);
    }
}
