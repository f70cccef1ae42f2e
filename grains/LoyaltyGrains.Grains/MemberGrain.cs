using System.Text.Json;
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
/// Not reentrant: one message at a time, so a decision always sees the committed state. If a commit fails the
/// in-memory state (which already applied the entries) is dropped and rebuilt from snapshot + ledger.
/// </summary>
public sealed class MemberGrain(
    [PersistentState("member", StorageNames.Loyalty)] IPersistentState<MemberSnapshot> snapshot,
    ILedger ledger,
    IProgramProvider programs,
    TimeProvider clock,
    ILogger<MemberGrain> logger) : Grain, IMemberGrain
{
    /// <summary>Snapshot after this many entries, or on the timer/deactivation, so activation replays few rows.</summary>
    public const int SnapshotEveryEntries = 200;
    public static readonly TimeSpan SnapshotInterval = TimeSpan.FromMinutes(1);
    public const int StatementPageSizeMax = 200;

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.General);

    private MemberAccount? _account;
    private long _snapshotSequence;

    private string MemberId => GrainKeys.IdOf(this.GetPrimaryKeyString());

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        await LoadAsync(cancellationToken);
        this.RegisterGrainTimer(_ => SnapshotIfBehindAsync(1), new GrainTimerCreationOptions(SnapshotInterval, SnapshotInterval));
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

    public async Task<MemberInfo> Enroll(bool premium, string referredBy, string tier)
    {
        var account = await AccountAsync();
        var result = account.Enroll(new EnrollCommand(MemberId, premium, referredBy, tier), programs.Programs.Current, clock.GetUtcNow());
        await CommitAsync(account);
        ThrowIfRejected(result.Rejection);
        return Info(account.State);
    }

    public async Task<MemberInfo> GetMember()
    {
        var account = await EnrolledAsync();
        return Info(account.State);
    }

    public Task<bool> IsEnrolled() => AccountAsync().ContinueWith(t => t.Result.State.Enrolled, TaskScheduler.Current);

    public async Task<PostingResult> Authorize(AuthorizeMessage m)
    {
        var account = await AccountAsync();
        var result = account.Authorize(new AuthorizeCommand(m.TransactionId, m.CardId, m.AmountMinor, m.Currency, m.Mcc, m.MerchantId, m.OccurredAt),
            programs.Programs, programs.Catalogue, clock.GetUtcNow());
        return await ReplyAsync(account, result);
    }

    public async Task<PostingResult> Capture(CaptureMessage m)
    {
        var account = await AccountAsync();
        var result = account.Capture(new CaptureCommand(m.TransactionId, m.AuthorizationId, m.CardId, m.AmountMinor, m.OccurredAt, m.Mcc, m.MerchantId, m.Currency),
            programs.Programs, programs.Catalogue, clock.GetUtcNow());
        return await ReplyAsync(account, result);
    }

    public async Task<PostingResult> Reverse(ReverseMessage m)
    {
        var account = await AccountAsync();
        var result = account.Reverse(new ReverseCommand(m.TransactionId, m.AuthorizationId, m.CardId, m.AmountMinor, m.OccurredAt),
            programs.Programs, clock.GetUtcNow());
        return await ReplyAsync(account, result);
    }

    public async Task<PostingResult> Refund(RefundMessage m)
    {
        var account = await AccountAsync();
        var result = account.Refund(new RefundCommand(m.TransactionId, m.OriginalTransactionId, m.CardId, m.AmountMinor, m.OccurredAt),
            programs.Programs, clock.GetUtcNow());
        return await ReplyAsync(account, result);
    }

    public async Task<BalanceView> GetBalance()
    {
        var account = await EnrolledAsync();
        return BalanceOf(account);
    }

    public async Task<BalanceView> ChooseCategories(string month, string[] categories)
    {
        if (!MonthKey.TryParse(month, out var monthKey))
        {
            throw new LoyaltyRejectedException(RejectionCode.InvalidArgument, $"month: '{month}' is not a month in the form YYYY-MM");
        }
        var account = await AccountAsync();
        var result = account.ChooseCategories(new ChooseCategoriesCommand(monthKey, categories), programs.Programs, clock.GetUtcNow());
        await CommitAsync(account);
        ThrowIfRejected(result.Rejection);
        return BalanceOf(account, monthKey);
    }

    public async Task<StatementPage> GetStatement(int pageSize, long beforeSequence)
    {
        var account = await EnrolledAsync();
        var size = Math.Clamp(pageSize, 1, StatementPageSizeMax);
        var before = beforeSequence <= 0 ? account.State.Sequence + 1 : beforeSequence;
        var entries = await ledger.ReadMemberPageAsync(MemberId, before, size + 1);
        var page = entries.Take(size).Select(Mapping.ToStatementLine).ToArray();
        var next = entries.Count > size ? page[^1].Sequence : 0;
        return new StatementPage(page, next);
    }

    // ------------------------------------------------------------------ plumbing

    private async Task<PostingResult> ReplyAsync(MemberAccount account, Result<PostingOutcome> result)
    {
        await CommitAsync(account);
        ThrowIfRejected(result.Rejection);
        return Mapping.ToResult(result.Value!);
    }

    /// <summary>Commits what the last decision recorded. The reply waits for this: an ack means durable.</summary>
    private async Task CommitAsync(MemberAccount account)
    {
        if (account.Uncommitted.Count == 0) return;
        var entries = account.Uncommitted.ToArray();
        account.ClearUncommitted();
        try
        {
            await ledger.AppendAsync(entries);
        }
        catch (LedgerConflictException conflict)
        {
            // The in-memory state applied entries the ledger refused: rebuild from the truth before the next message.
            _account = null;
            if (conflict.Kind == LedgerConflictKind.MessageId)
            {
                throw new LoyaltyRejectedException(RejectionCode.AlreadyExists,
                    $"transaction_id: '{conflict.MessageId}' was already used for a different message");
            }
            logger.LogWarning("Member {MemberId}: another writer appended first (sequence conflict); reloading", MemberId);
            throw new LoyaltyRejectedException(RejectionCode.Aborted, $"member '{MemberId}' changed concurrently; retry the message");
        }
        catch
        {
            _account = null;
            throw;
        }
        if (account.State.Sequence - _snapshotSequence >= SnapshotEveryEntries) await SnapshotIfBehindAsync(SnapshotEveryEntries);
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
        await snapshot.ReadStateAsync(cancellationToken);
        var state = snapshot.State.StateJson.Length == 0
            ? new MemberState { MemberId = MemberId }
            : JsonSerializer.Deserialize<MemberState>(snapshot.State.StateJson, JsonOptions) ?? new MemberState { MemberId = MemberId };
        var account = new MemberAccount(state);
        foreach (var entry in await ledger.ReadMemberAsync(MemberId, state.Sequence, cancellationToken)) account.Apply(entry);
        _snapshotSequence = snapshot.State.Sequence;
        _account = account;
    }

    private async Task SnapshotIfBehindAsync(long minimumEntries)
    {
        if (_account is not { } account || account.State.Sequence - _snapshotSequence < minimumEntries) return;
        snapshot.State.Sequence = account.State.Sequence;
        snapshot.State.StateJson = JsonSerializer.SerializeToUtf8Bytes(account.State, JsonOptions);
        await snapshot.WriteStateAsync();
        _snapshotSequence = account.State.Sequence;
    }

    private BalanceView BalanceOf(MemberAccount account, MonthKey? month = null)
    {
        var program = programs.Programs.Current;
        var key = month ?? program.MonthOf(clock.GetUtcNow());
        var state = account.State;
        var monthState = state.Months.GetValueOrDefault(key.Value);
        var tier = program.TierOrEntry(state.TierId);
        var capLeft = Math.Max(0, tier.CategoryCapFor(state.Premium) - (monthState?.CategoryCapUsedMinor ?? 0));
        return new BalanceView(MemberId, state.AvailableMinor, state.PendingMinor, tier.TierId, monthState?.ChosenCategories ?? [],
            key.ToString(), capLeft, 0, null, state.Premium, state.Sequence);
    }

    private static MemberInfo Info(MemberState state) => new(state.MemberId, state.Premium, state.ReferredBy, state.TierId, state.EnrolledAt);

    private static void ThrowIfRejected(Rejection? rejection)
    {
        if (rejection is not null) throw new LoyaltyRejectedException((RejectionCode)(int)rejection.Kind, rejection.Message);
    }
}
