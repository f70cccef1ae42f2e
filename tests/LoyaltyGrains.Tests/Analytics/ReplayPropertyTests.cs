using System.Collections.Frozen;
using System.Diagnostics;
using CsCheck;
using LoyaltyGrains.Analytics.Replay;
using LoyaltyGrains.Domain;
using Xunit.Abstractions;

namespace LoyaltyGrains.Tests.Analytics;

/// <summary>
/// Property: for random valid programmes and campaigns and random purchase histories of several members, the what-if
/// replay of the programme in force prices every accrual row (capture, force post, refund) exactly as the live engine
/// did — the same total and the same lines, to the kopeck. The live side is <see cref="MemberAccount"/>, the code the
/// member grain runs, with campaign budgets and first-N slots counted as the leases count them.
/// </summary>
/// <remarks>
/// Deterministic: the cases come from a fixed CsCheck seed, one case seed after another; a failure names its case seed,
/// and <c>Check.Sample(Cases, c =&gt; AssertReplayEqualsLive(c), seed: "&lt;case seed&gt;", iter: 1)</c> reproduces it (and
/// CsCheck shrinks from there).
/// </remarks>
public sealed class ReplayPropertyTests(ITestOutputHelper output)
{
    /// <summary>The run's fixed seed (CsCheck's PCG): stream and state.</summary>
    private const int SeedStream = 21;
    private const ulong SeedState = 0x5EED_2026_1208UL;
    private const int CaseCount = 500;

    private static readonly DateTimeOffset Start = new(2026, 9, 1, 7, 0, 0, TimeSpan.Zero);
    private static readonly string[] Merchants = ["shop", "ozon", "cafe-1"];

    /// <summary>MCCs of the catalogue: chosen-category ones, plain ones, unlisted (other) and excluded ones.</summary>
    private static readonly int[] Mccs = [5411, 5411, 5812, 5814, 5541, 4121, 5912, 5732, 4511, 7832, 1, 6011, 4829, 7995];

    private static readonly string[] Categories =
        [.. Mccs.Select(MccCatalogue.Default.CategoryOf).Where(c => MccCatalogue.Default.Categories.Contains(c) && !MccCatalogue.IsExcludedCategory(c)).Distinct()];

    [Fact]
    public void The_replay_of_the_programme_in_force_accrues_what_the_live_engine_accrued_row_by_row()
    {
        var clock = Stopwatch.StartNew();
        var pcg = new PCG(SeedStream, SeedState);
        output.WriteLine($"CsCheck seed {pcg}, {CaseCount} cases");
        var coverage = new Coverage();
        for (var i = 0; i < CaseCount; i++)
        {
            var caseSeed = pcg.ToString();
            var generated = Cases.Generate(pcg, null, out _);
            try
            {
                coverage.Add(AssertReplayEqualsLive(generated));
            }
            catch (Exception failure)
            {
                throw new Xunit.Sdk.XunitException($"case {i} (CsCheck seed {caseSeed}): {failure.Message}\n{Describe(generated)}");
            }
        }
        output.WriteLine($"{coverage} in {clock.Elapsed.TotalSeconds:0.0} s");
        // The generator must reach every rule the replay mirrors, or a passing run proves little.
        Assert.True(coverage.AccrualRows > 5_000, coverage.ToString());
        Assert.True(coverage.Refunds > 500 && coverage.PartialCaptures > 200 && coverage.Reversals > 200 && coverage.ExpiredPending > 50, coverage.ToString());
        Assert.True(coverage.CategoryLines > 500 && coverage.CampaignLines > 300 && coverage.PartnerLines > 50 && coverage.RoundingLines > 200, coverage.ToString());
        Assert.True(coverage.BudgetParts > 20 && coverage.RefusedClaims > 20 && coverage.TierMonthsAboveEntry > 50 && coverage.PremiumMembers > 50, coverage.ToString());
        Assert.True(coverage.CapsReached > 50, coverage.ToString());
    }

