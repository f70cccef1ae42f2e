using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains;
using LoyaltyGrains.Grains.Ledger;
using LoyaltyGrains.Grains.Members;
using Microsoft.Extensions.Logging.Abstractions;

namespace LoyaltyGrains.Tests.Grains;

/// <summary>
/// The member's queue, batch and write engine without a cluster: a <see cref="MemberJournal"/> over the in-memory
/// ledger (held or failed per append), a fake clock and a counted campaign budget, driven on one exclusive scheduler as
/// a grain activation drives it.
/// </summary>
public sealed class MemberJournalTests
{
    private static readonly DateTimeOffset At = FakeClock.DefaultStart;
    private const string Card = "card-1";

    /// <summary>
    /// Pays 10 % of a purchase of at least 100.00 (the base rate is 1 %) from a budget: a reservation kept or given back
    /// shows in <see cref="CountedBudget.LeftMinor"/>.
    /// </summary>
    private static readonly CampaignRule Bonus = new()
    {
        CampaignId = "bonus", PartnerId = "partner-1", RateBps = 1_000, BudgetMinor = 1_000_000, MinAmountMinor = 10_000,
        StartsAt = At.AddDays(-1), EndsAt = At.AddDays(60),
    };

    private readonly GatedLedger _ledger = new();
    private readonly CountedBudget _budget = new(Bonus.BudgetMinor);
    private readonly FakeClock _clock = new();
    private readonly TaskScheduler _scheduler = new ConcurrentExclusiveSchedulerPair().ExclusiveScheduler;
    private readonly Host _host;
    private readonly MemberJournal _journal;
    private readonly string _member = "m-" + Guid.NewGuid().ToString("N")[..12];

    public MemberJournalTests()
    {
        _host = new Host(_ledger, _member);
        _journal = new MemberJournal(_member, _ledger, _budget, new FixedRules([Bonus]), _clock, NullLogger.Instance, _host);
    }

    /// <summary>
    /// Runs a call on the journal's scheduler, as every call of a grain activation runs on its own; completes once the
    /// call is queued, with the task of its reply.
    /// </summary>
    private Task<Task<T>> Queue<T>(Func<Task<T>> call) => Task.Factory.StartNew(call, CancellationToken.None, TaskCreationOptions.None, _scheduler);

    private Task<T> OnMember<T>(Func<Task<T>> call) => Queue(call).Unwrap();

    private Task<Task<PostingResult>> QueueAuthorize(string id, long amount, CardVouch vouch = CardVouch.Member, long? deadline = null) =>
        Queue(() => _journal.Post(new PostingItem(Authorize: new AuthorizeMessage(id, Card, amount, "RUB", 5411, "shop", At)), vouch, deadline));

    private Task<PostingResult> Authorize(string id, long amount, CardVouch vouch = CardVouch.Member, long? deadline = null) =>
        QueueAuthorize(id, amount, vouch, deadline).Unwrap();

    private Task<Task<PostingResult>> QueueCapture(string id, string authorization, long amount) =>
        Queue(() => _journal.Post(new PostingItem(Capture: new CaptureMessage(id, authorization, Card, amount, At, -1, "", "")), CardVouch.Member, null));

    /// <summary>An enrolled member whose card its card grain has vouched for (too small an amount to earn anything).</summary>
    private async Task EnrolledWithCardAsync()
    {
        await OnMember(() => _journal.RunExclusive(async () =>
        {
            var account = await _journal.AccountAsync();
            Assert.True(account.Enroll(new EnrollCommand(_member, false, "", ""), ProgramConfig.Default, _clock.GetUtcNow()).IsOk);
            return await _journal.WriteAsync(account);
        }, null));
        await Authorize("intro", 100, CardVouch.CardGrainActive);
    }

    private int Appends => _ledger.AppendsOf(_member).Count;

    [Fact]
    public async Task Postings_that_queue_behind_a_write_are_decided_in_order_and_written_in_one_append_before_any_reply()
    {
        await EnrolledWithCardAsync();
        var appendsBefore = Appends;
        var hold = _ledger.HoldNext(_member);
        var first = await QueueAuthorize("a1", 100_000);
        await hold.Entered;
        // Queued while the first append waits: the capture names the authorization decided just before it in the batch.
        var rest = new[] { await QueueAuthorize("a2", 200_000), await QueueCapture("c2", "a2", 200_000), await QueueAuthorize("a3", 300_000) };
        Assert.False(first.IsCompleted); // no reply before its commit
        Assert.DoesNotContain(rest, r => r.IsCompleted);
        hold.Release();
        var results = await Task.WhenAll([first, .. rest]);

        var appends = _ledger.AppendsOf(_member).Skip(appendsBefore).ToList();
        Assert.Equal(2, appends.Count);
        Assert.Equal(["a2", "c2", "a3"], appends[1].Select(e => e.MessageId));
        // Base 1 % plus the campaign's 10 % on each; the capture moves a2's 22 000 from pending to available.
        Assert.Equal([11_000, 33_000, 11_000, 44_000], results.Select(r => r.PendingAfterMinor));
        Assert.Equal([0, 0, 22_000, 22_000], results.Select(r => r.AvailableAfterMinor));
        Assert.Equal(Bonus.BudgetMinor - 60_000, _budget.LeftMinor);
    }

