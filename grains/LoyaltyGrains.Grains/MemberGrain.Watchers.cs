using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains.Members;
using Microsoft.Extensions.Logging;

namespace LoyaltyGrains.Grains;

/// <summary>Balance watchers: leased, bounded, told after every commit (not durable).</summary>
public sealed partial class MemberGrain
{
    /// <summary>Watchers per member at most: a limit on everything.</summary>
    public const int WatchersMax = 64;

    private Dictionary<IBalanceObserver, DateTimeOffset>? _watchers;

    public Task<BalanceView> Watch(IBalanceObserver observer) => Exclusive(async () =>
    {
        var account = await Journal.EnrolledAsync();
        _watchers ??= [];
        if (!_watchers.ContainsKey(observer) && _watchers.Count >= WatchersMax)
        {
            throw new LoyaltyRejectedException(RejectionCode.FailedPrecondition, $"member_id: at most {WatchersMax} watchers per member");
        }
        _watchers[observer] = clock.GetUtcNow().AddSeconds(IMemberGrain.WatchLeaseSeconds);
        return MemberViews.Balance(account, rules, clock.GetUtcNow());
    });

    public Task Unwatch(IBalanceObserver observer)
    {
        _watchers?.Remove(observer);
        return Task.CompletedTask;
    }

    /// <summary>Pushes the new balance to watchers after a commit; one-way, so a slow watcher cannot hold the member.</summary>
    private void NotifyWatchers(MemberAccount account)
    {
        if (_watchers is not { Count: > 0 }) return;
        var now = clock.GetUtcNow();
        var view = MemberViews.Balance(account, rules, now);
        foreach (var (observer, expiresAt) in _watchers.ToArray())
        {
            if (expiresAt < now)
            {
                _watchers.Remove(observer);
                continue;
            }
            try
            {
                observer.BalanceChanged(view).Ignore();
            }
            catch (Exception ex)
            {
                logger.LogDebug(ex, "Member {MemberId}: dropping a watcher", MemberId);
                _watchers.Remove(observer);
            }
        }
    }
}
