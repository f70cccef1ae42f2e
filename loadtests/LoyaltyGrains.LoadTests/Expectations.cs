using System.Collections.Concurrent;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.LoadTests;

/// <summary>
/// What every member's balance must be, from the replies the tool received: + accrued on an accepted authorization
/// (pending), capture moves that authorization's pending to the capture's accrual (available), reversals and refunds
/// add their (negative) accrued. A DUPLICATE must repeat the original reply's figures exactly.
/// </summary>
public sealed class Expectations
{
    private readonly ConcurrentDictionary<string, MemberExpectation> _members = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _problems = new();
    private long _duplicatesChecked;

    public IReadOnlyCollection<string> Members => [.. _members.Keys];
    public long DuplicatesChecked => Interlocked.Read(ref _duplicatesChecked);
    public IReadOnlyCollection<string> Problems => _problems;

    public void Authorized(string member, PostingReply reply)
    {
        if (reply.Status != PostingStatus.Accepted) return;
        var m = Member(member);
        lock (m)
        {
            m.PendingMinor += reply.AccruedMinor;
            m.PendingByAuthorization[reply.TransactionId] = reply.AccruedMinor;
        }
    }

    public void Captured(string member, string authorizationId, PostingReply reply)
    {
        if (reply.Status != PostingStatus.Accepted) return;
        var m = Member(member);
        lock (m)
        {
            m.PendingMinor -= m.PendingByAuthorization.GetValueOrDefault(authorizationId);
            m.PendingByAuthorization.Remove(authorizationId);
            m.AvailableMinor += reply.AccruedMinor;
        }
    }

    public void Reversed(string member, string authorizationId, PostingReply reply)
    {
        if (reply.Status != PostingStatus.Accepted) return;
        var m = Member(member);
        lock (m)
        {
            m.PendingMinor += reply.AccruedMinor;
            if (m.PendingByAuthorization.TryGetValue(authorizationId, out var pending)) m.PendingByAuthorization[authorizationId] = pending + reply.AccruedMinor;
        }
    }

    public void Refunded(string member, PostingReply reply)
    {
        if (reply.Status != PostingStatus.Accepted) return;
        var m = Member(member);
        lock (m) m.AvailableMinor += reply.AccruedMinor;
    }

    /// <summary>A retry's reply must be DUPLICATE with the original's figures.</summary>
    public void Retried(PostingReply original, PostingReply again)
    {
        Interlocked.Increment(ref _duplicatesChecked);
        if (again.Status != PostingStatus.Duplicate || again.AccruedMinor != original.AccruedMinor
            || again.PendingMinor != original.PendingMinor || again.AvailableMinor != original.AvailableMinor)
        {
            Problem($"retry of {original.TransactionId}: expected DUPLICATE {original.AccruedMinor}/{original.PendingMinor}/{original.AvailableMinor}, " +
                $"got {again.Status} {again.AccruedMinor}/{again.PendingMinor}/{again.AvailableMinor}");
        }
    }

    public void Problem(string text)
    {
        if (_problems.Count < 1_000) _problems.Enqueue(text);
    }

    public (long Available, long Pending) Expected(string member)
    {
        var m = Member(member);
        lock (m) return (m.AvailableMinor, m.PendingMinor);
    }

    private MemberExpectation Member(string member) => _members.GetOrAdd(member, _ => new MemberExpectation());

    private sealed class MemberExpectation
    {
        public long AvailableMinor;
        public long PendingMinor;
        public readonly Dictionary<string, long> PendingByAuthorization = new(StringComparer.Ordinal);
    }
}