    [Fact]
    public async Task A_duplicate_inside_a_batch_gets_the_first_ones_figures_and_a_conflicting_retry_is_refused()
    {
        await EnrolledWithCardAsync();
        var hold = _ledger.HoldNext(_member);
        var blocker = await QueueAuthorize("b0", 10_000);
        await hold.Entered;
        var original = await QueueAuthorize("d1", 100_000);
        var retry = await QueueAuthorize("d1", 100_000);
        var conflicting = await QueueAuthorize("d1", 100_001);
        hold.Release();
        await blocker;

        var first = await original;
        var again = await retry;
        Assert.False(first.Duplicate);
        Assert.True(again.Duplicate);
        Assert.Equal(first.AccruedMinor, again.AccruedMinor);
        Assert.Equal(first.PendingAfterMinor, again.PendingAfterMinor);
        var refused = await Assert.ThrowsAsync<LoyaltyRejectedException>(() => conflicting);
        Assert.Equal(RejectionCode.AlreadyExists, refused.Code);
        Assert.Single(_ledger.AppendsOf(_member).SelectMany(a => a), e => e.MessageId == "d1");
        Assert.Single(_ledger.AppendsOf(_member)[^1], e => e.MessageId == "d1"); // decided in one batch
        // The blocker's and the original's campaign bonus only: a retry of a processed id claims nothing.
        Assert.Equal(Bonus.BudgetMinor - 1_000 - 10_000, _budget.LeftMinor);
    }

    [Fact]
    public async Task An_unreachable_ledger_fails_the_whole_batch_with_nothing_recorded_gives_the_budget_back_and_the_member_recovers()
    {
        await EnrolledWithCardAsync();
        var budgetBefore = _budget.LeftMinor;
        var loadsBefore = _host.Loads;
        _ledger.FailNext(_member, committed: false);
        var failed = await Assert.ThrowsAsync<LoyaltyUnavailableException>(() => Authorize("u1", 100_000));
        Assert.False(failed.OutcomeUnknown);
        Assert.Equal(budgetBefore, _budget.LeftMinor);
        Assert.Null(await _ledger.FindAsync("u1"));

        // The state that applied u1 was dropped: the next decision rebuilds from the ledger and u1 is new again.
        var retried = await Authorize("u1", 100_000);
        Assert.False(retried.Duplicate);
        Assert.Equal(11_000, retried.PendingAfterMinor);
        Assert.Equal(budgetBefore - 10_000, _budget.LeftMinor);
        Assert.Equal(loadsBefore + 1, _host.Loads);
    }

    [Fact]
    public async Task An_unconfirmed_write_answers_outcome_unknown_and_keeps_the_reserved_budget_spent()
    {
        await EnrolledWithCardAsync();
        var budgetBefore = _budget.LeftMinor;
        _ledger.FailNext(_member, committed: true);
        var unknown = await Assert.ThrowsAsync<LoyaltyUnavailableException>(() => Authorize("k1", 100_000));
        Assert.True(unknown.OutcomeUnknown);
        Assert.Equal(budgetBefore - 10_000, _budget.LeftMinor);

        // It did commit: the retry is a duplicate with the original figures, and reserves nothing more.
        var retry = await Authorize("k1", 100_000);
        Assert.True(retry.Duplicate);
        Assert.Equal(11_000, retry.AccruedMinor);
        Assert.Equal(budgetBefore - 10_000, _budget.LeftMinor);
    }

