using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains.Members;

namespace LoyaltyGrains.Grains;

/// <summary>
/// Processor and partner postings: queued in the journal, decided by the domain in arrival order (several at a time
/// when they queue up), written together and answered after the write. An authorization's card is vouched for by the
/// card grain that forwarded it, or by what the card grains told this activation (a gateway that knows the member).
/// </summary>
public sealed partial class MemberGrain
{
    public Task<PostingResult> AuthorizeOnKnownCard(AuthorizeMessage m) => Journal.Post(new PostingItem(Authorize: m), CardVouch.Member, CallDeadline.Current());

    public Task<PostingResult> AuthorizeFromCardGrain(AuthorizeMessage m, bool cardBlocked) => Journal.Post(new PostingItem(Authorize: m),
        cardBlocked ? CardVouch.CardGrainBlocked : CardVouch.CardGrainActive, CallDeadline.Current());

    public Task<PostingResult> Capture(CaptureMessage m) => Journal.Post(new PostingItem(Capture: m), CardVouch.Member, CallDeadline.Current());

    public Task<PostingResult> Reverse(ReverseMessage m) => Journal.Post(new PostingItem(Reverse: m), CardVouch.Member, CallDeadline.Current());

    public Task<PostingResult> Refund(RefundMessage m) => Journal.Post(new PostingItem(Refund: m), CardVouch.Member, CallDeadline.Current());

    public Task<PostingResult> Redeem(string transactionId, string partnerId, long amountMinor) =>
        Journal.Redeem(new RedeemCommand(transactionId, partnerId, amountMinor), CallDeadline.Current());

    /// <summary>Bulk items go into the queue together, so they are decided in order and (up to a batch) written in one append.</summary>
    public async Task<PostingItemResult[]> Post(PostingItem[] items)
    {
        if (items.Length > MemberJournal.QueuedCallsMax)
        {
            throw new LoyaltyRejectedException(RejectionCode.InvalidArgument, $"items: at most {MemberJournal.QueuedCallsMax} in one call, got {items.Length}");
        }
        var deadline = CallDeadline.Current();
        var replies = new Task<PostingResult>[items.Length];
        for (var i = 0; i < items.Length; i++)
        {
            var item = items[i];
            replies[i] = item.Authorize is null && item.Capture is null && item.Reverse is null && item.Refund is null
                ? Task.FromException<PostingResult>(new LoyaltyRejectedException(RejectionCode.InvalidArgument, "kind: one of authorize, capture, reverse, refund is required"))
                : Journal.Post(item, CardVouch.Member, deadline);
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

    /// <summary>Queued like a posting: it returns once every authorization decided before it is written.</summary>
    public Task CardBlocked(string cardId) => Exclusive(() =>
    {
        Journal.Cards.Learn(cardId, blocked: true);
        return Task.CompletedTask;
    });
}
