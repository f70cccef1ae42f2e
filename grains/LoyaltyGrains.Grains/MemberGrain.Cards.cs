using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Grains;

/// <summary>
/// The member's cards as their card grains told it. The card grain owns a card's facts (whose it is, blocked) and hands
/// them over with every authorization it forwards; a block is pushed here before it is acknowledged. The member never
/// asks the card grain: an authorization routed past the card grain on a card this activation was not told about is
/// sent back to go through the card grain (<see cref="CardRouteRequiredException"/>).
/// </summary>
public sealed partial class MemberGrain
{
    // Not persisted: learnt again after activation, from the card grains. A card's member never changes once issued, and a
    // block is never lifted, so what a card grain said stays true except for a later block, which is pushed here.
    private (string CardId, bool Blocked)[] _cards = [];

    /// <summary>Queued like a posting: it returns once every authorization decided before it is committed.</summary>
    public Task CardBlocked(string cardId) => RunExclusive(() =>
    {
        LearnCard(cardId, blocked: true);
        return Task.CompletedTask;
    });

    /// <summary>Where this card is in the member's known cards, or -1. A member has a few cards: a scan is the fastest lookup.</summary>
    private int CardIndex(string cardId)
    {
        for (var i = 0; i < _cards.Length; i++)
        {
            if (_cards[i].CardId == cardId) return i;
        }
        return -1;
    }

    /// <summary>The instance of this card id the member already holds, so a purchase does not keep its own copy.</summary>
    private string KnownCardId(string cardId) => CardIndex(cardId) is var i and >= 0 ? _cards[i].CardId : cardId;

    /// <summary>A block only ever adds: a forward that left the card grain before the block cannot lift it.</summary>
    private void LearnCard(string cardId, bool blocked)
    {
        var index = CardIndex(cardId);
        if (index < 0) _cards = [.. _cards, (cardId, blocked)];
        else if (blocked) _cards[index].Blocked = true;
    }

    /// <summary>What the domain is told of an authorization's card (it decides what a blocked card means, after duplicates).</summary>
    private CardStanding CardStanding(string cardId, CardFact fact)
    {
        switch (fact)
        {
            case CardFact.Trusted:
                return Domain.CardStanding.Active;
            case CardFact.FromCardActive or CardFact.FromCardBlocked:
                LearnCard(cardId, fact == CardFact.FromCardBlocked);
                break;
        }
        var index = CardIndex(cardId);
        if (index < 0)
        {
            throw new CardRouteRequiredException($"card_id: member '{MemberId}' has not been told about card '{cardId}' since it was activated; send it through the card");
        }
        return _cards[index].Blocked ? Domain.CardStanding.Blocked : Domain.CardStanding.Active;
    }
}
