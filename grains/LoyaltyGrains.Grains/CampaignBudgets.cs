using System.Collections.Concurrent;
using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LoyaltyGrains.Grains;

/// <summary>
/// Campaign budget as a member's decisions use it: reserved before a decision, the unused part released after it, and
/// what committed entries gave back (reversals, refunds, expiry) returned.
/// </summary>
public interface ICampaignBudget
{
    ValueTask<CampaignGrant[]> ReserveAsync(IReadOnlyList<CampaignClaim> claims);

    /// <summary>What <see cref="ReserveAsync"/> would grant now, taking nothing (quotes).</summary>
    ValueTask<CampaignGrant[]> WouldReserveAsync(IReadOnlyList<CampaignClaim> claims);

    /// <summary>Puts back grants a refused, duplicate or unwritten decision did not use.</summary>
    void Release(IReadOnlyList<CampaignGrant> grants);

    /// <summary>Budget that committed reversals, refunds and expiries gave back.</summary>
    void ReturnBudget(IReadOnlyList<BudgetReturn> returns);

    /// <summary>A campaign's spend and members joined, for offer listings.</summary>
    ValueTask<OfferUsage> UsageAsync(CampaignRule campaign);
}

/// <summary>
/// This silo's campaign budget leases. Member grains reserve bonuses from a local lease (microseconds, no grain call);
/// when a lease runs short it draws the next chunk (1/32 of the budget or what the purchase needs) from the
/// campaign's grain. Idle leases give their unspent part back after <see cref="LeaseIdleMax"/>, and all of them on
/// shutdown. Budget can therefore never be overspent: every kopeck granted to a member came out of a lease the
/// campaign grain durably counted.
/// </summary>
public sealed class CampaignBudgets : BackgroundService, ICampaignBudget
{
    private readonly IGrainFactory grains;
    private readonly IRulesProvider rules;
    private readonly TimeProvider clock;
    private readonly ILogger<CampaignBudgets> logger;
    private readonly Holder _holder;
    private ILeaseHolder? _holderReference;

    public CampaignBudgets(IGrainFactory grains, IRulesProvider rules, TimeProvider clock, ILogger<CampaignBudgets> logger)
    {
        this.grains = grains;
        this.rules = rules;
        this.clock = clock;
        this.logger = logger;
        _holder = new Holder(this);
    }

    /// <summary>
    /// This silo's lease holder as a grain reference, created on first use. Orleans refuses to create object
    /// references from a grain's context, and reservations run in member grains, so it is made on the thread pool.
    /// </summary>
    private async ValueTask<ILeaseHolder> HolderReferenceAsync() =>
        _holderReference ??= await Task.Run(() => grains.CreateObjectReference<ILeaseHolder>(_holder)).ConfigureAwait(true);

    public const int ChunksPerBudget = 32;
    public static readonly TimeSpan LeaseIdleMax = TimeSpan.FromSeconds(30);
    // Short: budget returned by reversals on another silo becomes reachable again within this time.
    public static readonly TimeSpan ExhaustedRetryAfter = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<string, LocalLease> _leases = new(StringComparer.Ordinal);
    private long _leaseCalls;

    /// <summary>Calls this silo made to campaign grains (acquire and return), for the "calls per 1 000 purchases" figure.</summary>
    public long LeaseCalls => Interlocked.Read(ref _leaseCalls);

    /// <summary>Reserves budget for a decision's claims from this silo's leases (drawing from the campaign when short).</summary>
    public ValueTask<CampaignGrant[]> ReserveAsync(IReadOnlyList<CampaignClaim> claims) => GrantAllAsync(claims, take: true);

    /// <summary>Puts back grants a refused or uncommitted decision did not use.</summary>
    public void Release(IReadOnlyList<CampaignGrant> grants)
    {
        foreach (var grant in grants)
        {
            if (grant.GrantedMinor > 0 || grant.TookMemberSlot) GiveBack(grant.Campaign.CampaignId, grant.GrantedMinor, grant.TookMemberSlot ? 1 : 0);
        }
    }

