using LoyaltyGrains.Contracts;
using LoyaltyGrains.Gateway.Grpc;

namespace LoyaltyGrains.Tests.Api;

public sealed class CardRoutesTests
{
    [Fact]
    public void Learns_members_from_replies_and_starts_again_when_full()
    {
        var routes = new CardRoutes(capacity: 3);
        routes.Learn("c1", new PostingResult("t1", false, "m1", "c1", 0, 0, 0, []));
        routes.Learn("c2", "m2");
        routes.Learn("c2", "m2");
        routes.Learn("c3", "");
        Assert.Equal(2, routes.Count);
        Assert.True(routes.TryGetMember("c1", out var m1));
        Assert.Equal("m1", m1);
        Assert.False(routes.TryGetMember("c3", out _));

        routes.Learn("c3", "m3");
        routes.Learn("c4", "m4");
        Assert.Equal(1, routes.Count);
        Assert.True(routes.TryGetMember("c4", out var m4));
        Assert.Equal("m4", m4);
        Assert.False(routes.TryGetMember("c1", out _));
    }
}
