using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains.Members;
using Microsoft.Extensions.Logging;

namespace LoyaltyGrains.Grains;

/// <summary>Enrolment, monthly categories, offer activation and referrals.</summary>
public sealed partial class MemberGrain
{
    public Task<MemberInfo> Enroll(bool premium, string referredBy, string tier) => Exclusive(async () =>
    {
        var account = await Journal.AccountAsync();
        var now = clock.GetUtcNow();
        var result = account.Enroll(new EnrollCommand(MemberId, premium, referredBy, tier), rules.Programs.At(now), now);
        await Journal.WriteAsync(account);
        ThrowIfRejected(result.Rejection);
        return Info(account.State);
    });

    public Task<MemberInfo> GetMember() => Exclusive(async () => Info((await Journal.EnrolledAsync()).State));

    public Task<bool> IsEnrolled() => Exclusive(async () => (await Journal.AccountAsync()).State.Enrolled);

    public Task CreditReferral(string referredMemberId) => Exclusive(async () =>
    {
        var account = await Journal.AccountAsync();
        var now = clock.GetUtcNow();
        var result = account.CreditReferral(referredMemberId, rules.Programs.At(now), now);
        await Journal.WriteAsync(account);
        ThrowIfRejected(result.Rejection);
    });

    public Task<BalanceView> ChooseCategories(string month, string[] categories) => Exclusive(async () =>
    {
        if (!MonthKey.TryParse(month, out var monthKey))
        {
            throw new LoyaltyRejectedException(RejectionCode.InvalidArgument, $"month: '{month}' is not a month in the form YYYY-MM");
        }
        var account = await Journal.AccountAsync();
        var result = account.ChooseCategories(new ChooseCategoriesCommand(monthKey, categories), rules.Programs, clock.GetUtcNow());
        await Journal.WriteAsync(account);
        ThrowIfRejected(result.Rejection);
        return MemberViews.Balance(account, rules, clock.GetUtcNow(), monthKey);
    });

    public Task<OfferListing> ActivateOffer(string campaignId) => Exclusive(async () =>
    {
        var account = await Journal.EnrolledAsync();
        var campaign = rules.FindCampaign(campaignId)
            ?? throw new LoyaltyRejectedException(RejectionCode.NotFound, $"campaign_id: campaign '{campaignId}' does not exist");
        var result = account.ActivateCampaign(campaign, clock.GetUtcNow());
        await Journal.WriteAsync(account);
        ThrowIfRejected(result.Rejection);
        return await OffersAsync(account);
    });

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
}