    /// <summary>Runs the case through the live engine, then replays each member's rows, and compares every accrual row.</summary>
    private static Coverage AssertReplayEqualsLive(Case c)
    {
        var budgets = new CampaignBook(c.Campaigns);
        var live = EngineLedger.InMemory(c.Program, budgets);
        Run(c, live);
        var coverage = new Coverage { PartGrants = budgets.PartGrants, Refused = budgets.RefusedClaims };
        coverage.Count(live.All, c);
        foreach (var member in live.All.GroupBy(e => e.MemberId, StringComparer.Ordinal))
        {
            var replay = new MemberReplay(c.Program, MccCatalogue.Default, firstCompleteMonth: 0);
            foreach (var entry in member.OrderBy(e => e.Sequence))
            {
                if (replay.Apply(EngineLedger.Row(entry)) is not { } replayed) continue;
                coverage.AccrualRows++;
                if (replayed.Carried) throw new InvalidOperationException($"{entry.MessageId} ({entry.Kind}) was carried at its actual figure, not priced");
                var liveLines = Lines(entry.Breakdown);
                var replayLines = Lines(replayed.CandidateLines);
                if (replayed.CandidateMinor != entry.AvailableDeltaMinor || !liveLines.SequenceEqual(replayLines))
                {
                    throw new InvalidOperationException($"{entry.MemberId} #{entry.Sequence} {entry.Kind} {entry.MessageId}: live {entry.AvailableDeltaMinor} "
                        + $"[{string.Join(", ", liveLines)}], replay {replayed.CandidateMinor} [{string.Join(", ", replayLines)}]");
                }
            }
        }
        return coverage;
    }

    private static (string Rule, long AmountMinor, string PartnerId)[] Lines(IEnumerable<AccrualLine> lines) =>
        [.. lines.Where(l => l.AmountMinor != 0).Select(l => (l.Rule, l.AmountMinor, l.PartnerId))];

    /// <summary>The live engine, message by message: what a processor, a member and the sweep would send.</summary>
    private static void Run(Case c, EngineLedger live)
    {
        var now = Start;
        var ids = c.Members.Select((_, i) => $"m{i}").ToArray();
        var open = ids.ToDictionary(id => id, _ => new List<(string Id, long Amount)>());
        var captured = ids.ToDictionary(id => id, _ => new List<(string Id, long Amount, long Refunded)>());
        for (var i = 0; i < ids.Length; i++)
        {
            live.Enroll(ids[i], now, c.Members[i].Premium, c.Members[i].EnrolTier < 0 ? "" : c.Program.Tiers[c.Members[i].EnrolTier % c.Program.Tiers.Count].TierId);
        }
        for (var s = 0; s < c.Steps.Length; s++)
        {
            var step = c.Steps[s];
            now = now.AddMinutes(step.Minutes);
            var member = ids[step.Member % ids.Length];
            var id = $"{member}-{s}";
            var mcc = Mccs[step.Mcc % Mccs.Length];
            var merchant = Merchants[step.Merchant % Merchants.Length];
            switch (step.Kind)
            {
                case Op.Authorize:
                    if (live.Authorize(member, id, step.Amount, mcc, now, c.Campaigns, merchant)) open[member].Add((id, step.Amount));
                    break;
                case Op.Capture or Op.CapturePart or Op.CaptureOver when open[member].Count > 0:
                {
                    var (authorization, authorized) = open[member][step.Pick % open[member].Count];
                    var amount = step.Kind switch
                    {
                        Op.CapturePart => Math.Max(1, authorized * (step.Fraction % 99 + 1) / 100),
                        Op.CaptureOver => authorized + Money.ApplyBps(authorized, c.Program.CaptureMarginBps * (step.Fraction % 100) / 100),
                        _ => authorized,
                    };
                    if (live.Capture(member, id, authorization, amount, now)) captured[member].Add((authorization, amount, 0));
                    open[member].RemoveAll(o => o.Id == authorization);
                    break;
                }
                case Op.ForcePost:
                    if (live.ForcePost(member, id, step.Amount, mcc, now, c.Campaigns, merchant)) captured[member].Add((id, step.Amount, 0));
                    break;
                case Op.Reverse or Op.ReversePart when open[member].Count > 0:
                {
                    var index = step.Pick % open[member].Count;
                    var (authorization, authorized) = open[member][index];
                    var part = step.Kind == Op.Reverse ? 0 : Math.Max(1, authorized * (step.Fraction % 90 + 1) / 100);
                    if (live.Reverse(member, id, authorization, part, now) && part > 0) open[member][index] = (authorization, authorized - part);
                    if (part == 0 || part == authorized) open[member].RemoveAt(index);
                    break;
                }
                case Op.RefundPart or Op.RefundRest when captured[member].Count > 0:
                {
                    var index = step.Pick % captured[member].Count;
                    var (purchase, amount, refunded) = captured[member][index];
                    var refund = step.Kind == Op.RefundRest ? amount - refunded : Math.Max(1, (amount - refunded) * (step.Fraction % 60 + 1) / 100);
                    if (live.Refund(member, id, purchase, refund, now)) refunded += refund;
                    if (refunded >= amount) captured[member].RemoveAt(index);
                    else captured[member][index] = (purchase, amount, refunded);
                    break;
                }
                case Op.Choose:
                {
                    var month = c.Program.MonthOf(now);
                    var account = live.Member(member);
                    var allowed = account.TierFor(c.Program, month).CategoriesToChooseFor(account.State.Premium);
                    var offered = c.Program.OfferedCategories;
                    var chosen = Enumerable.Range(0, offered.Count).Where(k => (step.Fraction >> k & 1) == 1).Select(k => offered[k]).Take(allowed).ToArray();
                    live.Choose(member, month, now, chosen);
                    break;
                }
                case Op.Activate when c.Campaigns.Length > 0:
                    live.Activate(member, c.Campaigns[step.Pick % c.Campaigns.Length], now);
                    break;
                case Op.Redeem:
                    live.Redeem(member, id, Math.Max(1, step.Amount / 50), now);
                    break;
                default:
                    live.Touch(member, now);
                    break;
            }
        }
    }