    /// <summary>Budget that committed reversals, refunds and expiries gave back.</summary>
    public void ReturnBudget(IReadOnlyList<BudgetReturn> returns)
    {
        foreach (var returned in returns) GiveBack(returned.CampaignId, returned.AmountMinor, 0);
    }

    /// <summary>
    /// What <see cref="ReserveAsync"/> would grant these claims now, taking nothing: the same rule on the local lease,
    /// and where it would draw from the campaign grain, what that grain could give (its unleased part plus other
    /// silos' unspent leases, which a draw would recall). So a quote equals the accrual of an immediate authorization.
    /// </summary>
    public ValueTask<CampaignGrant[]> WouldReserveAsync(IReadOnlyList<CampaignClaim> claims) => GrantAllAsync(claims, take: false);

    private async ValueTask<CampaignGrant[]> GrantAllAsync(IReadOnlyList<CampaignClaim> claims, bool take)
    {
        if (claims.Count == 0) return [];
        var grants = new CampaignGrant[claims.Count];
        for (var i = 0; i < claims.Count; i++) grants[i] = await GrantAsync(claims[i], take);
        return grants;
    }

    /// <summary>
    /// The reservation rule, written once for a reservation (<paramref name="take"/>) and a quote: a claim limited by
    /// neither budget nor first-N slots gets what it desires. Otherwise, short of budget or of a slot, the lease draws
    /// from the campaign (unless the campaign said moments ago it was exhausted) — a quote only asks what a draw would
    /// get; then <see cref="GrantableMinor"/> says what the claim gets, which a reservation takes from the lease.
    /// </summary>
    private async ValueTask<CampaignGrant> GrantAsync(CampaignClaim claim, bool take)
    {
        var campaign = claim.Campaign;
        var budgetLimited = campaign.BudgetMinor > 0;
        if (!budgetLimited && !claim.NeedsMemberSlot) return new CampaignGrant(campaign, claim.DesiredMinor);
        var lease = take ? await EnterLeaseAsync(campaign.CampaignId) : PeekLease(campaign.CampaignId);
        try
        {
            var now = clock.GetUtcNow();
            if (take) lease!.LastUsed = now;
            var budget = lease is null ? 0 : Volatile.Read(ref lease.BudgetMinor);
            var slots = lease is null ? 0 : Volatile.Read(ref lease.Slots);
            var shortOfBudget = budgetLimited && budget < claim.DesiredMinor;
            var shortOfSlot = claim.NeedsMemberSlot && slots == 0;
            if ((shortOfBudget || shortOfSlot) && now >= (lease?.ExhaustedUntil ?? DateTimeOffset.MinValue))
            {
                var drawn = take
                    ? await DrawAsync(lease!, claim, shortOfBudget, shortOfSlot, now)
                    : await grains.CampaignGrain(campaign.CampaignId).Remaining(await HolderReferenceAsync());
                budget += drawn.BudgetMinor;
                slots += drawn.Slots;
            }
            var amount = GrantableMinor(claim, budget, slots);
            if (!take || amount <= 0) return new CampaignGrant(campaign, amount);
            // Taken with compare-and-swap: a recall (which empties the lease without the gate) can never see a
            // kopeck that a reservation also took.
            if (claim.NeedsMemberSlot && !TryTake(ref lease!.Slots, 1)) return new CampaignGrant(campaign, 0);
            var taken = budgetLimited ? TakeUpTo(ref lease!.BudgetMinor, amount) : amount;
            if (taken <= 0)
            {
                if (claim.NeedsMemberSlot) Interlocked.Increment(ref lease!.Slots);
                return new CampaignGrant(campaign, 0);
            }
            return new CampaignGrant(campaign, taken, claim.NeedsMemberSlot);
        }
        finally
        {
            if (take) lease!.Gate.Release();
        }
    }

    /// <summary>What a claim gets from this much budget and these slots: nothing without a slot it needs, else its desire up to the budget.</summary>
    private static long GrantableMinor(CampaignClaim claim, long budgetMinor, int slots)
    {
        if (claim.NeedsMemberSlot && slots == 0) return 0;
        return Math.Max(0, claim.Campaign.BudgetMinor > 0 ? Math.Min(claim.DesiredMinor, budgetMinor) : claim.DesiredMinor);
    }