    [Fact]
    public async Task Another_writer_overtaking_the_members_view_is_decided_again_on_the_rebuilt_state()
    {
        await EnrolledWithCardAsync();
        await Authorize("o1", 100_000);
        // Another activation of the same member appends the next sequence first.
        var other = new MemberAccount(_member);
        foreach (var entry in await _ledger.ReadMemberAsync(_member, 0)) other.Apply(entry);
        Assert.True(other.Authorize(new AuthorizeCommand("elsewhere", Card, 100_000, "RUB", 5411, "shop", At), ProgramHistory.Of(ProgramConfig.Default),
            MccCatalogue.Default, At).IsOk);
        await _ledger.AppendAsync([.. other.Uncommitted]);

        var result = await Authorize("o2", 100_000);
        Assert.Equal(11_000 + 1_000 + 11_000, result.PendingAfterMinor); // o1, elsewhere (no campaign reserved there), o2
        Assert.Equal(Bonus.BudgetMinor - 20_000, _budget.LeftMinor); // the first attempt's reservation went back
        Assert.Equal(["o1", "elsewhere", "o2"], (await _ledger.ReadMemberAsync(_member, 0)).Select(e => e.MessageId).Where(id => id is "o1" or "elsewhere" or "o2"));
    }

    [Fact]
    public async Task A_message_id_another_member_used_is_refused_and_the_rest_of_the_batch_is_written()
    {
        await EnrolledWithCardAsync();
        var stranger = new MemberAccount("stranger");
        Assert.True(stranger.Enroll(new EnrollCommand("stranger", false, "", ""), ProgramConfig.Default, At).IsOk);
        Assert.True(stranger.Authorize(new AuthorizeCommand("taken", "card-x", 100_000, "RUB", 5411, "shop", At), ProgramHistory.Of(ProgramConfig.Default),
            MccCatalogue.Default, At).IsOk);
        await _ledger.AppendAsync([.. stranger.Uncommitted]);

        var hold = _ledger.HoldNext(_member);
        var blocker = await QueueAuthorize("t0", 10_000);
        await hold.Entered;
        var taken = await QueueAuthorize("taken", 100_000);
        var after = await QueueAuthorize("t2", 100_000);
        hold.Release();
        await blocker;

        var refused = await Assert.ThrowsAsync<LoyaltyRejectedException>(() => taken);
        Assert.Equal(RejectionCode.AlreadyExists, refused.Code);
        var written = await after;
        Assert.False(written.Duplicate);
        Assert.Equal("stranger", (await _ledger.FindAsync("taken"))!.MemberId);
        Assert.Equal(_member, (await _ledger.FindAsync("t2"))!.MemberId);
    }

    [Fact]
    public async Task Nobody_vouching_for_a_card_sends_it_through_the_card_grain_and_a_block_is_refused_after_duplicates()
    {
        await OnMember(() => _journal.RunExclusive(async () =>
        {
            var account = await _journal.AccountAsync();
            account.Enroll(new EnrollCommand(_member, false, "", ""), ProgramConfig.Default, At);
            return await _journal.WriteAsync(account);
        }, null));
        await Assert.ThrowsAsync<CardRouteRequiredException>(() => Authorize("n1", 100_000));
        Assert.Null(await _ledger.FindAsync("n1"));

        var vouched = await Authorize("n1", 100_000, CardVouch.CardGrainActive);
        Assert.True((await Authorize("n1", 100_000)).Duplicate); // now the member vouches from what it was told
        await OnMember(() => _journal.RunExclusive(() =>
        {
            _journal.Cards.Learn(Card, blocked: true);
            return Task.FromResult(true);
        }, null));
        var blocked = await Assert.ThrowsAsync<LoyaltyRejectedException>(() => Authorize("n2", 100_000));
        Assert.Equal(RejectionCode.FailedPrecondition, blocked.Code);
        var retry = await Authorize("n1", 100_000);
        Assert.True(retry.Duplicate);
        Assert.Equal(vouched.AccruedMinor, retry.AccruedMinor);
    }

    [Fact]
    public async Task A_posting_whose_caller_gave_up_in_the_queue_is_not_decided()
    {
        await EnrolledWithCardAsync();
        var passed = DateTime.UtcNow.AddSeconds(-1).Ticks;
        var late = await Assert.ThrowsAsync<LoyaltyUnavailableException>(() => Authorize("late", 100_000, deadline: passed));
        Assert.False(late.OutcomeUnknown);
        Assert.Null(await _ledger.FindAsync("late"));
        Assert.Equal(Bonus.BudgetMinor, _budget.LeftMinor); // nothing reserved for it
    }

    [Fact]
    public async Task The_queue_is_bounded_and_a_call_beyond_it_records_nothing()
    {
        await EnrolledWithCardAsync();
        var hold = _ledger.HoldNext(_member);
        var blocker = await QueueAuthorize("q0", 10_000);
        await hold.Entered;
        var queued = new List<Task<PostingResult>>();
        for (var i = 0; i < MemberJournal.QueuedCallsMax; i++) queued.Add(await QueueAuthorize($"q{i + 1}", 10_000));
        var beyond = await Assert.ThrowsAsync<LoyaltyUnavailableException>(() => Authorize("beyond", 10_000));
        Assert.False(beyond.OutcomeUnknown);
        hold.Release();
        await blocker;
        await Task.WhenAll(queued);
        Assert.Null(await _ledger.FindAsync("beyond"));
        // Written in batches of at most BatchPostingsMax postings each.
        Assert.True(_ledger.AppendsOf(_member).Count >= 1 + MemberJournal.QueuedCallsMax / MemberJournal.BatchPostingsMax);
    }

