using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains.Members;

namespace LoyaltyGrains.Grains;

/// <summary>Reads: balance, statement, quote, offers. Only housekeeping due now is written before a read answers.</summary>
public sealed partial class MemberGrain
{
    public const int StatementPageSizeMax = 200;

    /// <summary>Decided in a batch with the postings around it: the balance after those queued before it, once written.</summary>
    public Task<BalanceView> GetBalance() => Journal.ReadBalance(CallDeadline.Current());

    public Task<StatementPage> GetStatement(int pageSize, long beforeSequence) => Exclusive(async () =>
    {
        var account = await Journal.EnrolledAsync();
        var size = Math.Clamp(pageSize, 1, StatementPageSizeMax);
        var before = beforeSequence <= 0 ? account.State.Sequence + 1 : beforeSequence;
        var entries = await Journal.ReadLedgerAsync(ledger => ledger.ReadMemberPageAsync(MemberId, before, size + 1));
        var page = entries.Take(size).Select(Mapping.ToStatementLine).ToArray();
        var next = entries.Count > size ? page[^1].Sequence : 0;
        return new StatementPage(page, next);
    });

    /// <summary>
    /// What an authorization of this purchase would earn now, with its breakdown: the same decision an authorization
    /// makes (same housekeeping first, same claims, what a reservation would grant), reserving nothing.
    /// </summary>
    public Task<Eligibility> Quote(string merchantId, int mcc, long amountMinor) => Exclusive(async () =>
    {
        var account = await Journal.EnrolledAsync();
        var now = clock.GetUtcNow();
        // Expiries due now are what an authorization's touch would release first (rule "on next touch", as a balance read).
        account.Touch(rules.Programs.At(now), now);
        await Journal.WriteAsync(account);
        var claims = account.PlanCampaigns(rules.Programs, rules.Catalogue, rules.Campaigns, amountMinor, mcc, merchantId, now);
        var grants = await budgets.WouldReserveAsync(claims);
        var accrual = account.Quote(rules.Programs, rules.Catalogue, amountMinor, mcc, merchantId, now, grants);
        var applied = grants.Where(g => g.GrantedMinor > 0).Select(g => g.Campaign.CampaignId).ToArray();
        return new Eligibility(MemberId, applied, accrual.TotalMinor, Mapping.ToItems(accrual.Lines));
    });

    public Task<OfferListing> ListOffers() => Exclusive(async () => await OffersAsync(await Journal.EnrolledAsync()));

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
