using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Tests.Domain;

/// <summary>
/// Random sequences with campaigns, redemptions and months passing (seeded): budgets and per-member caps are never
/// exceeded, lots always sum to the available balance, expiry never takes a lot before its date, breakdowns sum.
/// </summary>
public sealed class ProgramPropertyTests
{
    [Theory]
    [InlineData(11)] [InlineData(12)] [InlineData(13)] [InlineData(14)] [InlineData(15)] [InlineData(16)]
    public void Campaign_budgets_caps_and_expiry_hold_over_random_sequences(int seed)
    {
        var random = new Random(seed);
        var now = new DateTimeOffset(2026, 1, 5, 9, 0, 0, TimeSpan.Zero);
        var program = ProgramConfig.Default with { ExpiryMonths = 2 };
        var programs = ProgramHistory.Of(program);
        CampaignRule[] campaigns =
        [
            new() { CampaignId = "budget", RateBps = 700, BudgetMinor = 40_000, StartsAt = now, EndsAt = now.AddYears(2) },
            new() { CampaignId = "capped", FixedBonusMinor = 1_500, PerMemberCapMinor = 9_000, Mccs = [5411, 5812], StartsAt = now, EndsAt = now.AddYears(2) },
        ];
        var budgetLeft = 40_000L;
        var account = new MemberAccount("p");
        var ledger = new List<LedgerEntry>();
        account.Enroll(new EnrollCommand("p", seed % 2 == 0, "", ""), program, now);
        ledger.AddRange(account.Uncommitted);
        account.ClearUncommitted();
        var ids = new List<string>();
        int[] mccs = [5411, 5812, 5541, 6011, 4829];

        for (var step = 0; step < 500; step++)
        {
            now = now.AddHours(random.Next(1, 24 * 6));
            var id = $"t{step}";
            var amount = (long)random.Next(1_000, 600_000);
            var target = ids.Count == 0 ? "none" : ids[random.Next(ids.Count)];
            switch (random.Next(7))
            {
                case 0 or 1 or 2:
                {
                    var mcc = mccs[random.Next(mccs.Length)];
                    var claims = account.PlanCampaigns(programs, MccCatalogue.Default, campaigns, amount, mcc, "shop", now);
                    var grants = claims.Select(c =>
                    {
                        var granted = c.Campaign.BudgetMinor == 0 ? c.DesiredMinor : Math.Min(c.DesiredMinor, budgetLeft);
                        if (c.Campaign.BudgetMinor > 0) budgetLeft -= granted;
                        return new CampaignGrant(c.Campaign, granted);
                    }).ToArray();
                    var result = account.Authorize(new AuthorizeCommand(id, "card", amount, "RUB", mcc, "shop", now), programs, MccCatalogue.Default, now, grants);
                    if (!result.IsOk) budgetLeft += grants.Where(g => g.Campaign.BudgetMinor > 0).Sum(g => g.GrantedMinor);
                    ids.Add(id);
                    break;
                }
                case 3:
                    account.Capture(new CaptureCommand(id, target, "card", amount / 2 + random.Next(0, (int)(amount / 2)), now, -1, "", "RUB"), programs, MccCatalogue.Default, now);
                    break;
                case 4:
                    account.Refund(new RefundCommand(id, target, "card", amount / 5, now), programs, now);
                    break;
                case 5:
                    account.Reverse(new ReverseCommand(id, target, "card", random.Next(2) == 0 ? 0 : amount / 3, now), programs, now);
                    break;
                default:
                    account.Redeem(new RedeemCommand(id, "partner", random.Next(1, 3_000)), programs, now);
                    break;
            }
            foreach (var returned in account.BudgetReturns)
            {
                if (returned.CampaignId == "budget") budgetLeft += returned.AmountMinor;
            }
            // A sweep: it must write off exactly the lots past their date, nothing younger.
            var dueMinor = account.State.Lots.Where(l => l.ExpiresAt <= now).Sum(l => l.AmountMinor);
            var countBefore = account.Uncommitted.Count;
            account.ExpireLots(now);
            Assert.Equal(dueMinor, account.Uncommitted.Skip(countBefore).Where(e => e.Kind == EntryKind.ExpireLots).Sum(e => e.AmountMinor));
            Assert.All(account.State.Lots, l => Assert.True(l.ExpiresAt > now, $"lot of {l.AmountMinor} due {l.ExpiresAt:O} left at {now:O}"));
            foreach (var entry in account.Uncommitted) Assert.Equal(entry.AccruedMinor, entry.Breakdown.Sum(l => l.AmountMinor));
            ledger.AddRange(account.Uncommitted);
            account.ClearUncommitted();

            var state = account.State;
            Assert.InRange(budgetLeft, 0, 40_000);
            Assert.Equal(40_000 - budgetLeft, state.CampaignAccrued?.GetValueOrDefault("budget") ?? 0);
            Assert.InRange(state.CampaignAccrued?.GetValueOrDefault("capped") ?? 0, 0, 9_000);
            Assert.Equal(Math.Max(0, state.AvailableMinor), state.Lots.Sum(l => l.AmountMinor));
            Assert.All(state.Lots, l => Assert.True(l.AmountMinor > 0));
            Assert.True(state.Lots.Zip(state.Lots.Skip(1)).All(p => p.First.ExpiresAt <= p.Second.ExpiresAt), "lots out of order");
            Assert.Equal(ledger.Sum(e => e.AvailableDeltaMinor), state.AvailableMinor);
        }
        var replica = new MemberAccount("p");
        foreach (var entry in ledger) replica.Apply(entry);
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(account.State), System.Text.Json.JsonSerializer.Serialize(replica.State));
    }
}
