using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains;
using LoyaltyGrains.Grains.Ledger;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using Xunit.Abstractions;

namespace LoyaltyGrains.Tests.Grains;

/// <summary>
/// A member deciding several queued postings in memory and committing them in one append: order kept, duplicates and
/// conflicting retries inside one batch answered as unary calls would be, a failed append failing all of them honestly.
/// </summary>
[Collection(BatchClusterCollection.Name)]
public sealed class MemberBatchTests(BatchClusterFixture fixture, ITestOutputHelper output)
{
    private static readonly DateTimeOffset At = FakeClock.DefaultStart;
    private IGrainFactory Grains => fixture.Grains;
    private static GatedLedger Ledger => BatchClusterFixture.Ledger;

    private async Task<(string Member, string Card)> NewMemberAsync(string name)
    {
        var member = $"{name}-{Guid.NewGuid():N}"[..24];
        await Grains.MemberGrain(member).Enroll(false, "", "");
        await Grains.CardGrain("card-" + member).Issue(member);
        return (member, "card-" + member);
    }

    private static PostingItem Auth(string id, string card, long amount) => new(Authorize: new AuthorizeMessage(id, card, amount, "RUB", 5411, "shop", At));

    private static PostingItem Capture(string id, string authorization, string card, long amount) =>
        new(Capture: new CaptureMessage(id, authorization, card, amount, At, -1, "", ""));

    private static PostingItem Reverse(string id, string authorization, string card) => new(Reverse: new ReverseMessage(id, authorization, card, 0, At));

    /// <summary>
    /// The grain is told about the card once, through the card grain, as the gateway's first message would (too small
    /// an amount to earn: the balances below are the batch's alone).
    /// </summary>
    private async Task IntroduceCardAsync(string member, string card) =>
        await Grains.CardGrain(card).Authorize(new AuthorizeMessage("intro-" + member, card, 100, "RUB", 5411, "shop", At));

    [Fact]
    public async Task A_bulk_call_is_decided_in_order_and_committed_in_one_append()
    {
        var (member, card) = await NewMemberAsync("order");
        await IntroduceCardAsync(member, card);
        var appendsBefore = Ledger.AppendsOf(member).Count;
        // The capture and the reversal name authorizations of the same call: they only succeed if decided after them.
        var results = await Grains.MemberGrain(member).Post([
            Auth("a1-" + member, card, 100_000), Auth("a2-" + member, card, 200_000), Capture("c1-" + member, "a1-" + member, card, 100_000),
            Reverse("v2-" + member, "a2-" + member, card), Auth("a3-" + member, card, 300_000),
        ]);
        Assert.All(results, r => Assert.Null(r.Error));
        Assert.Equal([1_000, 3_000, 2_000, 0, 3_000], results.Select(r => r.Result!.PendingAfterMinor));
        Assert.Equal([0, 0, 1_000, 1_000, 1_000], results.Select(r => r.Result!.AvailableAfterMinor));

        var appends = Ledger.AppendsOf(member).Skip(appendsBefore).ToList();
        Assert.Single(appends);
        Assert.Equal(["a1-", "a2-", "c1-", "v2-", "a3-"], appends[0].Select(e => e.MessageId[..3]));
        Assert.Equal(appends[0].Select(e => e.Sequence).Order(), appends[0].Select(e => e.Sequence));
    }

    [Fact]
    public async Task A_duplicate_inside_one_batch_is_answered_with_the_first_outcome_and_recorded_once()
    {
        var (member, card) = await NewMemberAsync("dup");
        await IntroduceCardAsync(member, card);
        var results = await Grains.MemberGrain(member).Post([Auth("a1-" + member, card, 100_000), Auth("a1-" + member, card, 100_000)]);
        var (first, again) = (results[0].Result!, results[1].Result!);
        Assert.False(first.Duplicate);
        Assert.True(again.Duplicate);
        Assert.Equal((first.AccruedMinor, first.PendingAfterMinor), (again.AccruedMinor, again.PendingAfterMinor));
        Assert.Single(Ledger.AppendsOf(member).SelectMany(a => a), e => e.MessageId == "a1-" + member);
        Assert.Equal(1_000, (await Grains.MemberGrain(member).GetBalance()).PendingMinor);
    }

    [Fact]
    public async Task A_conflicting_retry_inside_one_batch_is_already_exists_and_the_others_commit()
    {
        var (member, card) = await NewMemberAsync("conf");
        await IntroduceCardAsync(member, card);
        var results = await Grains.MemberGrain(member).Post([
            Auth("a1-" + member, card, 100_000), Auth("a1-" + member, card, 100_001), Auth("a2-" + member, card, 100_000),
        ]);
        Assert.Equal(1_000, results[0].Result!.AccruedMinor);
        Assert.Equal(RejectionCode.AlreadyExists, Assert.IsType<LoyaltyRejectedException>(results[1].Error).Code);
        Assert.Equal(2_000, results[2].Result!.PendingAfterMinor);
        Assert.Equal(2_000, (await Grains.MemberGrain(member).GetBalance()).PendingMinor);
    }

