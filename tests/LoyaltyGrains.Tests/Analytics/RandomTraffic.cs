using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Tests.Analytics;

/// <summary>
/// Seeded random traffic over three months through the engine's decisions: enrolments (some premium), chosen
/// categories each month, authorizations with partial and over-captures, force posts, partial and full reversals,
/// expired authorizations (some captured late), partial and full refunds (some of purchases captured weeks before),
/// redemptions, two campaigns (one partner-funded) and a maximum accrual rate that trims them, caps small enough to be
/// reached, and tiers that members move between.
/// </summary>
public static class RandomTraffic
{
    public static readonly DateTimeOffset Start = new(2026, 8, 1, 6, 0, 0, TimeSpan.Zero);

    private static readonly int[] Mccs = [5411, 5411, 5812, 5541, 5912, 4121, 5732, 6011];
    private static readonly string[] Choices = ["supermarkets", "restaurants", "fuel", "pharmacy", "taxi"];

    public static ProgramConfig Program { get; } = ProgramConfig.Default with
    {
        Tiers =
        [
            ProgramConfig.Default.Tiers[0] with { MonthlyCategoryCapMinor = 40_000, PremiumMonthlyCategoryCapMinor = 60_000 },
            ProgramConfig.Default.Tiers[1] with { MinMonthlySpendMinor = 400_000, MonthlyCategoryCapMinor = 60_000 },
            ProgramConfig.Default.Tiers[2] with { MinMonthlySpendMinor = 1_500_000 },
        ],
        MaxAccrualRateBps = 1_200,
    };

    public static IReadOnlyList<CampaignRule> Campaigns { get; } =
    [
        new CampaignRule
        {
            CampaignId = "grocery-boost", RateBps = 300, Categories = ["supermarkets"], PerMemberCapMinor = 6_000,
            StartsAt = Start, EndsAt = Start.AddDays(120), StackingOrder = 1,
        },
        new CampaignRule
        {
            CampaignId = "cafe-club", PartnerId = "cafe-partner", FixedBonusMinor = 1_500, RateBps = 200, MinAmountMinor = 50_000,
            Categories = ["restaurants"], StartsAt = Start, EndsAt = Start.AddDays(120), StackingOrder = 2,
        },
    ];

    public static void Generate(EngineLedger ledger, int members, int steps, int seed)
    {
        var random = new Random(seed);
        var ids = Enumerable.Range(0, members).Select(i => $"m{i:000}").ToArray();
        var open = ids.ToDictionary(id => id, _ => new List<(string Id, long Amount)>());
        var captured = ids.ToDictionary(id => id, _ => new List<(string Id, long Amount)>());
        var chosenMonth = ids.ToDictionary(id => id, _ => 0);
        var enrolled = new HashSet<string>();
        var now = Start;
        for (var step = 0; step < steps; step++)
        {
            now = now.AddMinutes(random.Next(5, 90 * 24 * 60 * 2 / steps));
            var member = ids[random.Next(ids.Length)];
            if (enrolled.Add(member))
            {
                ledger.Enroll(member, now, premium: random.Next(5) == 0, tier: random.Next(10) == 0 ? "silver" : "");
            }
            var month = ledger.Program.MonthOf(now);
            if (chosenMonth[member] != month.Value && random.Next(4) != 0)
            {
                var allowed = ledger.Member(member).TierFor(ledger.Program, month).CategoriesToChooseFor(ledger.Member(member).State.Premium);
                var categories = Choices.OrderBy(_ => random.Next()).Take(Math.Min(allowed, random.Next(1, 4))).ToArray();
                if (ledger.Choose(member, month, now, categories)) chosenMonth[member] = month.Value;
            }
            var id = $"{member}-t{step}";
            var amount = (long)random.Next(5_000, 600_000);
            var mcc = Mccs[random.Next(Mccs.Length)];
            switch (random.Next(20))
            {
                case < 7:
                    if (ledger.Authorize(member, id, amount, mcc, now, Campaigns)) open[member].Add((id, amount));
                    break;
                case < 12 when open[member].Count > 0:
                {
                    var (authorization, authorized) = open[member][random.Next(open[member].Count)];
                    // Mostly the amount authorized; sometimes less (fuel), sometimes a tip within the capture margin.
                    var capture = random.Next(4) switch { 0 => authorized * random.Next(60, 100) / 100, 1 => authorized + authorized / 10, _ => authorized };
                    if (ledger.Capture(member, id, authorization, Math.Max(1, capture), now)) captured[member].Add((authorization, Math.Max(1, capture)));
                    open[member].RemoveAll(o => o.Id == authorization);
                    break;
                }
                case < 14:
                    if (ledger.ForcePost(member, id, amount, mcc, now, Campaigns)) captured[member].Add((id, amount));
                    break;
                case 14 when open[member].Count > 0:
                {
                    var (authorization, authorized) = open[member][random.Next(open[member].Count)];
                    var part = random.Next(2) == 0 ? 0 : authorized / 3;
                    ledger.Reverse(member, id, authorization, part, now);
                    if (part == 0) open[member].RemoveAll(o => o.Id == authorization);
                    break;
                }
                case 15 or 16 when captured[member].Count > 0:
                {
                    var (purchase, capturedAmount) = captured[member][random.Next(captured[member].Count)];
                    ledger.Refund(member, id, purchase, random.Next(3) == 0 ? capturedAmount : capturedAmount / 4 + 1, now);
                    break;
                }
                case 17:
                    ledger.Redeem(member, id, random.Next(100, 3_000), now);
                    break;
                default:
                    ledger.Touch(member, now);
                    break;
            }
        }
    }
}
