using LoyaltyGrains.Grains;
using Xunit;

namespace LoyaltyGrains.Tests.Grains;

public class SharedStringsTests
{
    [Fact]
    public void Equal_values_share_the_first_instance_seen()
    {
        var pool = new SharedStrings(capacity: 10);
        var first = new string("mer-5411-1".AsSpan());
        var second = new string("mer-5411-1".AsSpan());
        Assert.NotSame(first, second);

        Assert.Same(first, pool.Share(first));
        Assert.Same(first, pool.Share(second));
    }

    [Fact]
    public void Past_capacity_values_are_kept_as_given_and_earlier_ones_still_shared()
    {
        var pool = new SharedStrings(capacity: 2);
        var a = pool.Share(new string("a".AsSpan()));
        pool.Share(new string("b".AsSpan()));
        var c = new string("c".AsSpan());

        Assert.Same(c, pool.Share(c));
        Assert.NotSame(c, pool.Share(new string("c".AsSpan())));
        Assert.Same(a, pool.Share(new string("a".AsSpan())));
    }

    [Fact]
    public void Empty_takes_no_slot()
    {
        // An empty string is always string.Empty (no other instance exists), so what can be checked is that it is not
        // pooled: with room for one value, the one value after any number of empties is still shared.
        var pool = new SharedStrings(capacity: 1);
        Assert.Same(string.Empty, pool.Share(new string([])));
        var first = new string("RUB".AsSpan());
        Assert.Same(first, pool.Share(first));
        Assert.Same(first, pool.Share(new string("RUB".AsSpan())));
    }
}