    private enum Op
    {
        Authorize, Capture, CapturePart, CaptureOver, ForcePost, Reverse, ReversePart, RefundPart, RefundRest, Choose, Activate, Redeem, Touch,
    }

    private readonly record struct Step(Op Kind, int Member, long Amount, int Mcc, int Merchant, int Pick, int Fraction, int Minutes);

    private sealed record MemberSpec(bool Premium, int EnrolTier);

    private sealed record Case(ProgramConfig Program, CampaignRule[] Campaigns, MemberSpec[] Members, Step[] Steps);

    private static readonly Gen<Op> Ops = Gen.Frequency(
        (14, Gen.Const(Op.Authorize)), (7, Gen.Const(Op.Capture)), (3, Gen.Const(Op.CapturePart)), (2, Gen.Const(Op.CaptureOver)),
        (5, Gen.Const(Op.ForcePost)), (2, Gen.Const(Op.Reverse)), (2, Gen.Const(Op.ReversePart)), (3, Gen.Const(Op.RefundPart)),
        (2, Gen.Const(Op.RefundRest)), (6, Gen.Const(Op.Choose)), (1, Gen.Const(Op.Activate)), (1, Gen.Const(Op.Redeem)), (2, Gen.Const(Op.Touch)));

    // Minutes between messages: mostly minutes to hours, sometimes days, so histories cross several programme months and
    // authorizations outlive the hold.
    private static readonly Gen<int> Gaps = Gen.Frequency((6, Gen.Int[1, 600]), (3, Gen.Int[600, 2 * 24 * 60]), (1, Gen.Int[2 * 24 * 60, 12 * 24 * 60]));

    private static readonly Gen<long> Amounts = Gen.Frequency((1, Gen.Long[1, 20_000]), (6, Gen.Long[20_000, 800_000]), (1, Gen.Long[800_000, 6_000_000]));

