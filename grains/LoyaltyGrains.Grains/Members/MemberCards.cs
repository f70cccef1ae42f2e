using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Grains.Members;

/// <summary>Who vouches for the card of an authorization the member decides.</summary>
public enum CardVouch
{
    /// <summary>
    /// The member, from what the card's grain told this activation (the gateway routed the message straight here). A
    /// card it was not told about is sent back to go through its card grain (<see cref="CardRouteRequiredException"/>).
    /// </summary>
    Member,
    /// <summary>The card grain, which forwarded the message: the card is this member's and not blocked.</summary>
    CardGrainActive,
    /// <summary>The card grain, which forwarded the message: the card is this member's and blocked.</summary>
    CardGrainBlocked,
}

/// <summary>
/// The member's cards as their card grains told this activation. Not persisted: learnt again after activation, from the
/// card grains. A card's member never changes once issued and a block is never lifted, so what a card grain said stays
/// true except for a later block, which is pushed (<see cref="Learn"/> with blocked).
/// </summary>
public sealed class MemberCards
{
    private (string CardId, bool Blocked)[] _cards = [];

    /// <summary>A block only ever adds: a forward that left the card grain before the block cannot lift it.</summary>
    public void Learn(string cardId, bool blocked)
    {
        var index = IndexOf(cardId);
        if (index < 0) _cards = [.. _cards, (cardId, blocked)];
        else if (blocked) _cards[index].Blocked = true;
    }

    /// <summary>The instance of this card id the member already holds, so a purchase does not keep its own copy.</summary>
    public string Shared(string cardId) => IndexOf(cardId) is var i and >= 0 ? _cards[i].CardId : cardId;

    /// <summary>What the domain is told of an authorization's card (it decides what a blocked card means, after duplicates).</summary>
    public CardStanding Standing(string memberId, string cardId, CardVouch vouch)
    {
        if (vouch != CardVouch.Member) Learn(cardId, vouch == CardVouch.CardGrainBlocked);
        var index = IndexOf(cardId);
        if (index < 0)
        {
            throw new CardRouteRequiredException($"card_id: member '{memberId}' has not been told about card '{cardId}' since it was activated; send it through the card");
        }
        return _cards[index].Blocked ? CardStanding.Blocked : CardStanding.Active;
    }

    /// <summary>A member has a few cards: a scan is the fastest lookup.</summary>
    private int IndexOf(string cardId)
    {
        for (var i = 0; i < _cards.Length; i++)
        {
            if (_cards[i].CardId == cardId) return i;
        }
        return -1;
    }
}
