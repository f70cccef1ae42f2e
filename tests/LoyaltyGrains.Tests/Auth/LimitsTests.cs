using Grpc.Core;
using LoyaltyGrains.Contracts;
using LoyaltyGrains.Gateway.Auth;
using LoyaltyGrains.Gateway.V1;
using LoyaltyGrains.Tests.Api;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace LoyaltyGrains.Tests.Auth;

/// <summary>The engine with tiny per-caller limits.</summary>
public sealed class LimitedEngineFixture : EngineFixture
{
    protected override void Configure(WebApplicationBuilder builder)
    {
        builder.Configuration["Loyalty:Limits:AppRequestsPerSecond"] = "5";
        builder.Configuration["Loyalty:Limits:EnrollmentsPerSecond"] = "3";
        builder.Configuration["Loyalty:Limits:AdminCallsPerMinute"] = "4";
        builder.Configuration["Loyalty:Limits:WatchStreamsPerSubject"] = "2";
        builder.Configuration["Loyalty:Limits:WatchStreamsPerProcess"] = "3";
    }
}

public sealed class LimitsTests(LimitedEngineFixture engine) : IClassFixture<LimitedEngineFixture>
{
    private static async Task<StatusCode> StatusOfAsync(Func<Task> call)
    {
        try
        {
            await call();
            return StatusCode.OK;
        }
        catch (RpcException ex)
        {
            return ex.StatusCode;
        }
    }

    private async Task<string> MemberAsync(string name)
    {
        var member = $"{name}-{Guid.NewGuid():N}"[..20];
        // Straight to the grain: the enrolment budget is under test elsewhere in this class.
        await engine.Services.GetRequiredService<IGrainFactory>().MemberGrain(member).Enroll(false, "", "");
        return member;
    }

    [Fact]
    public async Task An_app_token_past_its_rate_is_resource_exhausted_and_other_callers_are_not()
    {
        var (member, neighbour) = (await MemberAsync("rl"), await MemberAsync("nb"));
        var app = new Balances.BalancesClient(engine.ChannelFor(engine.Token(member, [LoyaltyClaims.App])));
        var statuses = new List<StatusCode>();
        for (var i = 0; i < 30; i++) statuses.Add(await StatusOfAsync(() => app.GetBalanceAsync(new GetBalanceRequest { MemberId = member }).ResponseAsync));
        Assert.Contains(StatusCode.ResourceExhausted, statuses);
        Assert.Equal(StatusCode.OK, statuses[0]);
        var refused = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            for (var i = 0; i < 30; i++) await app.GetBalanceAsync(new GetBalanceRequest { MemberId = member });
        });
        Assert.Contains("rate limit", refused.Status.Detail, StringComparison.Ordinal);
        // Another member's app and the operator have budgets of their own.
        await new Balances.BalancesClient(engine.ChannelFor(engine.Token(neighbour, [LoyaltyClaims.App]))).GetBalanceAsync(new GetBalanceRequest { MemberId = neighbour });
        await new Balances.BalancesClient(engine.Channel).GetBalanceAsync(new GetBalanceRequest { MemberId = member });
    }

    [Fact]
    public async Task Enrolments_and_admin_calls_past_their_quota_are_refused_and_change_nothing()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var admin = new Admin.AdminClient(engine.ChannelFor(engine.Token("quota-" + run, [LoyaltyClaims.Admin])));
        var enrolled = new List<(string Member, StatusCode Status)>();
        for (var i = 0; i < 12; i++)
        {
            var member = $"e{i}-{run}";
            enrolled.Add((member, await StatusOfAsync(() => admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = member }).ResponseAsync)));
        }
        Assert.Contains(enrolled, e => e.Status == StatusCode.ResourceExhausted);
        var grains = engine.Services.GetRequiredService<IGrainFactory>();
        foreach (var (member, status) in enrolled) Assert.Equal(status == StatusCode.OK, await grains.MemberGrain(member).IsEnrolled());

        var partners = new List<StatusCode>();
        for (var i = 0; i < 8; i++) partners.Add(await StatusOfAsync(() => admin.UpsertPartnerAsync(new Partner { PartnerId = $"qp{i}-{run}", Name = "P" }).ResponseAsync));
        Assert.Equal(4, partners.Count(s => s == StatusCode.OK));
        Assert.Equal(4, partners.Count(s => s == StatusCode.ResourceExhausted));
        Assert.Null(await grains.PartnerGrain($"qp7-{run}").GetPartner());
    }

    [Fact]
    public async Task Watch_streams_are_capped_per_subject_and_per_process()
    {
        var (first, second) = (await MemberAsync("w1"), await MemberAsync("w2"));
        var one = new Balances.BalancesClient(engine.ChannelFor(engine.Token(first, [LoyaltyClaims.App])));
        var two = new Balances.BalancesClient(engine.ChannelFor(engine.Token(second, [LoyaltyClaims.App])));
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var open = new List<AsyncServerStreamingCall<Balance>>();
        async Task<StatusCode> WatchAsync(Balances.BalancesClient client, string member)
        {
            var call = client.WatchBalance(new GetBalanceRequest { MemberId = member }, cancellationToken: cancel.Token);
            open.Add(call);
            return await StatusOfAsync(() => call.ResponseStream.MoveNext(cancel.Token));
        }
        try
        {
            Assert.Equal(StatusCode.OK, await WatchAsync(one, first));
            Assert.Equal(StatusCode.OK, await WatchAsync(one, first));
            Assert.Equal(StatusCode.ResourceExhausted, await WatchAsync(one, first));
            Assert.Equal(StatusCode.OK, await WatchAsync(two, second));
            Assert.Equal(StatusCode.ResourceExhausted, await WatchAsync(two, second));
            // A stream that ends frees its slot.
            open[0].Dispose();
            var quota = engine.Services.GetRequiredService<WatchStreamQuota>();
            for (var i = 0; i < 100 && quota.Open > 2; i++) await Task.Delay(50);
            Assert.Equal(StatusCode.OK, await WatchAsync(two, second));
        }
        finally
        {
            foreach (var call in open) call.Dispose();
        }
    }
}