    private static readonly Gen<Step> Steps =
        from kind in Ops
        from member in Gen.Int[0, 7]
        from amount in Amounts
        from mcc in Gen.Int[0, Mccs.Length - 1]
        from merchant in Gen.Int[0, Merchants.Length - 1]
        from pick in Gen.Int[0, 1_000]
        from fraction in Gen.Int[0, 1 << 12]
        from minutes in Gaps
        select new Step(kind, member, amount, mcc, merchant, pick, fraction, minutes);

    private static readonly Gen<TierRule> TierShapes =
        from baseRate in Gen.Int[0, 300]
        from categoryExtra in Gen.Int[0, 1_200]
        from choose in Gen.Int[0, 4]
        from premiumExtra in Gen.Int[0, 2]
        from cap in Gen.Long[0, 120_000]
        from premiumCap in Gen.Frequency((1, Gen.Const(0L)), (2, Gen.Long[0, 200_000]))
        from minPurchase in Gen.Frequency((1, Gen.Const(0L)), (3, Gen.Long[0, 30_000]))
        select new TierRule("t", 0, baseRate, baseRate + categoryExtra, choose, cap, minPurchase, premiumExtra, premiumCap);

    private static readonly Gen<ProgramConfig> Programs =
        from shapes in TierShapes.Array[1, 4]
        from steps in Gen.Long[1, 1_500_000].Array[3]
        from maxAccrual in Gen.Frequency((2, Gen.Const(Limits.RateBpsMax)), (3, Gen.Int[300, 3_000]))
        from rounding in Gen.Bool.Select(floor => floor ? RoundingMode.FloorWholeBonus : RoundingMode.ExactMinor)
        from offeredMask in Gen.Int[1, (1 << Categories.Length) - 1]
        from overrides in Gen.Select(Gen.Int[0, Categories.Length - 1], Gen.Int[0, 2_500]).Array[0, 2]
        from excluded in Gen.Int[0, Mccs.Length - 1].Array[0, 2]
        from premiumFloor in Gen.Int[-1, 3]
        from offset in Gen.Frequency((2, Gen.Const(ProgramCalendar.DefaultUtcOffsetMinutes)), (1, Gen.Int[Limits.UtcOffsetMinutesMin, Limits.UtcOffsetMinutesMax]))
        from holdDays in Gen.Frequency((3, Gen.Int[15, 40]), (1, Gen.Int[1, 5]))
        from margin in Gen.Int[1, 3_000]
        select MakeProgram(shapes, steps, maxAccrual, rounding, offeredMask, overrides, excluded, premiumFloor, offset, holdDays, margin);

    private static ProgramConfig MakeProgram(TierRule[] shapes, long[] steps, int maxAccrual, RoundingMode rounding, int offeredMask,
        (int Category, int Rate)[] overrides, int[] excluded, int premiumFloor, int offset, int holdDays, int margin)
    {
        var threshold = 0L;
        var tiers = new TierRule[shapes.Length];
        for (var i = 0; i < shapes.Length; i++)
        {
            if (i > 0) threshold += steps[i - 1];
            var shape = shapes[i];
            var baseRate = Math.Min(shape.BaseRateBps, maxAccrual);
            tiers[i] = shape with
            {
                TierId = $"tier{i}", MinMonthlySpendMinor = threshold, BaseRateBps = baseRate,
                CategoryRateBps = Math.Clamp(shape.CategoryRateBps, baseRate, maxAccrual),
            };
        }
        var program = new ProgramConfig
        {
            Tiers = tiers,
            OfferedCategories = [.. Categories.Where((_, k) => (offeredMask >> k & 1) == 1)],
            CategoryRateOverridesBps = overrides.GroupBy(o => Categories[o.Category]).ToFrozenDictionary(g => g.Key, g => Math.Min(g.First().Rate, maxAccrual)),
            ExcludedMccs = [.. excluded.Select(k => Mccs[k]).Distinct()],
            Currencies = ["RUB"],
            Rounding = rounding,
            MaxAccrualRateBps = maxAccrual,
            PremiumMinimumTierId = premiumFloor < 0 ? "" : tiers[premiumFloor % tiers.Length].TierId,
            UtcOffsetMinutes = offset,
            AuthorizationHoldDays = holdDays,
            CaptureMarginBps = margin,
            ReferralBonusMinor = 0,
        };
        var errors = program.Validate(MccCatalogue.Default);
        return errors.Count == 0 ? program : throw new InvalidOperationException("generated an invalid programme: " + string.Join("; ", errors));
    }

