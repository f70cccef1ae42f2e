using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using Xunit.Abstractions;

namespace LoyaltyGrains.Tests.Grains;

[Collection(ClusterCollection.Name)]
public sealed class CampaignClusterTests(ClusterFixture fixture, ITestOutputHelper output)
{
    private static readonly DateTimeOffset At = FakeClock.DefaultStart;
    private IGrainFactory Grains => fixture.Grains;

    private static CampaignRule Campaign(string id, long fixedMinor = 0, int rateBps = 0, long budgetMinor = 0, long perMemberCapMinor = 0,
        int[]? mccs = null, long minAmountMinor = 0, string merchant = "") => new()
    {
        // Each test scopes its campaigns to its own merchant: campaigns are global, tests share the cluster.
        MerchantIds = [merchant],
        CampaignId = id, PartnerId = "", FixedBonusMinor = fixedMinor, RateBps = rateBps, BudgetMinor = budgetMinor,
        PerMemberCapMinor = perMemberCapMinor, Mccs = mccs ?? [], MinAmountMinor = minAmountMinor,
        StartsAt = At.AddDays(-1), EndsAt = At.AddDays(30),
    };

    /// <summary>Upserts campaigns and installs them in every silo's rules replica now (a barrier, not a sleep).</summary>
    private async Task PublishAsync(params CampaignRule[] campaigns)
    {
        foreach (var campaign in campaigns) await Grains.CampaignGrain(campaign.CampaignId).Upsert(DomainJson.Serialize(campaign));
        var all = await Grains.GetGrain<ICampaignRegistryGrain>(ICampaignRegistryGrain.Key).GetAll();
        foreach (var silo in fixture.Cluster.Silos) Services(silo).GetRequiredService<RulesProvider>().InstallCampaigns(all);
    }

    private static IServiceProvider Services(SiloHandle silo) => ((InProcessSiloHandle)silo).SiloHost.Services;

    private async Task<(string Member, string Card)[]> EnrollAsync(string prefix, int count)
    {
        var members = Enumerable.Range(0, count).Select(i => ($"{prefix}-m{i}", $"{prefix}-c{i}")).ToArray();
        await Task.WhenAll(members.Select(async m =>
        {
            await Grains.MemberGrain(m.Item1).Enroll(false, "", "");
            await Grains.CardGrain(m.Item2).Issue(m.Item1);
        }));
        return members;
    }

    [Fact]
    public async Task Two_silos_racing_for_a_budget_spend_exactly_the_budget_and_never_more()
    {
        const int purchases = 2_000;
        const long bonusMinor = 10_000;            // 100.00 RUB per purchase
        const long budgetMinor = 500 * bonusMinor; // covers 500 purchases
        var run = Guid.NewGuid().ToString("N")[..8];
        var campaignId = "rush-" + run;
        var merchant = "rush-shop-" + run;
        await PublishAsync(Campaign(campaignId, fixedMinor: bonusMinor, budgetMinor: budgetMinor, merchant: merchant));
        var members = await EnrollAsync("race-" + run, 400);

        var results = await Task.WhenAll(Enumerable.Range(0, purchases).Select(i =>
        {
            var (_, card) = members[i % members.Length];
            return Grains.CardGrain(card).Authorize(new AuthorizeMessage($"race-{run}-{i}", card, 200_000, "RUB", 5411, merchant, At));
        }));

        var granted = results.Select(r => r.Breakdown.Where(b => b.Rule == "campaign:" + campaignId).Sum(b => b.AmountMinor)).ToArray();
        var spent = granted.Sum();
        var gotPart = granted.Count(g => g > 0);
        var status = await Grains.CampaignGrain(campaignId).GetStatus();
        output.WriteLine($"budget {budgetMinor}, spent {spent}, purchases that got a part {gotPart} of {purchases}, " +
            $"calls to CampaignGrain {status.LeaseCalls} ({status.LeaseCalls * 1000.0 / purchases:0.0} per 1 000 purchases), leased {status.BudgetLeasedMinor}");
        Assert.Equal(budgetMinor, spent);
        Assert.True(status.BudgetLeasedMinor <= budgetMinor, $"leased {status.BudgetLeasedMinor} > budget {budgetMinor}");
        Assert.InRange(gotPart, 500, 532);
        Assert.True(status.LeaseCalls * 1000 / purchases <= 40, $"{status.LeaseCalls} lease calls for {purchases} purchases");

        // Reversals give budget back: the campaign can then grant again (here on the winner's own silo, whose lease
        // the returned budget joined).
        var winners = results.Where((r, i) => granted[i] == bonusMinor).Take(10).ToArray();
        foreach (var winner in winners)
        {
            await Grains.CardGrain(winner.CardId).Reverse(new ReverseMessage("rv-" + winner.TransactionId, winner.TransactionId, winner.CardId, 0, At));
        }
        var again = await Grains.CardGrain(winners[0].CardId).Authorize(new AuthorizeMessage($"race-{run}-again", winners[0].CardId, 200_000, "RUB", 5411, merchant, At));
        Assert.Equal(bonusMinor, again.Breakdown.Where(b => b.Rule == "campaign:" + campaignId).Sum(b => b.AmountMinor));
    }

