using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Grains;

/// <summary>Reads: balance, statement, quote, offers. Only housekeeping due now is committed before a read answers.</summary>
public sealed partial class MemberGrain
{
    public const int StatementPageSizeMax = 200;

    public Task<BalanceView> GetBalance()
    {
        var read = new BalanceRead(CallDeadline.Current());
        Enqueue(read);
        return read.Completion.Task;
    }

    /// <summary>The balance at this point of a batch; lots past expiry are written off first (rule "expiry", on next touch).</summary>
    private BalanceView ReadBalance(MemberAccount account)
    {
        if (!account.State.Enrolled) throw new LoyaltyRejectedException(RejectionCode.NotFound, $"member_id: member '{MemberId}' is not enrolled");
        account.ExpireLots(clock.GetUtcNow());
        return BalanceOf(account);
    }

    public Task<StatementPage> GetStatement(int pageSize, long beforeSequence) => RunExclusive(async () =>
    {
        var account = await EnrolledAsync();
        var size = Math.Clamp(pageSize, 1, StatementPageSizeMax);
        var before = beforeSequence <= 0 ? account.State.Sequence + 1 : beforeSequence;
        var entries = await ReadLedgerAsync(static (ledger, member, before, size) => ledger.ReadMemberPageAsync(member, before, size), before, size + 1);
        var page = entries.Take(size).Select(Mapping.ToStatementLine).ToArray();
        var next = entries.Count > size ? page[^1].Sequence : 0;
        return new StatementPage(page, next);
    });

    /// <summary>
    /// What an authorization of this purchase would earn now, with its breakdown: the same decision Authorize makes
    /// (same housekeeping first, same plan, what a reservation would grant), reserving nothing.
    /// </summary>
    public Task<Eligibility> Quote(string merchantId, int mcc, long amountMinor) => RunExclusive(async () =>
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
    });

    public Task<OfferListing> ListOffers() => RunExclusive(async () => await OffersAsync(await EnrolledAsync()));

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
}
