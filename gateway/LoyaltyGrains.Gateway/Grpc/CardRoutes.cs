using System.Collections.Concurrent;
using LoyaltyGrains.Contracts;

namespace LoyaltyGrains.Gateway.Grpc;

/// <summary>
/// Which member each card belongs to, learnt from the card grains' replies, so a processor's message goes straight to
/// the member grain instead of through the card grain (one grain hop less per message). An issued card never changes
/// member, so an entry never goes stale; a block is enforced by the member (<see cref="IMemberGrain.AuthorizeOnKnownCard"/>).
/// Bounded: when full it starts again empty — a miss costs only the card grain hop.
/// </summary>
public sealed class CardRoutes
{
    public const int DefaultCapacity = 1_000_000;

    private readonly ConcurrentDictionary<string, string> _members = new(StringComparer.Ordinal);
    private readonly int _capacity;
    private int _count;

    public CardRoutes(int capacity = DefaultCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        _capacity = capacity;
    }

    public int Count => Volatile.Read(ref _count);

    public bool TryGetMember(string cardId, out string memberId) => _members.TryGetValue(cardId, out memberId!);

    /// <summary>Remembers the member of a card a grain has just vouched for; returns the result for chaining.</summary>
    public PostingResult Learn(string cardId, PostingResult result)
    {
        Learn(cardId, result.MemberId);
        return result;
    }

    public void Learn(string cardId, string memberId)
    {
        if (memberId.Length == 0 || _members.ContainsKey(cardId)) return;
        if (Interlocked.Increment(ref _count) > _capacity)
        {
            _members.Clear();
            Volatile.Write(ref _count, 1);
        }
        if (!_members.TryAdd(cardId, memberId)) Interlocked.Decrement(ref _count);
    }
}
