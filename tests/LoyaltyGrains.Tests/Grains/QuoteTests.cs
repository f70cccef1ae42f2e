using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace LoyaltyGrains.Tests.Grains;

/// <summary>
/// CheckEligibility makes the decision Authorize makes: with nothing else in between, the quote equals the accrual
/// of an immediate authorization of the same purchase, campaign lines included — whatever budgets, first-N slots,
/// per-member caps and activations say, on either silo. ListOffers shows the campaign's real spend and members.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class QuoteTests(ClusterFixture fixture)
{
    private IGrainFactory Grains => fixture.Grains;

    private async Task PublishAsync(IEnumerable<CampaignRule> campaigns)
    {
        foreach (var campaign in campaigns) await Grains.CampaignGrain(campaign.CampaignId).Upsert(DomainJson.Serialize(campaign));
        var all = await Grains.GetGrain<ICampaignRegistryGrain>(ICampaignRegistryGrain.Key).GetAll();
        foreach (var silo in fixture.Cluster.Silos) ((InProcessSiloHandle)silo).SiloHost.Services.GetRequiredService<RulesProvider>().InstallCampaigns(all);
    }

    private static string Lines(IEnumerable<BreakdownItem> items) => string.Join(", ", items.Where(i => i.AmountMinor != 0).Select(i => $"{i.Rule} {i.AmountMinor}"));

    [Theory]
    [InlineData(1)] [InlineData(2)] [InlineData(3)] [InlineData(4)] [InlineData(5)]
    public async Task Quote_equals_the_accrual_of_an_immediate_authorization(int seed)
    {
        var random = new Random(seed);
        var run = $"q{seed}-{Guid.NewGuid():N}"[..14];
        var merchant = "quote-shop-" + run;
        var now = ClusterFixture.Clock.GetUtcNow();
        var campaigns = Enumerable.Range(0, random.Next(1, 5)).Select(i => new CampaignRule
        {
            CampaignId = $"{run}-k{i}", PartnerId = "", MerchantIds = [merchant],
            RateBps = random.Next(3) == 0 ? 0 : random.Next(1, 1_000),
            FixedBonusMinor = random.Next(3) == 0 ? random.Next(100, 5_000) : 0,
        }).Select(c => c.RateBps == 0 && c.FixedBonusMinor == 0 ? c with { RateBps = 300 } : c).Select(c => c with
        {
            // Budgets from a few purchases' worth to none; first-N from 1 member to none.
            BudgetMinor = random.Next(3) == 0 ? 0 : random.Next(1, 40_000),
            MaxMembers = random.Next(3) == 0 ? random.Next(1, 4) : 0,
            PerMemberCapMinor = random.Next(3) == 0 ? random.Next(1, 10_000) : 0,
            RequiresActivation = random.Next(4) == 0,
            Mccs = random.Next(4) == 0 ? [5411] : [],
            StackingOrder = random.Next(3),
            StartsAt = now.AddDays(-1), EndsAt = now.AddDays(30),
        }).ToArray();
        await PublishAsync(campaigns);
        var members = Enumerable.Range(0, 6).Select(i => ($"{run}-m{i}", $"{run}-c{i}")).ToArray();
        foreach (var (member, card) in members)
        {
            await Grains.MemberGrain(member).Enroll(false, "", "");
            await Grains.CardGrain(card).Issue(member);
            foreach (var campaign in campaigns.Where(c => c.RequiresActivation && random.Next(2) == 0)) await Grains.MemberGrain(member).ActivateOffer(campaign.CampaignId);
        }

        var earlier = new List<(string Card, string Id)>();
        for (var step = 0; step < 60; step++)
        {
            var (member, card) = members[random.Next(members.Length)];
            if (earlier.Count > 0 && random.Next(6) == 0)
            {
                // A reversal gives budget back, on whichever silo the member lives.
                var (oldCard, oldId) = earlier[random.Next(earlier.Count)];
                try { await Grains.CardGrain(oldCard).Reverse(new ReverseMessage($"{oldId}-v", oldId, oldCard, 0, null)); }
                catch (LoyaltyRejectedException) { }
                continue;
            }
            var amount = (long)random.Next(5_000, 300_000);
            var mcc = random.Next(3) == 0 ? 5812 : 5411;
            var quote = await Grains.MemberGrain(member).Quote(merchant, mcc, amount);
            var id = $"{run}-t{step}";
            var auth = await Grains.CardGrain(card).Authorize(new AuthorizeMessage(id, card, amount, "RUB", mcc, merchant, ClusterFixture.Clock.GetUtcNow()));
            earlier.Add((card, id));
            Assert.True(Lines(quote.Breakdown) == Lines(auth.Breakdown),
                $"step {step}, {member}, {amount} at {mcc}: quoted {quote.ExpectedAccrualMinor} ({Lines(quote.Breakdown)}), authorized {auth.AccruedMinor} ({Lines(auth.Breakdown)})");
            Assert.Equal(auth.AccruedMinor, quote.ExpectedAccrualMinor);
        }
    }

    [Fact]
    public async Task Offers_show_the_budget_spent_and_the_members_joined()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var merchant = "offers-shop-" + run;
        var now = ClusterFixture.Clock.GetUtcNow();
        var campaign = new CampaignRule
        {
            CampaignId = "offers-" + run, PartnerId = "", MerchantIds = [merchant], RateBps = 500, BudgetMinor = 3_000, MaxMembers = 5,
            StartsAt = now.AddDays(-1), EndsAt = now.AddDays(30),
        };
        await PublishAsync([campaign]);
        var (member, card) = ("offers-m-" + run, "offers-c-" + run);
        await Grains.MemberGrain(member).Enroll(false, "", "");
        await Grains.CardGrain(card).Issue(member);
        // 30.00 left of the budget: the quote says what the authorization then earns (R-CAMP-4), then base only.
        var quote = await Grains.MemberGrain(member).Quote(merchant, 5411, 100_000);
        Assert.Equal(4_000, quote.ExpectedAccrualMinor);
        Assert.Equal(4_000, (await Grains.CardGrain(card).Authorize(new AuthorizeMessage("o1-" + run, card, 100_000, "RUB", 5411, merchant, now))).AccruedMinor);
        Assert.Equal(1_000, (await Grains.MemberGrain(member).Quote(merchant, 5411, 100_000)).ExpectedAccrualMinor);

        var listing = await Grains.MemberGrain(member).ListOffers();
        var index = Array.FindIndex(listing.CampaignsJson, json => DomainJson.Deserialize<CampaignRule>(json).CampaignId == campaign.CampaignId);
        Assert.Equal(new OfferUsage(3_000, 1), listing.Usage[index]);
    }
}