    [Fact]
    public async Task Eligibility_equals_the_accrual_an_authorization_then_gets()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        await PublishAsync(
            Campaign("elig-fuel-" + run, rateBps: 300, mccs: [5541], perMemberCapMinor: 50_000, merchant: "elig-shop-" + run),
            Campaign("elig-big-" + run, fixedMinor: 2_500, minAmountMinor: 300_000, merchant: "elig-shop-" + run));
        var members = await EnrollAsync("elig-" + run, 5);
        var month = ProgramConfig.Default.MonthOf(At).ToString();
        await Grains.MemberGrain(members[0].Member).ChooseCategories(month, ["supermarkets", "fuel", "restaurants"]);
        var random = new Random(42);
        int[] mccs = [5411, 5541, 5812, 6011, 4829, 5732, 5912];
        for (var i = 0; i < 150; i++)
        {
            var (member, card) = members[random.Next(members.Length)];
            var mcc = mccs[random.Next(mccs.Length)];
            var amount = (long)random.Next(5_000, 800_000);
            var merchant = random.Next(4) == 0 ? "elsewhere" : "elig-shop-" + run;
            var quote = await Grains.MemberGrain(member).Quote(merchant, mcc, amount);
            var posted = await Grains.CardGrain(card).Authorize(new AuthorizeMessage($"elig-{run}-{i}", card, amount, "RUB", mcc, merchant, At));
            Assert.True(quote.ExpectedAccrualMinor == posted.AccruedMinor,
                $"purchase {i} ({amount} at {mcc}) for {member}: quoted {quote.ExpectedAccrualMinor}, accrued {posted.AccruedMinor}");
            Assert.Equal(quote.Breakdown, posted.Breakdown);
        }
    }

    [Fact]
    public async Task Program_change_reaches_every_silo_before_it_takes_effect()
    {
        var program = Grains.GetGrain<IProgramGrain>(IProgramGrain.Key);
        var current = DomainJson.Deserialize<ProgramConfig>((await program.GetVersions())[^1]);
        var stored = DomainJson.Deserialize<ProgramConfig>(await program.SetProgram(DomainJson.Serialize(current with { ReferralBonusMinor = current.ReferralBonusMinor + 1 })));
        Assert.Equal(current.Version + 1, stored.Version);
        Assert.True(stored.EffectiveFrom >= ClusterFixture.Clock.GetUtcNow() + ProgramGrain.PropagationDelay);
        // Every silo's replica picks it up by polling, within the propagation delay (bounded wait, not a fixed sleep).
        var deadline = DateTime.UtcNow + ProgramGrain.PropagationDelay + TimeSpan.FromSeconds(3);
        foreach (var silo in fixture.Cluster.Silos)
        {
            var rules = Services(silo).GetRequiredService<RulesProvider>();
            while (rules.Programs.Current.Version < stored.Version && DateTime.UtcNow < deadline) await Task.Delay(50);
            Assert.Equal(stored.Version, rules.Programs.Current.Version);
        }
    }

    [Fact]
    public async Task Redemption_never_overdraws_and_refund_restores_it()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var (member, card) = (await EnrollAsync("redeem-" + run, 1))[0];
        await Grains.CardGrain(card).Authorize(new AuthorizeMessage($"rd-{run}-a", card, 100_000, "RUB", 5411, "shop", At));
        await Grains.CardGrain(card).Capture(new CaptureMessage($"rd-{run}-c", $"rd-{run}-a", card, 100_000, At, -1, "", "RUB"));
        var over = await Assert.ThrowsAsync<LoyaltyRejectedException>(() => Grains.MemberGrain(member).Redeem($"rd-{run}-x", "partner-1", 1_001));
        Assert.Equal(RejectionCode.FailedPrecondition, over.Code);
        var redeemed = await Grains.MemberGrain(member).Redeem($"rd-{run}-r", "partner-1", 600);
        Assert.Equal((-600L, 400L), (redeemed.AccruedMinor, redeemed.AvailableAfterMinor));
        Assert.True((await Grains.MemberGrain(member).Redeem($"rd-{run}-r", "partner-1", 600)).Duplicate);
        var restored = await Grains.CardGrain(card).Refund(new RefundMessage($"rd-{run}-rr", $"rd-{run}-r", card, 600, At));
        Assert.Equal(1_000, restored.AvailableAfterMinor);
    }

    [Fact]
    public async Task Referral_credits_both_members_once()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var referrer = "ref-a-" + run;
        var referred = "ref-b-" + run;
        await Grains.MemberGrain(referrer).Enroll(false, "", "");
        await Grains.MemberGrain(referred).Enroll(false, referrer, "");
        await Grains.CardGrain("ref-card-" + run).Issue(referred);
        for (var i = 0; i < 2; i++)
        {
            await Grains.CardGrain("ref-card-" + run).Authorize(new AuthorizeMessage($"ref-{run}-{i}", "ref-card-" + run, 100_000, "RUB", 5411, "shop", At));
            await Grains.CardGrain("ref-card-" + run).Capture(new CaptureMessage($"ref-{run}-{i}c", $"ref-{run}-{i}", "ref-card-" + run, 100_000, At, -1, "", "RUB"));
        }
        Assert.Equal(50_000 + 2_000, (await Grains.MemberGrain(referred).GetBalance()).AvailableMinor);
        Assert.Equal(50_000, (await Grains.MemberGrain(referrer).GetBalance()).AvailableMinor);
    }
}
