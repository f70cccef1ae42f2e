using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using Microsoft.Extensions.Logging;

namespace LoyaltyGrains.Grains;

/// <summary>Enrolment, monthly categories, offer activation and referrals.</summary>
public sealed partial class MemberGrain
{
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

    public async Task CreditReferral(string referredMemberId)
    {
        var account = await AccountAsync();
        var now = clock.GetUtcNow();
        var result = account.CreditReferral(referredMemberId, rules.Programs.At(now), now);
        await CommitAsync(account);
        ThrowIfRejected(result.Rejection);
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