    private static Gen<CampaignRule> CampaignsOf(int index) =>
        from rate in Gen.Frequency((1, Gen.Const(0)), (4, Gen.Int[1, 2_000]))
        from fixedBonus in Gen.Frequency((3, Gen.Const(0L)), (1, Gen.Long[1, 5_000]))
        from minAmount in Gen.Frequency((2, Gen.Const(0L)), (1, Gen.Long[1, 100_000]))
        from filter in Gen.Int[0, 3]
        from filterPick in Gen.Int[0, 100]
        from budget in Gen.Frequency((1, Gen.Const(0L)), (2, Gen.Long[1, 40_000]))
        from maxMembers in Gen.Frequency((2, Gen.Const(0)), (1, Gen.Int[1, 3]))
        from perMemberCap in Gen.Frequency((1, Gen.Const(0L)), (1, Gen.Long[1, 15_000]))
        from minTier in Gen.Int[-2, 3]
        from activation in Gen.Frequency((4, Gen.Const(false)), (1, Gen.Const(true)))
        from stacking in Gen.Int[-2, 2]
        from partner in Gen.Int[0, 2]
        from startDays in Gen.Int[-10, 40]
        from lengthDays in Gen.Int[5, 150]
        select new CampaignRule
        {
            CampaignId = $"c{index}", RateBps = rate == 0 && fixedBonus == 0 ? 100 : rate, FixedBonusMinor = fixedBonus, MinAmountMinor = minAmount,
            Categories = filter == 1 ? [Categories[filterPick % Categories.Length]] : [],
            Mccs = filter == 2 ? [Mccs[filterPick % Mccs.Length]] : [],
            MerchantIds = filter == 3 ? [Merchants[filterPick % Merchants.Length]] : [],
            BudgetMinor = budget, MaxMembers = maxMembers, PerMemberCapMinor = perMemberCap,
            MinTier = minTier < 0 ? "" : $"tier{minTier}", RequiresActivation = activation, StackingOrder = stacking,
            PartnerId = partner == 0 ? "" : $"partner-{partner}",
            StartsAt = Start.AddDays(startDays), EndsAt = Start.AddDays(startDays + lengthDays),
        };

    private static readonly Gen<CampaignRule[]> CampaignSets =
        from count in Gen.Int[0, 4]
        from campaigns in Gen.Select(CampaignsOf(0), CampaignsOf(1), CampaignsOf(2), CampaignsOf(3))
        select new[] { campaigns.Item1, campaigns.Item2, campaigns.Item3, campaigns.Item4 }.Take(count).ToArray();

    private static readonly Gen<Case> Cases =
        from program in Programs
        from campaigns in CampaignSets
        from members in Gen.Select(Gen.Frequency((3, Gen.Const(false)), (1, Gen.Const(true))), Gen.Frequency((4, Gen.Const(-1)), (1, Gen.Int[0, 3])),
            (premium, tier) => new MemberSpec(premium, tier)).Array[2, 5]
        from steps in Steps.Array[40, 160]
        select new Case(program, [.. campaigns.Where(k => k.MinTier.Length == 0 || program.FindTier(k.MinTier) is not null)], members, steps);

    private static string Describe(Case c) =>
        $"programme: {System.Text.Json.JsonSerializer.Serialize(c.Program)}\ncampaigns: {System.Text.Json.JsonSerializer.Serialize(c.Campaigns)}\n"
        + $"members: {string.Join(", ", c.Members)}\nsteps: {string.Join(" ", c.Steps.Select(s => $"{s.Kind}:{s.Member}:{s.Amount}"))}";