    /// <summary>The campaign's live lease, its gate held by the caller.</summary>
    private async ValueTask<LocalLease> EnterLeaseAsync(string campaignId)
    {
        var lease = _leases.GetOrAdd(campaignId, _ => new LocalLease());
        await lease.Gate.WaitAsync();
        while (lease.Ended)
        {
            // The sweeper ended this lease while we waited: use the campaign's next one.
            lease.Gate.Release();
            lease = _leases.GetOrAdd(campaignId, _ => new LocalLease());
            await lease.Gate.WaitAsync();
        }
        return lease;
    }

    private LocalLease? PeekLease(string campaignId) => _leases.TryGetValue(campaignId, out var lease) && !lease.Ended ? lease : null;

    /// <summary>Draws the next chunk (1/32 of the budget or what the claim lacks) into the lease; the gate is held.</summary>
    private async ValueTask<CampaignLease> DrawAsync(LocalLease lease, CampaignClaim claim, bool shortOfBudget, bool shortOfSlot, DateTimeOffset now)
    {
        var campaign = claim.Campaign;
        var budgetWanted = shortOfBudget ? Math.Max(claim.DesiredMinor - lease.BudgetMinor, campaign.BudgetMinor / ChunksPerBudget) : 0;
        var slotsWanted = shortOfSlot ? Math.Max(1, campaign.MaxMembers / ChunksPerBudget) : 0;
        Interlocked.Increment(ref _leaseCalls);
        LoyaltyMetrics.CampaignLeaseCalls.Add(1);
        var granted = await grains.CampaignGrain(campaign.CampaignId).AcquireLease(budgetWanted, slotsWanted, await HolderReferenceAsync());
        Interlocked.Add(ref lease.BudgetMinor, granted.BudgetMinor);
        Interlocked.Add(ref lease.Slots, granted.Slots);
        if (granted.Exhausted) lease.ExhaustedUntil = now + ExhaustedRetryAfter;
        return granted;
    }

    /// <summary>
    /// Budget spent and members joined per campaign for offer listings: the campaign grain's counts (leased and not
    /// returned) fetched at most <see cref="UsageMaxAge"/> ago, less this silo's own unspent lease.
    /// </summary>
    public async ValueTask<OfferUsage> UsageAsync(CampaignRule campaign)
    {
        if (campaign.BudgetMinor == 0 && campaign.MaxMembers == 0) return new OfferUsage(0, 0);
        var now = clock.GetUtcNow();
        if (!_usage.TryGetValue(campaign.CampaignId, out var cached) || now - cached.At > UsageMaxAge)
        {
            cached = (await grains.CampaignGrain(campaign.CampaignId).GetStatus(), now);
            _usage[campaign.CampaignId] = cached;
        }
        long heldBudget = 0;
        var heldSlots = 0;
        if (_leases.TryGetValue(campaign.CampaignId, out var lease))
        {
            heldBudget = Volatile.Read(ref lease.BudgetMinor);
            heldSlots = Volatile.Read(ref lease.Slots);
        }
        return new OfferUsage(Math.Max(0, cached.Status.BudgetLeasedMinor - heldBudget), Math.Max(0, cached.Status.SlotsLeased - heldSlots));
    }

    /// <summary>How stale an offer listing's spend and members may be (besides other silos' unspent leases).</summary>
    public static readonly TimeSpan UsageMaxAge = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<string, (CampaignStatus Status, DateTimeOffset At)> _usage = new(StringComparer.Ordinal);

    private static long TakeUpTo(ref long balance, long wanted)
    {
        while (true)
        {
            var current = Volatile.Read(ref balance);
            var take = Math.Min(wanted, current);
            if (take <= 0) return 0;
            if (Interlocked.CompareExchange(ref balance, current - take, current) == current) return take;
        }
    }

    private static bool TryTake(ref int balance, int wanted)
    {
        while (true)
        {
            var current = Volatile.Read(ref balance);
            if (current < wanted) return false;
            if (Interlocked.CompareExchange(ref balance, current - wanted, current) == current) return true;
        }
    }

