using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Grains;

/// <summary>Processor and partner postings: each decided by the domain, then committed and answered by the journal.</summary>
public sealed partial class MemberGrain
{
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
}
