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

        var events = await _store.ReadUndeliveredAsync(100, [], default);
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

    private async Task<List<(string Partner, string Problem)>> ProblemsAsync() => await PayoutChecks.ViolationsAsync(_database.ConnectionString);
}