    [Fact]
    public void Ledger_outcomes_translate_to_contract_faults_in_one_place()
    {
        var unreachable = Assert.IsType<LoyaltyUnavailableException>(ContractFaults.OfWrite(new LedgerUnavailableException(notCommitted: true, "x"), "m"));
        Assert.False(unreachable.OutcomeUnknown);
        var unknown = Assert.IsType<LoyaltyUnavailableException>(ContractFaults.OfWrite(new LedgerUnavailableException(notCommitted: false, "x"), "m"));
        Assert.True(unknown.OutcomeUnknown);
        var used = Assert.IsType<LoyaltyRejectedException>(ContractFaults.OfWrite(new LedgerConflictException(LedgerConflictKind.MessageId, "t1", "x"), "m"));
        Assert.Equal(RejectionCode.AlreadyExists, used.Code);
        var stale = Assert.IsType<LoyaltyRejectedException>(ContractFaults.OfWrite(new LedgerConflictException(LedgerConflictKind.Sequence, "", "x"), "m"));
        Assert.Equal(RejectionCode.Aborted, stale.Code);
        var other = new InvalidOperationException("a bug");
        Assert.Same(other, ContractFaults.OfWrite(other, "m"));
        Assert.True(ContractFaults.IsUnreachable(new TimeoutException()));
        Assert.False(ContractFaults.IsUnreachable(other));
    }

    /// <summary>The grain's side: loads from the ledger alone (no snapshot), counts loads.</summary>
    private sealed class Host(ILedger ledger, string memberId) : IMemberJournalHost
    {
        public int Loads;

        public async Task<MemberAccount> LoadAsync(CancellationToken cancellationToken)
        {
            Loads++;
            var account = new MemberAccount(memberId);
            foreach (var entry in await ledger.ReadMemberAsync(memberId, 0, cancellationToken)) account.Apply(entry);
            return account;
        }

        public void EnteringLoop()
        {
        }

        public void Written(MemberAccount account)
        {
        }

        public void SnapshotMayBeDue()
        {
        }

        public Task ReferralWrittenAsync(MemberAccount account) => Task.CompletedTask;
    }

    private sealed class FixedRules(IReadOnlyList<CampaignRule> campaigns) : IRulesProvider
    {
        public ProgramHistory Programs { get; } = ProgramHistory.Of(ProgramConfig.Default);
        public MccCatalogue Catalogue => MccCatalogue.Default;
        public IReadOnlyList<CampaignRule> Campaigns => campaigns;
        public CampaignRule? FindCampaign(string campaignId) => campaigns.FirstOrDefault(c => c.CampaignId == campaignId);
    }

    /// <summary>One budget pool for every campaign: what is reserved, released and returned is counted exactly.</summary>
    private sealed class CountedBudget(long budgetMinor) : ICampaignBudget
    {
        private readonly long _totalMinor = budgetMinor;

        public long LeftMinor { get; private set; } = budgetMinor;

        public ValueTask<CampaignGrant[]> ReserveAsync(IReadOnlyList<CampaignClaim> claims)
        {
            var grants = new CampaignGrant[claims.Count];
            for (var i = 0; i < claims.Count; i++)
            {
                var amount = Math.Min(claims[i].DesiredMinor, LeftMinor);
                LeftMinor -= amount;
                grants[i] = new CampaignGrant(claims[i].Campaign, amount);
            }
            return ValueTask.FromResult(grants);
        }

        public ValueTask<CampaignGrant[]> WouldReserveAsync(IReadOnlyList<CampaignClaim> claims) =>
            ValueTask.FromResult(claims.Select(c => new CampaignGrant(c.Campaign, Math.Min(c.DesiredMinor, LeftMinor))).ToArray());

        public void Release(IReadOnlyList<CampaignGrant> grants)
        {
            foreach (var grant in grants) LeftMinor += grant.GrantedMinor;
        }

        public void ReturnBudget(IReadOnlyList<BudgetReturn> returns)
        {
            foreach (var returned in returns) LeftMinor += returned.AmountMinor;
        }

        public ValueTask<OfferUsage> UsageAsync(CampaignRule campaign) => ValueTask.FromResult(new OfferUsage(_totalMinor - LeftMinor, 0));
    }
}