    [Fact]
    public async Task An_id_another_member_used_fails_only_its_posting_and_the_rest_of_the_batch_is_decided_again()
    {
        var (memberA, cardA) = await NewMemberAsync("ida");
        var (memberB, cardB) = await NewMemberAsync("idb");
        await IntroduceCardAsync(memberA, cardA);
        await IntroduceCardAsync(memberB, cardB);
        await Grains.MemberGrain(memberA).Post([Auth("shared-" + memberA, cardA, 100_000)]);
        var results = await Grains.MemberGrain(memberB).Post([
            Auth("b1-" + memberB, cardB, 100_000), Auth("shared-" + memberA, cardB, 100_000), Auth("b2-" + memberB, cardB, 100_000),
        ]);
        Assert.Equal(RejectionCode.AlreadyExists, Assert.IsType<LoyaltyRejectedException>(results[1].Error).Code);
        Assert.Equal([1_000, 2_000], new[] { results[0], results[2] }.Select(r => r.Result!.PendingAfterMinor));
        Assert.Equal(2_000, (await Grains.MemberGrain(memberB).GetBalance()).PendingMinor);
    }

    [Fact]
    public async Task A_failed_append_fails_every_posting_of_the_batch_and_records_nothing()
    {
        var (member, card) = await NewMemberAsync("fail");
        await IntroduceCardAsync(member, card);
        Ledger.FailNext(member, committed: false);
        var results = await Grains.MemberGrain(member).Post([Auth("a1-" + member, card, 100_000), Auth("a2-" + member, card, 100_000)]);
        Assert.All(results, r => Assert.False(Assert.IsType<LoyaltyUnavailableException>(r.Error).OutcomeUnknown));
        Assert.Equal(0, (await Grains.MemberGrain(member).GetBalance()).PendingMinor);

        // The processor's retries decide again from the ledger's truth: accepted, not duplicates.
        var retried = await Grains.MemberGrain(member).Post([Auth("a1-" + member, card, 100_000), Auth("a2-" + member, card, 100_000)]);
        Assert.All(retried, r => Assert.False(r.Result!.Duplicate));
        Assert.Equal(2_000, (await Grains.MemberGrain(member).GetBalance()).PendingMinor);
    }

    [Fact]
    public async Task An_unconfirmed_append_is_an_unknown_outcome_for_every_posting_and_retries_find_what_committed()
    {
        var (member, card) = await NewMemberAsync("unk");
        await IntroduceCardAsync(member, card);
        Ledger.FailNext(member, committed: true);
        var results = await Grains.MemberGrain(member).Post([Auth("a1-" + member, card, 100_000), Auth("a2-" + member, card, 100_000)]);
        Assert.All(results, r => Assert.True(Assert.IsType<LoyaltyUnavailableException>(r.Error).OutcomeUnknown));

        // It did commit: the member rebuilt from the ledger answers the retries DUPLICATE with the original figures.
        var retried = await Grains.MemberGrain(member).Post([Auth("a1-" + member, card, 100_000), Auth("a2-" + member, card, 100_000)]);
        Assert.All(retried, r => Assert.True(r.Result!.Duplicate));
        Assert.Equal([1_000, 2_000], retried.Select(r => r.Result!.PendingAfterMinor));
    }

    [Fact]
    public async Task Unary_postings_queued_behind_a_commit_are_committed_together_and_each_applied_once()
    {
        var (member, card) = await NewMemberAsync("unary");
        await IntroduceCardAsync(member, card);
        var appendsBefore = Ledger.AppendsOf(member).Count;
        var gate = Ledger.HoldNext(member);
        var first = Grains.MemberGrain(member).AuthorizeOnKnownCard(Auth("u0-" + member, card, 100_000).Authorize!);
        await gate.Entered;
        var rest = Enumerable.Range(1, 20).Select(i => Grains.MemberGrain(member).AuthorizeOnKnownCard(Auth($"u{i}-{member}", card, 100_000).Authorize!)).ToArray();
        await Task.Delay(200); // let them reach the member's queue while the first commit is held (only the batch sizes printed depend on it)
        gate.Release();
        var replies = await Task.WhenAll(rest.Prepend(first));
        Assert.All(replies, r => Assert.False(r.Duplicate));
        Assert.Equal(Enumerable.Range(1, 21).Select(n => n * 1_000L).Order(), replies.Select(r => r.PendingAfterMinor).Order());
        Assert.Equal(21_000, (await Grains.MemberGrain(member).GetBalance()).PendingMinor);
        var appends = Ledger.AppendsOf(member).Skip(appendsBefore).ToList();
        Assert.Equal(21, appends.Sum(a => a.Count));
        output.WriteLine($"21 unary authorizations, the first held at the ledger: {appends.Count} appends ({string.Join(", ", appends.Select(a => a.Count))} entries)");
    }

