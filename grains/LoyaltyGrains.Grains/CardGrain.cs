using LoyaltyGrains.Contracts;

namespace LoyaltyGrains.Grains;

[GenerateSerializer, Alias("lg.CardGrainState")]
public sealed class CardGrainState
{
    [Id(0)] public string MemberId { get; set; } = "";
    [Id(1)] public bool Blocked { get; set; }
    [Id(2)] public DateTimeOffset IssuedAt { get; set; }
}

/// <summary>
/// A card: owns whose it is and whether it is blocked, and routes processor messages to its member, handing it those
/// facts with every authorization (and pushing a block before acknowledging it). The member refuses authorizations on a
/// blocked card; clearing, reversals and refunds still flow, because those purchases already happened. Gateways learn a
/// card's member after its first message and then go to the member directly, so an idle card need not stay in memory:
/// it is collected early.
/// </summary>
[CollectionAgeLimit(Minutes = 2)]
public sealed class CardGrain(
    [PersistentState("card", StorageNames.Loyalty)] IPersistentState<CardGrainState> state,
    TimeProvider clock) : Grain, ICardGrain
{
    private string CardId => GrainKeys.IdOf(this.GetPrimaryKeyString());

    public async Task<CardInfo> Issue(string memberId)
    {
        if (state.State.MemberId.Length > 0)
        {
            if (state.State.MemberId == memberId) return Info();
            throw new LoyaltyRejectedException(RejectionCode.AlreadyExists, $"card_id: card '{CardId}' is already issued to another member");
        }
        if (!await GrainFactory.MemberGrain(memberId).IsEnrolled())
        {
            throw new LoyaltyRejectedException(RejectionCode.NotFound, $"member_id: member '{memberId}' is not enrolled");
        }
        state.State.MemberId = memberId;
        state.State.IssuedAt = clock.GetUtcNow();
        await state.WriteStateAsync();
        return Info();
    }

    public async Task<CardInfo> Block()
    {
        EnsureIssued();
        if (!state.State.Blocked)
        {
            state.State.Blocked = true;
            await state.WriteStateAsync();
        }
        // Always (a retried Block too): the member may authorize on this card without asking us, so it must know
        // before the block is acknowledged.
        await GrainFactory.MemberGrain(state.State.MemberId).CardBlocked(CardId);
        return Info();
    }

    public Task<CardInfo> GetCard()
    {
        EnsureIssued();
        return Task.FromResult(Info());
    }

    // The card's facts go with the message, so the member never asks back; the member decides what they mean (a blocked
    // card is refused after the duplicate check): one owner for each rule, whichever route the message took.
    public Task<PostingResult> Authorize(AuthorizeMessage message) => Member().AuthorizeFromCardGrain(message, state.State.Blocked);

    public Task<PostingResult> Capture(CaptureMessage message) => Member().Capture(message);

    public Task<PostingResult> Reverse(ReverseMessage message) => Member().Reverse(message);

    public Task<PostingResult> Refund(RefundMessage message) => Member().Refund(message);

    private IMemberGrain Member()
    {
        EnsureIssued();
        return GrainFactory.MemberGrain(state.State.MemberId);
    }

    private void EnsureIssued()
    {
        if (state.State.MemberId.Length == 0)
        {
            throw new LoyaltyRejectedException(RejectionCode.NotFound, $"card_id: card '{CardId}' is not issued");
        }
    }

    private CardInfo Info() => new(CardId, state.State.MemberId, state.State.Blocked);
}
