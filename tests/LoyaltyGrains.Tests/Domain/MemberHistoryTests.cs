using System.Text.Json;
using System.Text.Json.Nodes;
using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Tests.Domain;

/// <summary>
/// Hot state: a member keeps in memory only what its next message can need, and settled purchases come back from
/// their ledger rows. Checked against a member that keeps its whole history (the engine before the split): the same
/// messages give the same replies and the same ledger rows, a replay (and a snapshot + replay) rebuilds the same
/// member, and memory and snapshot size do not grow with history.
/// </summary>
public sealed class MemberHistoryTests
{
    private static readonly ProgramHistory Programs = ProgramHistory.Of(ProgramConfig.Default);
    private static readonly MccCatalogue Catalogue = MccCatalogue.Default;
    private static readonly DateTimeOffset T0 = new(2026, 11, 20, 9, 0, 0, TimeSpan.Zero);
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.General);

    private abstract record Message(string Id);
    private sealed record Auth(string Id, long Amount, int Mcc, DateTimeOffset At) : Message(Id);
    private sealed record Cap(string Id, string AuthId, long Amount) : Message(Id);
    private sealed record ForcePost(string Id, string AuthId, long Amount) : Message(Id);
    private sealed record Rev(string Id, string AuthId, long Amount) : Message(Id);
    private sealed record Ref(string Id, string Original, long Amount) : Message(Id);
    private sealed record Redeem(string Id, long Amount) : Message(Id);

    /// <summary>
    /// Decides a message as the member's journal does, in the domain's two steps: with the cold rows the domain names,
    /// then — when the decision asks (a refusal of an id memory may have forgotten) — again with the ledger's row of its id.
    /// </summary>
    private static Result<PostingOutcome> Send(MemberAccount account, MemberRows? ledger, Message message, DateTimeOffset now, MemberRows? rows = null)
    {
        var command = Command(message);
        var facts = new PostingFacts(ledger?.Cold(account.NeedsOf(command, now)), null);
        var decision = account.Decide(command, facts, Programs, Catalogue, now);
        rows ??= ledger;
        if (rows is null || !decision.NeedsLedgerRow) return decision.Result;
        return account.Decide(command, facts with { LedgerRow = rows.Row(message.Id), LedgerRowRead = true }, Programs, Catalogue, now).Result;
    }

    private static PostingCommand Command(Message message) => message switch
    {
        Auth a => new AuthorizeCommand(a.Id, "card-1", a.Amount, "RUB", a.Mcc, "shop", a.At),
        Cap c => new CaptureCommand(c.Id, c.AuthId, "card-1", c.Amount, null, -1, "", ""),
        ForcePost f => new CaptureCommand(f.Id, f.AuthId, "card-1", f.Amount, null, 5411, "shop", ""),
        Rev r => new ReverseCommand(r.Id, r.AuthId, "card-1", r.Amount, null),
        Ref r => new RefundCommand(r.Id, r.Original, "card-1", r.Amount, null),
        Redeem r => new RedeemCommand(r.Id, "partner-1", r.Amount),
        _ => throw new ArgumentOutOfRangeException(nameof(message)),
    };

    private static string Describe(Result<PostingOutcome> result) => result.IsOk
        ? JsonSerializer.Serialize(result.Value, Json)
        : $"{result.Rejection!.Kind}: {result.Rejection.Message}";

    /// <summary>The state as JSON with object keys sorted: dictionaries that saw removals enumerate in another order.</summary>
    private static string Canonical(MemberState state) => Sort(JsonSerializer.SerializeToNode(state, Json))!.ToJsonString();

    private static JsonNode? Sort(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, Sort(p.Value?.DeepClone())))),
        JsonArray a => new JsonArray([.. a.Select(v => Sort(v?.DeepClone()))]),
        _ => node?.DeepClone(),
    };

    private static MemberAccount Replay(IEnumerable<LedgerEntry> rows, MemberState? from = null)
    {
        var account = new MemberAccount(from ?? new MemberState { MemberId = "h" });
        foreach (var row in rows) account.Apply(row);
        return account;
    }

    [Fact]
    public void Fifty_thousand_purchases_decide_and_replay_as_with_the_whole_history_in_memory_with_bounded_state()
    {
        const int purchases = 50_000;
        var random = new Random(42);
        var hot = new MemberAccount("h");
        var full = new MemberAccount("h") { KeepSettled = true };
        var hotLedger = new MemberRows();
        var fullLedger = new MemberRows();
        var now = T0;
        foreach (var account in new[] { hot, full })
        {
            Assert.True(account.Enroll(new EnrollCommand("h", false, "", ""), ProgramConfig.Default, now).IsOk);
            Assert.True(account.ChooseCategories(new ChooseCategoriesCommand(ProgramConfig.Default.MonthOf(now), ["supermarkets"]), Programs, now).IsOk);
        }
        hotLedger.Take(hot);
        fullLedger.Take(full);

        var captured = new List<(string AuthId, string CaptureId)>();
        var captures = new List<Cap>();
        var pending = new List<string>();
        var redemptions = new List<string>();
        var maxPurchasesInMemory = 0;
        var snapshotBytes = new Dictionary<int, int>();
        MemberState? midSnapshot = null;
        var midSequence = 0L;
        var sent = 0;

        void Both(Message message)
        {
            // The reference reads no cold rows (it keeps every purchase), but its idempotency records age out as the
            // engine's do, so its refusals are checked against its ledger rows as the grain checks them.
            var expected = Send(full, null, message, now, fullLedger);
            var actual = Send(hot, hotLedger, message, now);
            Assert.True(Describe(expected) == Describe(actual), $"message {sent} {message}: whole history says {Describe(expected)}, hot state says {Describe(actual)}");
            var expectedRows = JsonSerializer.Serialize(full.Uncommitted, Json);
            var actualRows = JsonSerializer.Serialize(hot.Uncommitted, Json);
            Assert.True(expectedRows == actualRows, $"message {sent} {message}: rows differ\n{expectedRows}\n{actualRows}");
            fullLedger.Take(full);
            hotLedger.Take(hot);
            sent++;
        }

        for (var n = 0; n < purchases; n++)
        {
            // About 8 purchases a day, with now and then a quiet month (pending authorizations expire, lots age).
            now = now.AddMinutes(random.Next(60, 300));
            if (random.Next(2_000) == 0) now = now.AddDays(31);
            var id = $"a{n}";
            var amount = (long)random.Next(5_000, 500_000);
            if (random.Next(50) == 0)
            {
                Both(new ForcePost($"f{n}", random.Next(2) == 0 ? "" : id, amount));
            }
            else
            {
                Both(new Auth(id, amount, random.Next(10) == 0 ? 5812 : 5411, now));
                switch (random.Next(20))
                {
                    case 0: Both(new Rev($"v{n}", id, random.Next(2) == 0 ? 0 : amount / 3)); break;
                    case 1 or 2: pending.Add(id); break;
                    default:
                        var capture = new Cap($"c{n}", id, amount - random.Next(0, 1_000));
                        Both(capture);
                        captured.Add((id, capture.Id));
                        captures.Add(capture);
                        break;
                }
            }
            switch (random.Next(40))
            {
                case 0 when pending.Count > 0:
                    // A clearing days or weeks later: pending, expired (and out of memory) or reversed.
                    // Within a year of its month (MonthsKeptBeforeNewest): ~2 000 purchases here.
                    var late = pending[random.Next(Math.Max(0, pending.Count - 100), pending.Count)];
                    Both(new Cap($"lc{n}", late, random.Next(1_000, 100_000)));
                    break;
                case 1 when captured.Count > 0:
                    // A refund of any capture, recent or years old, by capture or authorization id; sometimes too much.
                    var (authId, captureId) = captured[random.Next(captured.Count)];
                    Both(new Ref($"r{n}", random.Next(2) == 0 ? authId : captureId, random.Next(1, 200_000)));
                    break;
                case 2 when pending.Count > 0:
                    Both(new Rev($"lv{n}", pending[random.Next(pending.Count)], 0));
                    break;
                case 3:
                    Both(new Redeem($"d{n}", random.Next(1, 5_000)));
                    redemptions.Add($"d{n}");
                    break;
                case 4 when redemptions.Count > 0:
                    Both(new Ref($"dr{n}", redemptions[random.Next(redemptions.Count)], random.Next(1, 3_000)));
                    break;
                case 5 when captures.Count > 0:
                    // A processor's retry of any earlier capture, recent or years old: DUPLICATE with its original
                    // figures, from memory or from the purchase's ledger rows.
                    Both(captures[random.Next(captures.Count)]);
                    break;
                case 6 when captures.Count > 0:
                    // A recent capture's id reused for another message: refused as a used id. (Reuse of an id memory no
                    // longer holds is refused by the ledger's unique message id: MemberLateRetryTests.)
                    var reused = captures[random.Next(Math.Max(0, captures.Count - 10), captures.Count)];
                    Both(new Cap(reused.Id, $"a{random.Next(n + 1)}", 1));
                    break;
            }
            maxPurchasesInMemory = Math.Max(maxPurchasesInMemory, hot.State.Purchases.Count);
            if ((n + 1) % 10_000 == 0) snapshotBytes[n + 1] = JsonSerializer.SerializeToUtf8Bytes(hot.State, Json).Length;
            if (n == purchases / 2 + 17)
            {
                midSnapshot = JsonSerializer.Deserialize<MemberState>(JsonSerializer.SerializeToUtf8Bytes(hot.State, Json), Json);
                midSequence = hot.State.Sequence;
            }
        }

        Assert.Equal(full.State.AvailableMinor, hot.State.AvailableMinor);
        Assert.Equal(full.State.PendingMinor, hot.State.PendingMinor);
        Assert.True(full.State.Purchases.Count >= purchases, $"the reference member holds {full.State.Purchases.Count} purchases");
        // About 45 days of captures at ~8 a day plus open authorizations: a bound set by time, not by history.
        Assert.True(maxPurchasesInMemory < 1_000, $"at most {maxPurchasesInMemory} purchases were in memory");
        Assert.True(hot.State.Months.Count <= MemberAccount.MonthsKeptBeforeNewest + 6, $"{hot.State.Months.Count} months in memory");
        var sizes = string.Join(", ", snapshotBytes.Select(s => $"{s.Key}: {s.Value} B"));
        Assert.True(snapshotBytes.Values.Max() < 600_000, $"snapshot sizes {sizes}");
        Assert.True(snapshotBytes[50_000] < 2 * snapshotBytes[10_000], $"snapshot size grows with history: {sizes}");
        var line = $"hot-state test: at most {maxPurchasesInMemory} purchases in memory; snapshot bytes after {sizes}; " +
            $"with the whole history in memory {JsonSerializer.SerializeToUtf8Bytes(full.State, Json).Length} B";
        if (Environment.GetEnvironmentVariable("LOYALTY_TEST_SUMMARY") is { Length: > 0 } summary) File.AppendAllText(summary, line + Environment.NewLine);

        // The rows are the truth: a replay, and a snapshot plus the rows after it, rebuild exactly the live member.
        var canonical = Canonical(hot.State);
        Assert.Equal(canonical, Canonical(Replay(hotLedger.Rows).State));
        Assert.Equal(canonical, Canonical(Replay(hotLedger.Rows.Where(r => r.Sequence > midSequence), midSnapshot).State));
    }

    [Fact]
    public void A_capture_that_left_memory_is_refunded_from_its_ledger_rows()
    {
        var account = new MemberAccount("h");
        var ledger = new MemberRows();
        Assert.True(account.Enroll(new EnrollCommand("h", false, "", ""), ProgramConfig.Default, T0).IsOk);
        Assert.True(account.Authorize(new AuthorizeCommand("a1", "card-1", 100_000, "RUB", 5411, "shop", T0), Programs, Catalogue, T0).IsOk);
        Assert.True(account.Capture(new CaptureCommand("c1", "a1", "card-1", 100_000, T0, -1, "", ""), Programs, Catalogue, T0).IsOk);
        Assert.True(account.Refund(new RefundCommand("r1", "c1", "card-1", 25_000, T0), Programs, T0).IsOk);
        ledger.Take(account);
        // Past the capture memory, a few dozen purchases later the old capture has left memory.
        var later = T0 + MemberAccount.CaptureMemory + TimeSpan.FromDays(1);
        for (var i = 0; i < MemberAccount.DedupePruneEveryEntries; i++)
        {
            Assert.True(account.Capture(new CaptureCommand($"f{i}", "", "card-1", 10_000, later, 5411, "shop", ""), Programs, Catalogue, later).IsOk);
            ledger.Take(account);
        }
        Assert.False(account.State.Purchases.ContainsKey("a1"));
        Assert.Null(account.ColdReference("f0", "c1")); // a retry is answered from memory
        Assert.Equal("c1", account.ColdReference("r2", "c1"));

        // Named by the capture or by the authorization: the rows rebuild it, the domain decides as before.
        var refund = account.Refund(new RefundCommand("r2", "c1", "card-1", 25_000, later), Programs, later, ledger.Cold(account.ColdReference("r2", "c1")));
        Assert.True(refund.IsOk, refund.Rejection?.Message);
        Assert.Equal(-250, refund.Value!.AccruedMinor);
        ledger.Take(account);
        var tooMuch = account.Refund(new RefundCommand("r3", "a1", "card-1", 50_001, later), Programs, later, ledger.Cold(account.ColdReference("r3", "a1")));
        Assert.Equal(RejectionKind.FailedPrecondition, tooMuch.Rejection?.Kind);
        Assert.Contains("refundable 50000", tooMuch.Rejection!.Message, StringComparison.Ordinal);
        var rest = account.Refund(new RefundCommand("r4", "a1", "card-1", 50_000, later), Programs, later, ledger.Cold(account.ColdReference("r4", "a1")));
        Assert.Equal(-500, rest.Value!.AccruedMinor);
        ledger.Take(account);
        Assert.False(account.State.Purchases.ContainsKey("a1"));
        // An id the ledger never saw for this member is unknown, as before.
        var unknown = account.Refund(new RefundCommand("r5", "nope", "card-1", 1, later), Programs, later, ledger.Cold(account.ColdReference("r5", "nope")));
        Assert.Equal(RejectionKind.NotFound, unknown.Rejection?.Kind);
    }

    [Fact]
    public void Settled_authorizations_leave_memory_at_once_and_late_messages_still_see_them()
    {
        var account = new MemberAccount("h");
        var ledger = new MemberRows();
        Assert.True(account.Enroll(new EnrollCommand("h", false, "", ""), ProgramConfig.Default, T0).IsOk);
        Assert.True(account.Authorize(new AuthorizeCommand("a1", "card-1", 100_000, "RUB", 5411, "shop", T0), Programs, Catalogue, T0).IsOk);
        Assert.True(account.Reverse(new ReverseCommand("v1", "a1", "card-1", 0, T0), Programs, T0).IsOk);
        Assert.True(account.Authorize(new AuthorizeCommand("a2", "card-1", 100_000, "RUB", 5411, "shop", T0), Programs, Catalogue, T0).IsOk);
        ledger.Take(account);
        Assert.False(account.State.Purchases.ContainsKey("a1"));

        // A force post naming the reversed authorization is refused as before, not accepted as a new purchase.
        var capture = account.Capture(new CaptureCommand("c1", "a1", "card-1", 100_000, T0, 5411, "shop", ""), Programs, Catalogue, T0,
            null, ledger.Cold(account.ColdReference("c1", "a1")));
        Assert.Equal(RejectionKind.FailedPrecondition, capture.Rejection?.Kind);
        var reverse = account.Reverse(new ReverseCommand("v2", "a1", "card-1", 0, T0), Programs, T0, ledger.Cold(account.ColdReference("v2", "a1")));
        Assert.Equal(RejectionKind.FailedPrecondition, reverse.Rejection?.Kind);

        // Past the hold a2 expires and leaves memory; its late clearing still earns (rule "pending expiry").
        var later = T0.AddDays(31);
        account.Touch(ProgramConfig.Default, later);
        ledger.Take(account);
        Assert.Empty(account.State.Purchases);
        var late = account.Capture(new CaptureCommand("c2", "a2", "card-1", 100_000, later, -1, "", ""), Programs, Catalogue, later,
            null, ledger.Cold(account.ColdReference("c2", "a2")));
        Assert.Equal(1_000, late.Value!.AccruedMinor);
        ledger.Take(account);
        Assert.Equal(PurchaseState.Captured, account.State.Purchases["a2"].State);
    }
}