    [Fact]
    public async Task A_block_is_acknowledged_only_after_the_authorizations_decided_before_it_are_committed()
    {
        var (member, card) = await NewMemberAsync("blk");
        await IntroduceCardAsync(member, card);
        var gate = Ledger.HoldNext(member);
        var before = Grains.MemberGrain(member).AuthorizeOnKnownCard(Auth("b0-" + member, card, 100_000).Authorize!);
        await gate.Entered;
        var block = Grains.CardGrain(card).Block();
        await Task.Delay(200);
        Assert.False(block.IsCompleted);
        gate.Release();
        Assert.Equal(1_000, (await before).PendingAfterMinor);
        await block;
        var refused = await Assert.ThrowsAsync<LoyaltyRejectedException>(() => Grains.MemberGrain(member).AuthorizeOnKnownCard(Auth("b1-" + member, card, 100_000).Authorize!));
        Assert.Equal(RejectionCode.FailedPrecondition, refused.Code);
    }
}

/// <summary>
/// The in-memory ledger with per-member switches for grain tests: record each append, hold the next one until
/// released, or fail it (before or after it commits) the way the PostgreSQL ledger reports an outage.
/// </summary>
public sealed class GatedLedger : ILedger
{
    private readonly InMemoryLedger _inner = new();
    private readonly Lock _gate = new();
    private readonly Dictionary<string, List<IReadOnlyList<LedgerEntry>>> _appends = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Hold> _holds = new(StringComparer.Ordinal);
    private readonly Dictionary<string, bool> _failures = new(StringComparer.Ordinal);

    public sealed class Hold
    {
        private readonly TaskCompletionSource _entered = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Entered => _entered.Task;
        public Task Released => _released.Task;
        public void Enter() => _entered.TrySetResult();
        public void Release() => _released.TrySetResult();
    }

    public IReadOnlyList<IReadOnlyList<LedgerEntry>> AppendsOf(string memberId)
    {
        lock (_gate) return _appends.TryGetValue(memberId, out var list) ? [.. list] : [];
    }

    public Hold HoldNext(string memberId)
    {
        var hold = new Hold();
        lock (_gate) _holds[memberId] = hold;
        return hold;
    }

    /// <summary>The member's next append fails as unreachable: before it commits (nothing recorded) or after (outcome unknown).</summary>
    public void FailNext(string memberId, bool committed)
    {
        lock (_gate) _failures[memberId] = committed;
    }

    public async Task AppendAsync(IReadOnlyList<LedgerEntry> entries, CancellationToken cancellationToken = default)
    {
        var member = entries[0].MemberId;
        Hold? hold;
        bool? failure;
        lock (_gate)
        {
            hold = _holds.Remove(member, out var h) ? h : null;
            failure = _failures.Remove(member, out var f) ? f : null;
        }
        if (hold is not null)
        {
            hold.Enter();
            await hold.Released;
        }
        if (failure == false) throw new LedgerUnavailableException(notCommitted: true, "test: the database is unreachable");
        await _inner.AppendAsync(entries, cancellationToken);
        lock (_gate)
        {
            if (!_appends.TryGetValue(member, out var list)) _appends[member] = list = [];
            list.Add(entries);
        }
        if (failure == true) throw new LedgerUnavailableException(notCommitted: false, "test: the commit was not confirmed");
    }

    public Task<IReadOnlyList<LedgerEntry>> ReadMemberAsync(string memberId, long afterSequence, CancellationToken cancellationToken = default) =>
        _inner.ReadMemberAsync(memberId, afterSequence, cancellationToken);

    public Task<IReadOnlyList<LedgerEntry>> ReadMemberPageAsync(string memberId, long beforeSequence, int limit, CancellationToken cancellationToken = default) =>
        _inner.ReadMemberPageAsync(memberId, beforeSequence, limit, cancellationToken);

    public Task<LedgerEntry?> FindAsync(string messageId, CancellationToken cancellationToken = default) => _inner.FindAsync(messageId, cancellationToken);

    public Task<IReadOnlyList<LedgerEntry>> ReadPurchaseAsync(string memberId, string purchaseId, long fromSequence, CancellationToken cancellationToken = default) =>
        _inner.ReadPurchaseAsync(memberId, purchaseId, fromSequence, cancellationToken);
}

/// <summary>A one-silo TestCluster over a <see cref="GatedLedger"/>.</summary>
public sealed class BatchClusterFixture : IAsyncLifetime
{
    public static readonly GatedLedger Ledger = new();

    public TestCluster Cluster { get; private set; } = null!;

    public IGrainFactory Grains => Cluster.GrainFactory;

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(1);
        builder.AddSiloBuilderConfigurator<SiloConfigurator>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task DisposeAsync() => await Cluster.StopAllSilosAsync();

    private sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            TestSilo.AddLoyalty(siloBuilder, Ledger, new FakeClock());
        }
    }
}

[CollectionDefinition(Name)]
public sealed class BatchClusterCollection : ICollectionFixture<BatchClusterFixture>
{
    public const string Name = "batch-cluster";
}