    /// <summary>The campaign grain's recall: empty this silo's lease and hand back what it held.</summary>
    private CampaignLease Recall(string campaignId)
    {
        if (!_leases.TryGetValue(campaignId, out var lease)) return new CampaignLease(0, 0, false);
        return new CampaignLease(Interlocked.Exchange(ref lease.BudgetMinor, 0), Interlocked.Exchange(ref lease.Slots, 0), false);
    }

    private sealed class Holder(CampaignBudgets owner) : ILeaseHolder
    {
        public Task<CampaignLease> Recall(string campaignId) => Task.FromResult(owner.Recall(campaignId));

        public Task<CampaignLease> Held(string campaignId) => Task.FromResult(owner._leases.TryGetValue(campaignId, out var lease)
            ? new CampaignLease(Volatile.Read(ref lease.BudgetMinor), Volatile.Read(ref lease.Slots), false)
            : new CampaignLease(0, 0, false));
    }

    private void GiveBack(string campaignId, long budgetMinor, int slots)
    {
        var campaign = rules.FindCampaign(campaignId);
        if (campaign is null || (campaign.BudgetMinor == 0 && campaign.MaxMembers == 0)) return;
        var budget = campaign.BudgetMinor == 0 ? 0 : budgetMinor;
        if (_leases.TryGetValue(campaignId, out var lease) && !lease.Ended)
        {
            Interlocked.Add(ref lease.BudgetMinor, budget);
            Interlocked.Add(ref lease.Slots, slots);
            // Ended between the check and the add: the sweeper may have taken its sums already, so hand this back directly.
            if (!lease.Ended) return;
            budget = Interlocked.Exchange(ref lease.BudgetMinor, 0);
            slots = Interlocked.Exchange(ref lease.Slots, 0);
        }
        _ = ReturnToCampaignAsync(campaignId, budget, slots);
    }

    private async Task ReturnToCampaignAsync(string campaignId, long budgetMinor, int slots)
    {
        if (budgetMinor == 0 && slots == 0) return;
        try
        {
            Interlocked.Increment(ref _leaseCalls);
            LoyaltyMetrics.CampaignLeaseCalls.Add(1);
            await grains.CampaignGrain(campaignId).ReturnLease(budgetMinor, slots);
        }
        catch (Exception ex)
        {
            // Safe direction: an unreturned part is under-spend, never overspend.
            logger.LogWarning(ex, "Campaign {CampaignId}: returning {Budget} minor and {Slots} slots failed", campaignId, budgetMinor, slots);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(SweepInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken)) await EndLeasesAsync(idleOnly: true);
        }
        catch (OperationCanceledException)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        await EndLeasesAsync(idleOnly: false);
    }

    /// <summary>Ends idle leases (or all): their unspent budget and slots go back to the campaign.</summary>
    public async Task EndLeasesAsync(bool idleOnly)
    {
        var now = clock.GetUtcNow();
        foreach (var (campaignId, lease) in _leases)
        {
            if (idleOnly && now - lease.LastUsed < LeaseIdleMax) continue;
            await lease.Gate.WaitAsync();
            long budget;
            int slots;
            try
            {
                lease.Ended = true;
                _leases.TryRemove(campaignId, out _);
                budget = Interlocked.Exchange(ref lease.BudgetMinor, 0);
                slots = Interlocked.Exchange(ref lease.Slots, 0);
            }
            finally
            {
                lease.Gate.Release();
            }
            await ReturnToCampaignAsync(campaignId, budget, slots);
        }
    }

    // A SemaphoreSlim only needs disposing once its wait handle is used; this one's never is.
#pragma warning disable CA1001
    private sealed class LocalLease
#pragma warning restore CA1001
    {
        public readonly SemaphoreSlim Gate = new(1, 1);
        public long BudgetMinor;
        public int Slots;
        public DateTimeOffset LastUsed;
        public DateTimeOffset ExhaustedUntil;
        public volatile bool Ended;
    }
}
