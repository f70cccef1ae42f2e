using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Grains.Members;

/// <summary>What a member's state looks like to its callers (balance reads, watchers, category choices).</summary>
public static class MemberViews
{
    public static BalanceView Balance(MemberAccount account, IRulesProvider rules, DateTimeOffset now, MonthKey? month = null)
    {
        var program = rules.Programs.At(now);
        var key = month ?? program.MonthOf(now);
        var state = account.State;
        var monthState = state.Months.GetValueOrDefault(key.Value);
        var tier = account.TierFor(program, key);
        var capLeft = Math.Max(0, tier.CategoryCapFor(state.Premium) - (monthState?.CategoryCapUsedMinor ?? 0));
        var (expiringMinor, expiringAt) = account.NextExpiry();
        return new BalanceView(state.MemberId, state.AvailableMinor, state.PendingMinor, tier.TierId, monthState?.ChosenCategories ?? [],
            key.ToString(), capLeft, expiringMinor, expiringAt, state.Premium, state.Sequence);
    }
}
