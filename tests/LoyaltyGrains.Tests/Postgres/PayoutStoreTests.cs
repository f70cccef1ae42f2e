using LoyaltyGrains.Domain;
using LoyaltyGrains.Persistence;
using LoyaltyGrains.Tests.Durability;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace LoyaltyGrains.Tests.Postgres;

/// <summary>The settlement outbox and payouts on the real server: events commit with their entries and count once.</summary>
public sealed class PayoutStoreTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Day1 = new(2026, 12, 1, 23, 59, 0, TimeSpan.Zero);
    private TestDatabase _database = null!;
    private PostgresLedger _ledger = null!;
    private PostgresPartnerSettlement _store = null!;

    public async Task InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync("payouts");
        await PostgresHosting.PrepareDatabaseAsync(_database.ConnectionString);
        _ledger = new PostgresLedger(_database.ConnectionString, new PostgresLedgerOptions(), NullLogger<PostgresLedger>.Instance);
        _store = new PostgresPartnerSettlement(_database.ConnectionString);
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        await _ledger.DisposeAsync();
        await _database.DisposeAsync();
    }

    private static LedgerEntry Entry(long sequence, EntryKind kind, DateTimeOffset at, params AccrualLine[] lines) => new()
    {
        MemberId = "m1", Sequence = sequence, MessageId = $"t{sequence}", Kind = kind, Breakdown = lines,
        AvailableDeltaMinor = kind == EntryKind.Authorize ? 0 : lines.Sum(l => l.AmountMinor),
        PendingDeltaMinor = kind == EntryKind.Authorize ? lines.Sum(l => l.AmountMinor) : 0, RecordedAt = at, OccurredAt = at, LotExpiresAt = at,
    };

    [Fact]
    public async Task Events_commit_with_their_entries_apply_once_and_check_payouts_agrees()
    {
        await _ledger.AppendAsync(
        [
            Entry(1, EntryKind.Authorize, Day1, new AccrualLine("base", 100), new AccrualLine("campaign:a", 500, 500, "p1")), // pending: not owed
            Entry(2, EntryKind.Capture, Day1, new AccrualLine("base", 100), new AccrualLine("campaign:a", 500, 500, "p1"), new AccrualLine("campaign:b", 70, 0, "p2")),
        ]);
        await _ledger.AppendAsync([Entry(3, EntryKind.Refund, Day1.AddMinutes(2), new AccrualLine("base", -40), new AccrualLine("campaign:a", -200, 500, "p1"))]);
        await _ledger.AppendAsync([Entry(4, EntryKind.Redeem, Day1.AddMinutes(3), new AccrualLine("redeem", -300, 0, "p1"))]);
        await _ledger.AppendAsync([Entry(5, EntryKind.RedeemRefund, Day1.AddMinutes(4), new AccrualLine("redeem", 100, 0, "p1"))]);
        await _ledger.AppendAsync([Entry(6, EntryKind.ForcePost, Day1, new AccrualLine("base", 100))]); // bank-funded only

        var events = await _store.ReadUndeliveredAsync(100, 0, 1, [], default);
        Assert.Equal(5, events.Count); // capture (p1, p2), refund, redeem, redeem refund
        Assert.Equal((5L, (DateTime?)Day1.UtcDateTime), await _store.UndeliveredAsync(null, default));
        var lag = await ProblemsAsync();
        Assert.All(lag, p => Assert.EndsWith("not yet delivered", p.Problem, StringComparison.Ordinal));
        Assert.Equal(3, lag.Count); // p1 on both days, p2 on day 1

        var p1 = events.Where(e => e.PartnerId == "p1").ToArray();
        Assert.Equal(4, await _store.ApplyAsync("p1", p1, default));
        Assert.Equal(0, await _store.ApplyAsync("p1", p1, default)); // a redelivery counts nothing
        Assert.Equal(0, await _store.ApplyAsync("p2", p1, default)); // nor an event sent to the wrong partner
        Assert.Single(await ProblemsAsync());
        Assert.Equal(1, await _store.ApplyAsync("p2", [.. events.Where(e => e.PartnerId == "p2")], default));
        Assert.Empty(await ProblemsAsync());
        Assert.Equal((0L, (DateTime?)null), await _store.UndeliveredAsync(null, default));

        var days = await _store.ReadPayoutsAsync("p1", new DateTime(2026, 12, 1), new DateTime(2026, 12, 3), default);
        Assert.Equal(2, days.Count);
        Assert.Equal((500L, 0L, 0L, 1L), (days[0].AccruedMinor, days[0].ClawedBackMinor, days[0].RedeemedMinor, days[0].Events));
        Assert.Equal((0L, 200L, 200L, 3L, -400L), (days[1].AccruedMinor, days[1].ClawedBackMinor, days[1].RedeemedMinor, days[1].Events, days[1].NetMinor));
        Assert.Empty(await _store.ReadPayoutsAsync("p1", new DateTime(2026, 12, 3), new DateTime(2026, 12, 4), default));

        // A payout changed behind the engine's back is reported as a difference, not as lag.
        await using var connection = new NpgsqlConnection(_database.ConnectionString);
        await connection.OpenAsync();
        await using (var tamper = new NpgsqlCommand("UPDATE loyalty.partner_payouts SET accrued_minor = accrued_minor + 1 WHERE partner_id = 'p2'", connection))
        {
            await tamper.ExecuteNonQueryAsync();
        }
        var problem = Assert.Single(await ProblemsAsync());
        Assert.Contains("the ledger says 70", problem.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Export_writes_statements_and_a_balanced_journal_that_reconcile_to_the_ledger()
    {
        await _ledger.AppendAsync(
        [
            Entry(1, EntryKind.Authorize, Day1, new AccrualLine("base", 100), new AccrualLine("campaign:a", 500, 500, "p,1")),
            Entry(2, EntryKind.Capture, Day1, new AccrualLine("base", 100), new AccrualLine("rounding", -3), new AccrualLine("campaign:a", 500, 500, "p,1")),
            Entry(3, EntryKind.Refund, Day1.AddMinutes(2), new AccrualLine("base", -40), new AccrualLine("campaign:a", -200, 500, "p,1")),
            Entry(4, EntryKind.Redeem, Day1.AddMinutes(3), new AccrualLine("redeem", -300, 0, "p,1")),
            Entry(5, EntryKind.RedeemRefund, Day1.AddMinutes(4), new AccrualLine("redeem", 100, 0, "p,1")),
            Entry(6, EntryKind.ExpireLots, Day1.AddMinutes(5), new AccrualLine("expiry", -7)),
            Entry(7, EntryKind.ForcePost, Day1.AddDays(3), new AccrualLine("base", 100)), // outside the exported days
        ]);
        var events = await _store.ReadUndeliveredAsync(100, 0, 1, [], default);
        await _store.ApplyAsync("p,1", events, default);
        var outDir = Path.Combine(Path.GetTempPath(), "export-" + Guid.NewGuid().ToString("N"));
        try
        {
            var (exit, log) = await SiloCommand.RunAsync(_database.ConnectionString, "export", "--from", "2026-12-01", "--to", "2026-12-02", "--out", outDir);
            Assert.True(exit == 0, log);

            var statement = File.ReadAllLines(Path.Combine(outDir, "statement-p_1.csv"));
            Assert.Equal("partner_id,day,accrued_minor,accrued,clawed_back_minor,clawed_back,redeemed_minor,redeemed,net_minor,net,events", statement[0]);
            Assert.Equal("\"p,1\",2026-12-01,500,5.00,0,0.00,0,0.00,500,5.00,1", statement[1]);
            Assert.Equal("\"p,1\",2026-12-02,0,0.00,200,2.00,200,2.00,-400,-4.00,3", statement[2]);
            Assert.Equal("\"p,1\",total,500,5.00,200,2.00,200,2.00,100,1.00,4", statement[3]);
            Assert.Equal(4, statement.Length);

            var journal = File.ReadAllLines(Path.Combine(outDir, "journal.csv")).Skip(1).Select(ParseCsv).ToArray();
            Assert.Equal(journal.Sum(f => long.Parse(f[6], System.Globalization.CultureInfo.InvariantCulture)), journal.Sum(f => long.Parse(f[8], System.Globalization.CultureInfo.InvariantCulture)));
            var liability = journal.Where(f => f[3] == "bonus_liability")
                .Sum(f => long.Parse(f[8], System.Globalization.CultureInfo.InvariantCulture) - long.Parse(f[6], System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(97 + 500 - 240 - 300 + 100 - 7, liability);
            Assert.Contains(journal, f => f is [_, _, "accrual", "partner_receivable", "p,1", "p,1", "500", "5.00", "0", "0.00"]);
            Assert.Contains(journal, f => f is [_, _, "accrual", "cashback_expense", "bank", "", "97", "0.97", "0", "0.00"]);
            Assert.Contains(journal, f => f is [_, _, "redemption", "partner_payable", "p,1", "p,1", "0", "0.00", "300", "3.00"]);
            Assert.Contains(journal, f => f is [_, _, "expiry", "breakage_income", "bank", "", "0", "0.00", "7", "0.07"]);
            var reconciliation = File.ReadAllLines(Path.Combine(outDir, "reconciliation.csv")).Skip(1).Select(ParseCsv).ToArray();
            Assert.All(reconciliation, f => Assert.Equal("0", f[7]));
        }
        finally
        {
            if (Directory.Exists(outDir)) Directory.Delete(outDir, recursive: true);
        }
    }

    /// <summary>Just enough RFC 4180 for the export's files: quoted fields with doubled quotes.</summary>
    private static string[] ParseCsv(string line)
    {
        var fields = new List<string>();
        var field = new System.Text.StringBuilder();
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            var ch = line[i];
            if (quoted && ch == '"' && i + 1 < line.Length && line[i + 1] == '"') { field.Append('"'); i++; }
            else if (ch == '"') quoted = !quoted;
            else if (ch == ',' && !quoted) { fields.Add(field.ToString()); field.Clear(); }
            else field.Append(ch);
        }
        fields.Add(field.ToString());
        return [.. fields];
    }

    private async Task<List<(string Partner, string Problem)>> ProblemsAsync() => await PayoutChecks.ViolationsAsync(_database.ConnectionString);
}
