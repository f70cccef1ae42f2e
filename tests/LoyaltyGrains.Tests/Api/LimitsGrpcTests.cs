using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LoyaltyGrains.Gateway;
using LoyaltyGrains.Gateway.V1;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace LoyaltyGrains.Tests.Api;

/// <summary>
/// The documented limits over the public contract: money that would wrap, a programme that would freeze, timestamps
/// protobuf cannot represent, huge values echoed back. Each is INVALID_ARGUMENT naming the field, short, and changes nothing.
/// </summary>
public sealed class LimitsGrpcTests(EngineFixture engine) : IClassFixture<EngineFixture>
{
    /// <summary>An error detail a client can always log and a proxy always forward.</summary>
    public const int DetailLengthMax = 512;

    private static readonly Timestamp Now = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-1));
    /// <summary>10000-01-01T00:00:00Z: one second past what google.protobuf.Timestamp can hold.</summary>
    private static readonly Timestamp PastYear9999 = new() { Seconds = 253_402_300_800 };

    private Processing.ProcessingClient Processing => new(engine.Channel);
    private Balances.BalancesClient Balances => new(engine.Channel);
    private Admin.AdminClient Admin => new(engine.Channel);

    private async Task<(string Member, string Card)> EnrollAsync(string name)
    {
        var member = $"{name}-{Guid.NewGuid():N}"[..20];
        await Admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = member });
        await Admin.IssueCardAsync(new IssueCardRequest { CardId = "card-" + member, MemberId = member });
        return (member, "card-" + member);
    }

    private static AuthorizeRequest Auth(string id, string card, string merchant = "shop-1", long amount = 100_000) => new()
    {
        TransactionId = id, CardId = card, AmountMinor = amount, Currency = "RUB", Mcc = 5411, MerchantId = merchant, OccurredAt = Now,
    };

    private static Campaign AtMerchant(string id, string merchant) => new()
    {
        CampaignId = id, Name = "limits", RateBps = 100, MerchantIds = { merchant },
        StartsAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(-1)), EndsAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(30)),
    };

    private static async Task<RpcException> Fails(StatusCode code, Func<Task> call, string field)
    {
        var ex = await Assert.ThrowsAsync<RpcException>(call);
        Assert.True(code == ex.StatusCode, $"expected {code}, got {ex.StatusCode}: {Head(ex.Status.Detail)}");
        Assert.Contains(field, ex.Status.Detail, StringComparison.Ordinal);
        Assert.True(ex.Status.Detail.Length <= DetailLengthMax, $"detail of {ex.Status.Detail.Length} characters: {Head(ex.Status.Detail)}");
        return ex;
    }

    private static string Head(string text) => text.Length <= 200 ? text : text[..200] + "…";

    private async Task<(long Available, long Pending, int Entries)> SnapshotAsync(string member)
    {
        var balance = await Balances.GetBalanceAsync(new GetBalanceRequest { MemberId = member });
        var statement = await Balances.GetStatementAsync(new GetStatementRequest { MemberId = member, PageSize = 200 });
        return (balance.AvailableMinor, balance.PendingMinor, statement.Entries.Count);
    }

    [Theory]
    [InlineData(4_611_686_018_427_387_904L)] // 2^62: two purchases made a balance of -9.2e18
    [InlineData(long.MaxValue)]              // silently did not apply
    [InlineData(10_000_000_001L)]            // just past the documented maximum
    public async Task A_fixed_bonus_past_the_maximum_is_refused_and_purchases_earn_base_only(long fixedBonus)
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var merchant = "wrap-" + run;
        var campaign = AtMerchant("wrap-" + run, merchant);
        campaign.RateBps = 0;
        campaign.FixedBonusMinor = fixedBonus;
        await Fails(StatusCode.InvalidArgument, () => Admin.UpsertCampaignAsync(campaign).ResponseAsync, "fixed_bonus_minor");
        var (_, card) = await EnrollAsync("wrap");
        for (var i = 0; i < 2; i++)
        {
            var auth = await Processing.AuthorizeAsync(Auth($"w{i}-{run}", card, merchant));
            await Processing.CaptureAsync(new CaptureRequest { TransactionId = $"w{i}c-{run}", AuthorizationId = $"w{i}-{run}", CardId = card, AmountMinor = 100_000 });
            Assert.Equal(1_000, auth.AccruedMinor);
        }
    }

    [Fact]
    public async Task Stacked_campaigns_never_pay_more_than_the_programme_maximum_rate()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var merchant = "stack-" + run;
        for (var i = 0; i < 5; i++)
        {
            var campaign = AtMerchant($"stack{i}-{run}", merchant);
            campaign.RateBps = 10_000;
            campaign.StackingOrder = i;
            await Admin.UpsertCampaignAsync(campaign);
        }
        var (member, card) = await EnrollAsync("stack");
        var auth = await Processing.AuthorizeAsync(Auth("s1-" + run, card, merchant));
        // 100% of the purchase at most (max_accrual_rate_bps 10 000 by default): base 1 000, then the first campaign's 99 000.
        Assert.Equal(100_000, auth.AccruedMinor);
        Assert.Equal([("base", 1_000L), ($"campaign:stack0-{run}", 99_000L)], auth.Breakdown.Select(b => (b.Rule, b.AmountMinor)));
        var capture = await Processing.CaptureAsync(new CaptureRequest { TransactionId = "s1c-" + run, AuthorizationId = "s1-" + run, CardId = card, AmountMinor = 120_000 });
        Assert.True(capture.AccruedMinor <= 120_000, $"capture accrued {capture.AccruedMinor} on 120 000");
        Assert.Equal(capture.AccruedMinor, (await SnapshotAsync(member)).Available);
    }

    [Fact]
    public async Task A_referral_bonus_past_the_maximum_is_refused_and_the_programme_stays()
    {
        var current = await Admin.GetProgramAsync(new GetProgramRequest());
        var bad = current.Clone();
        bad.EffectiveFrom = null;
        bad.ReferralBonusMinor = 9_000_000_000_000_000_000;
        await Fails(StatusCode.InvalidArgument, () => Admin.SetProgramAsync(bad).ResponseAsync, "referral_bonus_minor");
        Assert.Equal(current.Version, (await Admin.GetProgramAsync(new GetProgramRequest())).Version);
    }

    [Fact]
    public async Task The_maximum_accrual_rate_is_part_of_the_programme_and_bounded()
    {
        var current = await Admin.GetProgramAsync(new GetProgramRequest());
        Assert.Equal(10_000, current.MaxAccrualRateBps);
        foreach (var (rate, field) in new[] { (10_001, "max_accrual_rate_bps"), (-1, "max_accrual_rate_bps"), (600, "category_rate_bps") })
        {
            var bad = current.Clone();
            bad.EffectiveFrom = null;
            bad.MaxAccrualRateBps = rate;
            await Fails(StatusCode.InvalidArgument, () => Admin.SetProgramAsync(bad).ResponseAsync, field);
        }
        Assert.Equal(current.Version, (await Admin.GetProgramAsync(new GetProgramRequest())).Version);
    }

    [Fact]
    public void The_oldest_posting_accepted_is_a_gateway_setting()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Loyalty:Limits:PostingAgeMax"] = "10.00:00:00" }).Build();
        var services = new ServiceCollection().AddSingleton<IConfiguration>(configuration);
        services.AddLoyaltyGateway();
        using var provider = services.BuildServiceProvider();
        Assert.Equal(TimeSpan.FromDays(10), provider.GetRequiredService<Microsoft.Extensions.Options.IOptions<GatewayLimits>>().Value.PostingAgeMax);
        Assert.Equal(TimeSpan.FromDays(400), new GatewayLimits().PostingAgeMax);
    }

    [Fact]
    public async Task A_programme_that_would_freeze_every_later_change_is_refused()
    {
        var current = await Admin.GetProgramAsync(new GetProgramRequest());

        var farFuture = current.Clone();
        farFuture.EffectiveFrom = Timestamp.FromDateTimeOffset(new DateTimeOffset(9999, 12, 31, 0, 0, 0, TimeSpan.Zero));
        await Fails(StatusCode.InvalidArgument, () => Admin.SetProgramAsync(farFuture).ResponseAsync, "effective_from");

        var justPastAhead = current.Clone();
        justPastAhead.EffectiveFrom = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(367));
        await Fails(StatusCode.InvalidArgument, () => Admin.SetProgramAsync(justPastAhead).ResponseAsync, "effective_from");

        foreach (var rounding in new[] { (LoyaltyGrains.Gateway.V1.RoundingMode)99, LoyaltyGrains.Gateway.V1.RoundingMode.Unspecified })
        {
            var badRounding = current.Clone();
            badRounding.EffectiveFrom = null;
            badRounding.Rounding = rounding;
            await Fails(StatusCode.InvalidArgument, () => Admin.SetProgramAsync(badRounding).ResponseAsync, "rounding");
        }

        var manyExclusions = current.Clone();
        manyExclusions.EffectiveFrom = null;
        manyExclusions.ExcludedMccs.AddRange(Enumerable.Range(0, 200_000).Select(i => i % 10_000));
        await Fails(StatusCode.InvalidArgument, () => Admin.SetProgramAsync(manyExclusions).ResponseAsync, "excluded_mccs");

        var duplicateExclusion = current.Clone();
        duplicateExclusion.EffectiveFrom = null;
        duplicateExclusion.ExcludedMccs.AddRange([5814, 5814]);
        await Fails(StatusCode.InvalidArgument, () => Admin.SetProgramAsync(duplicateExclusion).ResponseAsync, "excluded_mccs");

        Assert.Equal(current.Version, (await Admin.GetProgramAsync(new GetProgramRequest())).Version);
    }

    [Fact]
    public async Task A_timestamp_protobuf_cannot_hold_is_invalid_argument_on_every_rpc_that_takes_one()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var (member, card) = await EnrollAsync("ts");
        await Processing.AuthorizeAsync(Auth("t0-" + run, card));
        var before = await SnapshotAsync(member);

        var auth = Auth("t1-" + run, card);
        auth.OccurredAt = PastYear9999;
        await Fails(StatusCode.InvalidArgument, () => Processing.AuthorizeAsync(auth).ResponseAsync, "occurred_at");
        await Fails(StatusCode.InvalidArgument, () => Processing.CaptureAsync(new CaptureRequest
        {
            TransactionId = "t2-" + run, AuthorizationId = "t0-" + run, CardId = card, AmountMinor = 100_000, OccurredAt = PastYear9999,
        }).ResponseAsync, "occurred_at");
        await Fails(StatusCode.InvalidArgument, () => Processing.ReverseAsync(new ReverseRequest
        {
            TransactionId = "t3-" + run, AuthorizationId = "t0-" + run, CardId = card, OccurredAt = PastYear9999,
        }).ResponseAsync, "occurred_at");
        await Fails(StatusCode.InvalidArgument, () => Processing.RefundAsync(new RefundRequest
        {
            TransactionId = "t4-" + run, OriginalTransactionId = "t0-" + run, CardId = card, AmountMinor = 1, OccurredAt = new Timestamp { Seconds = -62_135_596_801 },
        }).ResponseAsync, "occurred_at");
        var badNanos = Auth("t5-" + run, card);
        badNanos.OccurredAt = new Timestamp { Seconds = Now.Seconds, Nanos = 1_000_000_000 };
        await Fails(StatusCode.InvalidArgument, () => Processing.AuthorizeAsync(badNanos).ResponseAsync, "occurred_at");
        Assert.Equal(before, await SnapshotAsync(member));

        var campaign = AtMerchant("ts-" + run, "shop-ts");
        campaign.EndsAt = PastYear9999;
        await Fails(StatusCode.InvalidArgument, () => Admin.UpsertCampaignAsync(campaign).ResponseAsync, "ends_at");
        campaign = AtMerchant("ts-" + run, "shop-ts");
        campaign.StartsAt = new Timestamp { Seconds = long.MinValue };
        await Fails(StatusCode.InvalidArgument, () => Admin.UpsertCampaignAsync(campaign).ResponseAsync, "starts_at");

        var program = await Admin.GetProgramAsync(new GetProgramRequest());
        var bad = program.Clone();
        bad.EffectiveFrom = PastYear9999;
        await Fails(StatusCode.InvalidArgument, () => Admin.SetProgramAsync(bad).ResponseAsync, "effective_from");
        Assert.Equal(program.Version, (await Admin.GetProgramAsync(new GetProgramRequest())).Version);
    }

    [Fact]
    public async Task A_huge_value_is_never_echoed_back_whole()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var (member, card) = await EnrollAsync("echo");
        var hugeCurrency = Auth("e1-" + run, card);
        hugeCurrency.Currency = new string('X', 500_000);
        await Fails(StatusCode.InvalidArgument, () => Processing.AuthorizeAsync(hugeCurrency).ResponseAsync, "currency");
        var hugeCategory = new string('c', 100_000);
        await Fails(StatusCode.InvalidArgument, () => Balances.ChooseCategoriesAsync(new ChooseCategoriesRequest
        {
            MemberId = member, Month = DateTimeOffset.UtcNow.AddHours(3).ToString("yyyy-MM", System.Globalization.CultureInfo.InvariantCulture), Categories = { hugeCategory },
        }).ResponseAsync, "categories");
        await Fails(StatusCode.InvalidArgument, () => Balances.ChooseCategoriesAsync(new ChooseCategoriesRequest
        {
            MemberId = member, Month = new string('9', 100_000),
        }).ResponseAsync, "month");
        var campaign = AtMerchant("echo-" + run, "shop-echo");
        campaign.Categories.Add(hugeCategory);
        await Fails(StatusCode.InvalidArgument, () => Admin.UpsertCampaignAsync(campaign).ResponseAsync, "categories");
        var program = await Admin.GetProgramAsync(new GetProgramRequest());
        var bad = program.Clone();
        bad.EffectiveFrom = null;
        bad.OfferedCategories.Add(hugeCategory);
        bad.Currencies.Add(new string('Y', 100_000));
        await Fails(StatusCode.InvalidArgument, () => Admin.SetProgramAsync(bad).ResponseAsync, "offered_categories");
        Assert.Equal((0L, 0L), ((await SnapshotAsync(member)).Available, (await SnapshotAsync(member)).Pending));
    }

    [Fact]
    public async Task A_force_post_from_1970_is_refused()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var (member, card) = await EnrollAsync("old");
        var before = await SnapshotAsync(member);
        await Fails(StatusCode.InvalidArgument, () => Processing.CaptureAsync(new CaptureRequest
        {
            TransactionId = "fp-" + run, CardId = card, AmountMinor = 100_000, Mcc = 5411, MerchantId = "shop-1",
            OccurredAt = new Timestamp { Seconds = 1 },
        }).ResponseAsync, "occurred_at");
        var tooOld = Auth("a-" + run, card);
        tooOld.OccurredAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(-401));
        await Fails(StatusCode.InvalidArgument, () => Processing.AuthorizeAsync(tooOld).ResponseAsync, "occurred_at");
        Assert.Equal(before, await SnapshotAsync(member));
        var recent = Auth("b-" + run, card);
        recent.OccurredAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(-399));
        Assert.Equal(PostingStatus.Accepted, (await Processing.AuthorizeAsync(recent)).Status);
    }

    [Fact]
    public async Task A_campaign_with_an_unknown_tier_a_huge_name_or_duplicate_filters_is_refused()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var campaign = AtMerchant("cmp-" + run, "shop-cmp");
        campaign.MinTier = "platinum";
        await Fails(StatusCode.InvalidArgument, () => Admin.UpsertCampaignAsync(campaign).ResponseAsync, "min_tier");

        campaign = AtMerchant("cmp-" + run, "shop-cmp");
        campaign.Name = new string('n', 900_000);
        await Fails(StatusCode.InvalidArgument, () => Admin.UpsertCampaignAsync(campaign).ResponseAsync, "name");

        campaign = AtMerchant("cmp-" + run, "shop-cmp");
        campaign.Mccs.AddRange(Enumerable.Repeat(5411, 200_000));
        await Fails(StatusCode.InvalidArgument, () => Admin.UpsertCampaignAsync(campaign).ResponseAsync, "mccs");

        campaign = AtMerchant("cmp-" + run, "shop-cmp");
        campaign.MerchantIds.Add("shop-cmp");
        await Fails(StatusCode.InvalidArgument, () => Admin.UpsertCampaignAsync(campaign).ResponseAsync, "merchant_ids");

        campaign = AtMerchant("cmp-" + run, "shop-cmp");
        campaign.MinTier = "silver";
        Assert.Equal("silver", (await Admin.UpsertCampaignAsync(campaign)).MinTier);
    }
}
