using System.Text.Json;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains.Ledger;
using LoyaltyGrains.Persistence;
using LoyaltyGrains.Tests.Durability;
using Microsoft.Extensions.Logging.Abstractions;

namespace LoyaltyGrains.Tests.Postgres;

/// <summary>A settled purchase's rows, read back from PostgreSQL the way a member rebuilds a purchase that left its memory.</summary>
public sealed class PurchaseRowsTests : IAsyncLifetime
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 20, 9, 0, 0, TimeSpan.Zero);
    private TestDatabase _database = null!;
    private PostgresLedger _ledger = null!;

    public async Task InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync("purchase_rows");
        await PostgresHosting.PrepareDatabaseAsync(_database.ConnectionString);
        _ledger = new PostgresLedger(_database.ConnectionString, new PostgresLedgerOptions(), NullLogger<PostgresLedger>.Instance);
    }

    public async Task DisposeAsync()
    {
        await _ledger.DisposeAsync();
        await _database.DisposeAsync();
    }

    [Fact]
    public async Task A_purchase_rows_come_back_in_order_and_only_that_purchase_of_that_member()
    {
        var programs = ProgramHistory.Of(ProgramConfig.Default);
        var memory = new InMemoryLedger();
        foreach (var member in new[] { "p1", "p2" })
        {
            var account = new MemberAccount(member);
            account.Enroll(new EnrollCommand(member, false, "", ""), ProgramConfig.Default, T0);
            account.Authorize(new AuthorizeCommand($"{member}-a", "card", 100_000, "RUB", 5411, "shop", T0), programs, MccCatalogue.Default, T0);
            account.Authorize(new AuthorizeCommand($"{member}-other", "card", 50_000, "RUB", 5411, "shop", T0), programs, MccCatalogue.Default, T0);
            account.Capture(new CaptureCommand($"{member}-c", $"{member}-a", "card", 100_000, T0, -1, "", ""), programs, MccCatalogue.Default, T0);
            account.Refund(new RefundCommand($"{member}-r1", $"{member}-c", "card", 10_000, T0), programs, T0);
            account.Reverse(new ReverseCommand($"{member}-v", $"{member}-other", "card", 0, T0), programs, T0);
            account.Refund(new RefundCommand($"{member}-r2", $"{member}-a", "card", 20_000, T0), programs, T0);
            await _ledger.AppendAsync([.. account.Uncommitted]);
            await memory.AppendAsync([.. account.Uncommitted]);
        }

        var authorization = (await _ledger.FindAsync("p1-a"))!;
        var rows = await _ledger.ReadPurchaseAsync("p1", "p1-a", authorization.Sequence);
        Assert.Equal(["p1-a", "p1-c", "p1-r1", "p1-r2"], rows.Select(r => r.MessageId));
        Assert.Equal(Json(await memory.ReadPurchaseAsync("p1", "p1-a", authorization.Sequence)), Json(rows));
        // From a later row (a refund naming the capture) only what follows it; the interface default reads the same.
        var capture = (await _ledger.FindAsync("p1-c"))!;
        Assert.Equal(["p1-c", "p1-r1", "p1-r2"], (await _ledger.ReadPurchaseAsync("p1", "p1-a", capture.Sequence)).Select(r => r.MessageId));
        ILedger fallback = new DefaultOnly(memory);
        Assert.Equal(Json(rows), Json(await fallback.ReadPurchaseAsync("p1", "p1-a", authorization.Sequence)));
        Assert.Empty(await _ledger.ReadPurchaseAsync("p1", "nope", 1));
    }

    private static string Json(IEnumerable<LedgerEntry> rows) => JsonSerializer.Serialize(rows);

    /// <summary>A ledger that does not override ReadPurchaseAsync, so the interface's default is what runs.</summary>
    private sealed class DefaultOnly(ILedger inner) : ILedger
    {
        public Task AppendAsync(IReadOnlyList<LedgerEntry> entries, CancellationToken cancellationToken = default) => inner.AppendAsync(entries, cancellationToken);

        public Task<IReadOnlyList<LedgerEntry>> ReadMemberAsync(string memberId, long afterSequence, CancellationToken cancellationToken = default) =>
            inner.ReadMemberAsync(memberId, afterSequence, cancellationToken);

        public Task<IReadOnlyList<LedgerEntry>> ReadMemberPageAsync(string memberId, long beforeSequence, int limit, CancellationToken cancellationToken = default) =>
            inner.ReadMemberPageAsync(memberId, beforeSequence, limit, cancellationToken);

        public Task<LedgerEntry?> FindAsync(string messageId, CancellationToken cancellationToken = default) => inner.FindAsync(messageId, cancellationToken);
    }
}
