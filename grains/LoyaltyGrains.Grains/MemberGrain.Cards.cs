using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Grains;

/// <summary>The member's cards as their card grains told it: for authorizations routed past the card grain.</summary>
public sealed partial class MemberGrain
{
    // This member's cards as their card grains last said, for authorizations routed past the card grain. Not
    // persisted: learnt again after activation. A card's member never changes once issued; a block is pushed here by
    // the card grain before it is acknowledged, so an authorization after a block always sees it.
    private (string CardId, bool Blocked)[] _cards = [];

    public Task CardBlocked(string cardId)
    {
        var index = CardIndex(cardId);
        if (index >= 0) _cards[index].Blocked = true;
        else _cards = [.. _cards, (cardId, true)];
        return Task.CompletedTask;
    }

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

    /// <summary>What the card grain said of this card (asked once per activation; a block is pushed here).</summary>
    private async ValueTask<CardStanding> CardStandingAsync(string cardId)
    {
        if (CardIndex(cardId) is var known and >= 0) return _cards[known].Blocked ? CardStanding.Blocked : CardStanding.Active;
        var card = await GrainFactory.CardGrain(cardId).GetCard();
        if (card.MemberId != MemberId) return CardStanding.OtherMember;
        // Non-reentrant: no CardBlocked ran while we waited, so what the card said is current.
        _cards = [.. _cards, (cardId, card.Blocked)];
        return card.Blocked ? CardStanding.Blocked : CardStanding.Active;
    }
}
