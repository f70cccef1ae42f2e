using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Tests.Domain;

/// <summary>
/// Invariants over random message sequences (seeded, so a failure reproduces): breakdowns sum to the accrual, the
/// category cap is never exceeded, excluded MCCs never earn, refunds never claw back more than was accrued, balances
/// equal the sums of the ledger, and a replay rebuilds the same member.
/// </summary>
public sealed class LifecyclePropertyTests
{
    private static readonly int[] Mccs = [5411, 5812, 5541, 5732, 4111, 6011, 4829, 9311, 7995, 5912];

    [Theory]
    [InlineData(1)] [InlineData(2)] [InlineData(3)] [InlineData(4)] [InlineData(5)]
    [InlineData(6)] [InlineData(7)] [InlineData(8)] [InlineData(9)] [InlineData(10)]
    public void Random_sequences_keep_every_invariant(int seed)
    {
        var random = new Random(seed);
        var program = ProgramConfig.Default with
        {
            Rounding = seed % 2 == 0 ? RoundingMode.FloorWholeBonus : RoundingMode.ExactMinor,
            Tiers = [ProgramConfig.Default.Tiers[0] with { MonthlyCategoryCapMinor = 20_000 }],
        };
        var programs = ProgramHistory.Of(program);
        var now = new DateTimeOffset(2026, 11, 3, 9, 0, 0, TimeSpan.Zero);
        var account = new MemberAccount("p");
        var ledger = new List<LedgerEntry>();
        void Take() { ledger.AddRange(account.Uncommitted); account.ClearUncommitted(); }

        account.Enroll(new EnrollCommand("p", false, "", ""), program, now);
        account.ChooseCategories(new ChooseCategoriesCommand(program.MonthOf(now), ["supermarkets", "restaurants", "fuel"]), programs, now);
        Take();
        var ids = new List<string>();
        var accepted = new List<(Func<Result<PostingOutcome>> Send, PostingOutcome Outcome, DateTimeOffset At)>();
        for (var step = 0; step < 400; step++)
        {
            now = now.AddMinutes(random.Next(1, 600));
            var at = now;
            var id = $"t{step}";
            var target = ids.Count == 0 ? "none" : ids[random.Next(ids.Count)];
            var amount = (long)random.Next(1, 400_000);
            var mcc = Mccs[random.Next(Mccs.Length)];
            Func<Result<PostingOutcome>> send;
            switch (random.Next(6))
            {
                case 0 or 1:
                    send = () => account.Authorize(new AuthorizeCommand(id, "card", amount, "RUB", mcc, "shop", at), programs, MccCatalogue.Default, at);
                    ids.Add(id);
                    break;
                case 2:
                    var forceMcc = random.Next(3) == 0 ? mcc : -1;
                    send = () => account.Capture(new CaptureCommand(id, target, "card", amount, at, forceMcc, "shop", "RUB"), programs, MccCatalogue.Default, at);
                    ids.Add(id);
                    break;
                case 3:
                    var reversed = random.Next(3) == 0 ? 0 : amount / 4;
                    var authorization = random.Next(5) == 0 ? $"t{step + 1}" : target;
                    send = () => account.Reverse(new ReverseCommand(id, authorization, "card", reversed, at), programs, at);
                    break;
                case 4:
                    send = () => account.Refund(new RefundCommand(id, target, "card", amount / 3 + 1, at), programs, at);
                    break;
                default:
                    // A processor retry of an accepted message within the in-memory window (older ones are answered
                    // from the ledger by the grain): DUPLICATE with the original figures, no new effect.
                    var recent = accepted.Where(a => a.At > now - MemberAccount.DedupeMemory).ToList();
                    if (recent.Count == 0) continue;
                    var (retry, original, _) = recent[random.Next(recent.Count)];
                    var again = retry();
                    Assert.True(again.IsOk, $"retry of {original.TransactionId} was refused: {again.Rejection}");
                    Assert.True(again.Value!.Duplicate, $"retry of {original.TransactionId} was not a duplicate");
                    Assert.Equal(original with { Duplicate = true }, again.Value with { Breakdown = original.Breakdown });
                    Assert.All(account.Uncommitted, e => Assert.Equal(EntryKind.ExpirePending, e.Kind));
                    Take();
                    CheckInvariants(account, ledger, program);
                    continue;
            }
            var result = send();
            if (result.IsOk && !result.Value!.Duplicate) accepted.Add((send, result.Value, now));
            Take();
            CheckInvariants(account, ledger, program);
        }

        var replica = new MemberAccount("p");
        foreach (var entry in ledger) replica.Apply(entry);
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(account.State), System.Text.Json.JsonSerializer.Serialize(replica.State));
    }

    private static void CheckInvariants(MemberAccount account, List<LedgerEntry> ledger, ProgramConfig program)
    {
        var state = account.State;
        Assert.Equal(ledger.Sum(e => e.AvailableDeltaMinor), state.AvailableMinor);
        Assert.Equal(ledger.Sum(e => e.PendingDeltaMinor), state.PendingMinor);
        Assert.True(state.PendingMinor >= 0, $"pending went negative: {state.PendingMinor}");
        foreach (var entry in ledger)
        {
            Assert.Equal(entry.AccruedMinor, entry.Breakdown.Sum(l => l.AmountMinor));
            if (entry.Kind is EntryKind.Authorize or EntryKind.ForcePost && entry.Mcc >= 0 && program.IsExcludedMcc(entry.Mcc, MccCatalogue.Default))
            {
                Assert.Equal(0, entry.AccruedMinor);
            }
        }
        var cap = program.Tiers[0].MonthlyCategoryCapMinor;
        foreach (var (month, monthState) in state.Months)
        {
            Assert.InRange(monthState.CategoryCapUsedMinor, 0, cap);
        }
        foreach (var purchase in state.Purchases.Values)
        {
            var captured = purchase.CapturedLines.Sum(l => l.AmountMinor);
            var clawed = purchase.ClawedLines.Sum(l => l.AmountMinor);
            Assert.True(Math.Abs(clawed) <= Math.Abs(captured), $"purchase {purchase.PurchaseId} clawed {clawed} of {captured}");
            Assert.InRange(purchase.RefundedMinor, 0, purchase.CapturedMinor);
            Assert.InRange(purchase.RemainingAuthorizedMinor, 0, purchase.AuthorizedMinor);
            Assert.Equal(purchase.CategoryReservedMinor,
                purchase.State == PurchaseState.Captured
                    ? AccrualCalculator.CategorySum(purchase.CapturedLines) - AccrualCalculator.CategorySum(purchase.ClawedLines)
                    : AccrualCalculator.CategorySum(purchase.PendingLines));
        }
    }
}
