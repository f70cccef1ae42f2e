using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.Tests.Api;

/// <summary>Campaigns, partners, offers, redemption and program changes through the public contract.</summary>
public sealed class ProgramGrpcTests(EngineFixture engine) : IClassFixture<EngineFixture>
{
    private static readonly Timestamp Now = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-1));
    private Processing.ProcessingClient Processing => new(engine.Channel);
    private Balances.BalancesClient Balances => new(engine.Channel);
    private Admin.AdminClient Admin => new(engine.Channel);
    private Offers.OffersClient Offers => new(engine.Channel);

    private async Task<(string Member, string Card)> EnrollAsync(string name)
    {
        var member = $"{name}-{Guid.NewGuid():N}"[..20];
        await Admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = member });
        await Admin.IssueCardAsync(new IssueCardRequest { CardId = "card-" + member, MemberId = member });
        return (member, "card-" + member);
    }

    private static Campaign Club(string id, string partner, string merchant) => new()
    {
        CampaignId = id, Name = "Coffee club", PartnerId = partner, RateBps = 1_000, MerchantIds = { merchant }, RequiresActivation = true,
        StartsAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(-1)), EndsAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(30)),
        BudgetMinor = 1_000_000,
    };

    [Fact]
    public async Task Partner_club_offer_end_to_end()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var partner = "coffee-" + run;
        var merchant = "coffee-shop-" + run;
        await Fails(StatusCode.NotFound, () => Admin.UpsertCampaignAsync(Club("club-" + run, partner, merchant)).ResponseAsync, "partner_id");
        await Admin.UpsertPartnerAsync(new Partner { PartnerId = partner, Name = "Coffee & Co" });
        var campaign = await Admin.UpsertCampaignAsync(Club("club-" + run, partner, merchant));
        Assert.Equal(1_000_000, campaign.BudgetMinor);
        var (member, card) = await EnrollAsync("club");

        var offers = await WaitForOfferAsync(member, "club-" + run);
        Assert.DoesNotContain("club-" + run, offers.ActivatedCampaignIds);
        var before = await Offers.CheckEligibilityAsync(new CheckEligibilityRequest { CardId = card, MerchantId = merchant, Mcc = 5814, AmountMinor = 50_000 });
        Assert.Equal(500, before.ExpectedAccrualMinor);
        Assert.Empty(before.Offers);

        var activated = await Offers.ActivateOfferAsync(new ActivateOfferRequest { MemberId = member, CampaignId = "club-" + run });
        Assert.Contains("club-" + run, activated.ActivatedCampaignIds);
        var after = await Offers.CheckEligibilityAsync(new CheckEligibilityRequest { MemberId = member, MerchantId = merchant, Mcc = 5814, AmountMinor = 50_000 });
        Assert.Equal(5_500, after.ExpectedAccrualMinor);
        Assert.Equal("club-" + run, Assert.Single(after.Offers).CampaignId);

        var auth = await Processing.AuthorizeAsync(new AuthorizeRequest
        {
            TransactionId = "club-a-" + run, CardId = card, AmountMinor = 50_000, Currency = "RUB", Mcc = 5814, MerchantId = merchant, OccurredAt = Now,
        });
        Assert.Equal(after.ExpectedAccrualMinor, auth.AccruedMinor);
        var line = Assert.Single(auth.Breakdown, b => b.Rule == "campaign:club-" + run);
        Assert.Equal((5_000L, partner), (line.AmountMinor, line.PartnerId));
        var balance = await Balances.GetBalanceAsync(new GetBalanceRequest { MemberId = member });
        Assert.Equal(5_500, balance.PendingMinor);
    }

    [Fact]
    public async Task Redeem_at_a_partner_and_refund_it()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        await Admin.UpsertPartnerAsync(new Partner { PartnerId = "shop-" + run, Name = "Shop" });
        var (member, card) = await EnrollAsync("rdm");
        await Processing.CaptureAsync(new CaptureRequest { TransactionId = "fp-" + run, CardId = card, AmountMinor = 100_000, Mcc = 5411, MerchantId = "m", OccurredAt = Now });
        await Fails(StatusCode.NotFound, () => Balances.RedeemAsync(new RedeemRequest { TransactionId = "r0-" + run, MemberId = member, PartnerId = "nobody", AmountMinor = 100 }).ResponseAsync, "partner_id");
        await Fails(StatusCode.FailedPrecondition, () => Balances.RedeemAsync(new RedeemRequest { TransactionId = "r1-" + run, MemberId = member, PartnerId = "shop-" + run, AmountMinor = 1_001 }).ResponseAsync, "amount_minor");
        var redeemed = await Balances.RedeemAsync(new RedeemRequest { TransactionId = "r2-" + run, MemberId = member, PartnerId = "shop-" + run, AmountMinor = 700 });
        Assert.Equal((-700L, 300L), (redeemed.AccruedMinor, redeemed.AvailableMinor));
        var refund = await Processing.RefundAsync(new RefundRequest { TransactionId = "rr-" + run, OriginalTransactionId = "r2-" + run, CardId = card, AmountMinor = 700 });
        Assert.Equal(1_000, refund.AvailableMinor);
        var balance = await Balances.GetBalanceAsync(new GetBalanceRequest { MemberId = member });
        Assert.Equal(1_000, balance.ExpiringMinor);
        Assert.NotNull(balance.ExpiringAt);
    }

    [Fact]
    public async Task Set_program_takes_effect_without_restart_and_keeps_versions()
    {
        var current = await Admin.GetProgramAsync(new GetProgramRequest());
        var next = current.Clone();
        next.Tiers[0].BaseRateBps = 200;
        next.Tiers[0].CategoryRateBps = Math.Max(next.Tiers[0].CategoryRateBps, 200);
        next.EffectiveFrom = null;
        var stored = await Admin.SetProgramAsync(next);
        Assert.Equal(current.Version + 1, stored.Version);
        var (_, card) = await EnrollAsync("prog");
        try
        {
            var auth = await Processing.AuthorizeAsync(new AuthorizeRequest
            {
                TransactionId = "prog-" + card, CardId = card, AmountMinor = 100_000, Currency = "RUB", Mcc = 5411, MerchantId = "m",
                OccurredAt = Timestamp.FromDateTimeOffset(stored.EffectiveFrom.ToDateTimeOffset().AddSeconds(1)),
            });
            Assert.Equal(2_000, auth.AccruedMinor);
            Assert.True(stored.EffectiveFrom.ToDateTimeOffset() >= DateTimeOffset.UtcNow.AddSeconds(1), "a new version must not take effect before every silo has it");
            // A purchase made before the change is priced by the version then in force.
            var earlier = await Processing.AuthorizeAsync(new AuthorizeRequest
            {
                TransactionId = "prog-old-" + card, CardId = card, AmountMinor = 100_000, Currency = "RUB", Mcc = 5411, MerchantId = "m",
                OccurredAt = Timestamp.FromDateTimeOffset(stored.EffectiveFrom.ToDateTimeOffset().AddMinutes(-5)),
            });
            Assert.Equal(1_000, earlier.AccruedMinor);
        }
        finally
        {
            var restore = current.Clone();
            restore.EffectiveFrom = null;
            await Admin.SetProgramAsync(restore);
        }
    }

    private async Task<OfferList> WaitForOfferAsync(string member, string campaignId)
    {
        // The registry pushes to its own silo at once (single-silo engine here), so this is immediate.
        var offers = await Offers.ListOffersAsync(new ListOffersRequest { MemberId = member });
        Assert.Contains(offers.Offers, o => o.CampaignId == campaignId);
        return offers;
    }

    private static async Task Fails(StatusCode code, Func<Task> call, string field)
    {
        var ex = await Assert.ThrowsAsync<RpcException>(call);
        Assert.Equal(code, ex.StatusCode);
        Assert.Contains(field, ex.Status.Detail, StringComparison.Ordinal);
    }
}
