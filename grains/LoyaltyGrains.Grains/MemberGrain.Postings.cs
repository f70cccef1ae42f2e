using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains.Ledger;

namespace LoyaltyGrains.Grains;

/// <summary>
/// Processor and partner postings: queued, decided by the domain in arrival order (several at a time when they queue
/// up), committed together and answered by the journal. The grain reserves campaign budget for what the domain plans
/// and passes the decision everything it needs; it never pre-checks a rule (duplicate, enrolment, card, force post).
/// </summary>
public sealed partial class MemberGrain
{
    public Task<PostingResult> Authorize(AuthorizeMessage m) => Submit(new PostingItem(Authorize: m));

    public Task<PostingResult> AuthorizeOnCard(AuthorizeMessage m) => Submit(new PostingItem(Authorize: m), CardFact.Known);

    public Task<PostingResult> AuthorizeFromCard(AuthorizeMessage m, bool cardBlocked) =>
        Submit(new PostingItem(Authorize: m), cardBlocked ? CardFact.FromCardBlocked : CardFact.FromCardActive);

    public Task<PostingResult> Capture(CaptureMessage m) => Submit(new PostingItem(Capture: m));

    public Task<PostingResult> Reverse(ReverseMessage m) => Submit(new PostingItem(Reverse: m));

    public Task<PostingResult> Refund(RefundMessage m) => Submit(new PostingItem(Refund: m));

    public Task<PostingResult> Redeem(string transactionId, string partnerId, long amountMinor) =>
        Submit(new PostingItem(), redeem: new RedeemCommand(transactionId, partnerId, amountMinor));

    /// <summary>Bulk items go into the queue together, so they are decided in order and (up to a batch) committed in one append.</summary>
    public async Task<PostingItemResult[]> Post(PostingItem[] items)
    {
        if (items.Length > QueuedCallsMax)
        {
            throw new LoyaltyRejectedException(RejectionCode.InvalidArgument, $"items: at most {QueuedCallsMax} in one call, got {items.Length}");
        }
        var replies = new Task<PostingResult>[items.Length];
        for (var i = 0; i < items.Length; i++)
        {
            var item = items[i];
            replies[i] = item.Authorize is null && item.Capture is null && item.Reverse is null && item.Refund is null
                ? Task.FromException<PostingResult>(new LoyaltyRejectedException(RejectionCode.InvalidArgument, "kind: one of authorize, capture, reverse, refund is required"))
                : Submit(item, item.Authorize is null ? CardFact.Trusted : CardFact.Known);
        }
        var results = new PostingItemResult[items.Length];
        for (var i = 0; i < items.Length; i++)
        {
            try
            {
                results[i] = new PostingItemResult(await replies[i], null);
            }
            catch (Exception ex)
            {
                results[i] = new PostingItemResult(null, ex);
            }
        }
        return results;
    }

    /// <summary>One posting decided against the batch's in-memory state; its entries are left uncommitted in the account.</summary>
    private async ValueTask<Result<PostingOutcome>> DecideAsync(Posting posting, MemberAccount account)
    {
        var programs = rules.Programs;
        if (posting.Redeem is { } redeem)
        {
            return await CheckRefusalAsync(account, redeem.TransactionId, MemberAccount.FingerprintOf(redeem), account.Redeem(redeem, programs, clock.GetUtcNow()));
        }
        switch (posting.Item)
        {
            case { Authorize: { } m }:
            {
                var command = new AuthorizeCommand(m.TransactionId, KnownCardId(m.CardId), m.AmountMinor, SharedStrings.Currencies.Share(m.Currency), m.Mcc,
                    SharedStrings.Merchants.Share(m.MerchantId), m.OccurredAt, CardStanding(m.CardId, posting.Card));
                var cold = await ColdRowsAsync(account.ColdAuthorization(m.TransactionId, m.OccurredAt, clock.GetUtcNow()));
                posting.Grants = await budgets.ReserveAsync(account.PlanAuthorize(command, programs, rules.Catalogue, rules.Campaigns));
                return await CheckRefusalAsync(account, m.TransactionId, MemberAccount.FingerprintOf(command),
                    account.Authorize(command, programs, rules.Catalogue, clock.GetUtcNow(), posting.Grants, cold));
            }
            case { Capture: { } m }:
            {
                var command = new CaptureCommand(m.TransactionId, m.AuthorizationId, KnownCardId(m.CardId), m.AmountMinor, m.OccurredAt, m.Mcc,
                    SharedStrings.Merchants.Share(m.MerchantId), SharedStrings.Currencies.Share(m.Currency));
                var cold = await ColdRowsAsync(account.ColdReference(m.TransactionId, m.AuthorizationId));
                posting.Grants = await budgets.ReserveAsync(account.PlanCapture(command, programs, rules.Catalogue, rules.Campaigns, clock.GetUtcNow(), cold));
                return await CheckRefusalAsync(account, m.TransactionId, MemberAccount.FingerprintOf(command),
                    account.Capture(command, programs, rules.Catalogue, clock.GetUtcNow(), posting.Grants, cold));
            }
            case { Reverse: { } m }:
            {
                var command = new ReverseCommand(m.TransactionId, m.AuthorizationId, m.CardId, m.AmountMinor, m.OccurredAt);
                var cold = await ColdRowsAsync(account.ColdReference(m.TransactionId, m.AuthorizationId));
                return await CheckRefusalAsync(account, m.TransactionId, MemberAccount.FingerprintOf(command), account.Reverse(command, programs, clock.GetUtcNow(), cold));
            }
            case { Refund: { } m }:
            {
                var command = new RefundCommand(m.TransactionId, m.OriginalTransactionId, m.CardId, m.AmountMinor, m.OccurredAt);
                var cold = await ColdRowsAsync(account.ColdReference(m.TransactionId, m.OriginalTransactionId));
                return await CheckRefusalAsync(account, m.TransactionId, MemberAccount.FingerprintOf(command), account.Refund(command, programs, clock.GetUtcNow(), cold));
            }
            default:
                throw new LoyaltyRejectedException(RejectionCode.InvalidArgument, "kind: one of authorize, capture, reverse, refund is required");
        }
    }

    /// <summary>
    /// A refusal of a message whose idempotency record may have left memory is checked against the ledger first: a late
    /// retry is answered DUPLICATE (or ALREADY_EXISTS for another payload), as a retry in memory would be. Refusals only,
    /// so the hot path never reads the database; an accepted late retry is caught by the ledger's unique id instead.
    /// </summary>
    private async ValueTask<Result<PostingOutcome>> CheckRefusalAsync(MemberAccount account, string transactionId, long fingerprint, Result<PostingOutcome> decision)
    {
        if (!account.RefusalNeedsLedgerCheck(transactionId, decision)) return decision;
        LedgerEntry? row;
        try
        {
            row = await ledger.FindAsync(transactionId);
        }
        catch (Exception ex) when (ex is LedgerUnavailableException || Faults.IsUnavailable(ex))
        {
            throw new LoyaltyUnavailableException(outcomeUnknown: false, "the database is unreachable; nothing was recorded, retry with the same transaction_id");
        }
        return account.AnswerFromLedgerRow(transactionId, fingerprint, row) ?? decision;
    }
}
