using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Tests.Domain;

/// <summary>
/// The domain's quote is the authorization's decision: over random programs (tiers, rates, caps, rounding, minimum
/// purchase), campaigns and budgets, a quote after the same housekeeping and with what a reservation would grant equals
/// the accrual of the authorization that follows, line by line (seeded, so a failure reproduces).
/// </summary>
public sealed class QuotePropertyTests
{
    [Theory]
    [InlineData(1)] [InlineData(2)] [InlineData(3)] [InlineData(4)] [InlineData(5)] [InlineData(6)]
    public void Quote_equals_the_accrual_of_the_authorization_that_follows(int seed)
    {
        var random = new Random(seed);
        var now = new DateTimeOffset(2026, 11, 3, 9, 0, 0, TimeSpan.Zero);
        var baseTier = ProgramConfig.Default.Tiers[0];
        var program = ProgramConfig.Default with
        {
            Rounding = random.Next(2) == 0 ? RoundingMode.FloorWholeBonus : RoundingMode.ExactMinor,
            Tiers =
            [
                baseTier with
                {
                    BaseRateBps = random.Next(0, 300), CategoryRateBps = random.Next(300, 1_500), MonthlyCategoryCapMinor = random.Next(1_000, 50_000),
                    MinPurchaseMinor = random.Next(0, 20_000),
                },
            ],
        };
        var programs = ProgramHistory.Of(program);
        var campaigns = Enumerable.Range(0, random.Next(0, 4)).Select(i => new CampaignRule
        {
            CampaignId = $"k{i}", RateBps = random.Next(1, 1_000), FixedBonusMinor = random.Next(2) == 0 ? random.Next(100, 3_000) : 0,
            BudgetMinor = random.Next(2) == 0 ? 0 : random.Next(1, 60_000), MaxMembers = random.Next(3) == 0 ? 1 : 0,
            PerMemberCapMinor = random.Next(2) == 0 ? random.Next(1, 20_000) : 0, Mccs = random.Next(3) == 0 ? [5812] : [],
            StartsAt = now.AddDays(-1), EndsAt = now.AddYears(1), StackingOrder = random.Next(3),
        }).ToArray();
        var budgetLeft = campaigns.ToDictionary(c => c.CampaignId, c => c.BudgetMinor == 0 ? long.MaxValue : c.BudgetMinor);
        var slotsLeft = campaigns.ToDictionary(c => c.CampaignId, c => c.MaxMembers == 0 ? int.MaxValue : (random.Next(2) == 0 ? 0 : c.MaxMembers));
        CampaignGrant[] Grants(List<CampaignClaim> claims, bool take) => [.. claims.Select(claim =>
        {
            var id = claim.Campaign.CampaignId;
            if (claim.NeedsMemberSlot && slotsLeft[id] <= 0) return new CampaignGrant(claim.Campaign, 0);
            var amount = Math.Min(claim.DesiredMinor, budgetLeft[id]);
            if (amount <= 0) return new CampaignGrant(claim.Campaign, 0);
            if (take)
            {
                budgetLeft[id] -= amount;
                if (claim.NeedsMemberSlot) slotsLeft[id]--;
            }
            return new CampaignGrant(claim.Campaign, amount, take && claim.NeedsMemberSlot);
        })];

        var account = new MemberAccount("q");
        var rows = new MemberRows();
        account.Enroll(new EnrollCommand("q", false, "", ""), program, now);
        account.ChooseCategories(new ChooseCategoriesCommand(program.MonthOf(now), [.. program.OfferedCategories.Take(baseTier.CategoriesToChoose)]), programs, now);
        rows.Take(account);
        int[] mccs = [5411, 5812, 5541, 6011, 5912];
        for (var step = 0; step < 300; step++)
        {
            now = now.AddHours(random.Next(1, 72));
            var amount = (long)random.Next(1_000, 400_000);
            var mcc = mccs[random.Next(mccs.Length)];
            // The housekeeping an authorization does first (expiry on touch); the grain's quote does it too.
            account.Touch(program, now);
            foreach (var returned in account.BudgetReturns) budgetLeft[returned.CampaignId] += returned.AmountMinor;
            rows.Take(account);
            var quote = account.Quote(programs, MccCatalogue.Default, amount, mcc, "shop", now,
                Grants(account.PlanCampaigns(programs, MccCatalogue.Default, campaigns, amount, mcc, "shop", now), take: false));
            var auth = account.Authorize(new AuthorizeCommand($"t{step}", "card", amount, "RUB", mcc, "shop", now), programs, MccCatalogue.Default, now,
                Grants(account.PlanCampaigns(programs, MccCatalogue.Default, campaigns, amount, mcc, "shop", now), take: true));
            Assert.True(auth.IsOk, auth.Rejection?.Message);
            Assert.Equal(Describe(quote.Lines), Describe(auth.Value!.Breakdown));
            Assert.Equal(quote.TotalMinor, auth.Value.AccruedMinor);
            rows.Take(account);
            if (random.Next(3) == 0)
            {
                var capture = account.Capture(new CaptureCommand($"c{step}", $"t{step}", "card", amount, now, -1, "", ""), programs, MccCatalogue.Default, now);
                Assert.True(capture.IsOk, capture.Rejection?.Message);
                foreach (var returned in account.BudgetReturns) budgetLeft[returned.CampaignId] += returned.AmountMinor;
                rows.Take(account);
            }
        }
    }

    private static string Describe(IEnumerable<AccrualLine> lines) => string.Join(", ", lines.Where(l => l.AmountMinor != 0).Select(l => $"{l.Rule} {l.AmountMinor}"));
}