    /// <summary>How much of the rules a run reached, summed over its cases.</summary>
    private sealed class Coverage
    {
        public int AccrualRows, Refunds, PartialCaptures, Reversals, ExpiredPending, CategoryLines, CampaignLines, PartnerLines, RoundingLines;
        public int BudgetParts, RefusedClaims, TierMonthsAboveEntry, PremiumMembers, CapsReached, PartGrants, Refused;

        public void Count(IReadOnlyList<LedgerEntry> entries, Case c)
        {
            BudgetParts += PartGrants;
            RefusedClaims += Refused;
            PremiumMembers += c.Members.Count(m => m.Premium);
            foreach (var entry in entries)
            {
                switch (entry.Kind)
                {
                    case EntryKind.Refund: Refunds++; break;
                    case EntryKind.Reverse or EntryKind.ReverseApplied: Reversals++; break;
                    case EntryKind.ExpirePending: ExpiredPending++; break;
                    case EntryKind.TierAssigned when entry.Detail != c.Program.Tiers[0].TierId: TierMonthsAboveEntry++; break;
                }
                if (entry.Kind is EntryKind.Capture or EntryKind.ForcePost or EntryKind.Refund)
                {
                    CategoryLines += entry.Breakdown.Count(l => l.IsCategoryLine && l.AmountMinor != 0);
                    CampaignLines += entry.Breakdown.Count(l => l.Rule.StartsWith(CampaignRule.RulePrefix, StringComparison.Ordinal) && l.AmountMinor != 0);
                    PartnerLines += entry.Breakdown.Count(l => l.PartnerId.Length > 0 && l.AmountMinor != 0);
                    RoundingLines += entry.Breakdown.Count(l => l.Rule == AccrualLine.RoundingRule && l.AmountMinor != 0);
                }
            }
            var purchases = entries.Where(e => e.Kind == EntryKind.Authorize).ToDictionary(e => e.PurchaseId, e => e.AmountMinor);
            PartialCaptures += entries.Count(e => e.Kind == EntryKind.Capture && purchases.TryGetValue(e.PurchaseId, out var authorized) && e.AmountMinor != authorized);
            foreach (var member in entries.GroupBy(e => e.MemberId))
            {
                // A month whose cap was reached: its category cap use equals the tier's cap at some point.
                var used = new Dictionary<int, long>();
                foreach (var entry in member)
                {
                    if (entry.PurchaseMonth == 0 || entry.CategoryCapDeltaMinor == 0) continue;
                    used[entry.PurchaseMonth] = used.GetValueOrDefault(entry.PurchaseMonth) + entry.CategoryCapDeltaMinor;
                    if (entry.CategoryCapDeltaMinor > 0 && c.Program.Tiers.Any(t => t.MonthlyCategoryCapMinor > 0 && used[entry.PurchaseMonth] == t.CategoryCapFor(c.Members[int.Parse(member.Key[1..])].Premium))) CapsReached++;
                }
            }
        }

        public void Add(Coverage other)
        {
            AccrualRows += other.AccrualRows; Refunds += other.Refunds; PartialCaptures += other.PartialCaptures; Reversals += other.Reversals;
            ExpiredPending += other.ExpiredPending; CategoryLines += other.CategoryLines; CampaignLines += other.CampaignLines;
            PartnerLines += other.PartnerLines; RoundingLines += other.RoundingLines; BudgetParts += other.BudgetParts;
            RefusedClaims += other.RefusedClaims; TierMonthsAboveEntry += other.TierMonthsAboveEntry; PremiumMembers += other.PremiumMembers;
            CapsReached += other.CapsReached;
        }

        public override string ToString() =>
            $"{AccrualRows} accrual rows equal; refunds {Refunds}, partial/over captures {PartialCaptures}, reversals {Reversals}, expired authorizations {ExpiredPending}, "
            + $"category lines {CategoryLines}, campaign lines {CampaignLines} (partner {PartnerLines}), rounding lines {RoundingLines}, "
            + $"budget parts {BudgetParts}, claims refused (budget/first-N) {RefusedClaims}, tier months above entry {TierMonthsAboveEntry}, "
            + $"premium members {PremiumMembers}, caps reached {CapsReached}";
    }
}
