using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains.Ledger;
using LoyaltyGrains.Persistence;
using LoyaltyGrains.Tests.Durability;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace LoyaltyGrains.Tests.Postgres;

/// <summary>The group-commit ledger against the real server: same contract as the in-memory one, under concurrency.</summary>
public sealed class PostgresLedgerTests : IAsyncLifetime
{
    private static readonly DateTimeOffset At = new(2026, 11, 20, 9, 0, 0, TimeSpan.Zero);
    private TestDatabase _database = null!;
    private PostgresLedger _ledger = null!;

    public async Task InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync("ledger");
        await PostgresHosting.PrepareDatabaseAsync(_database.ConnectionString);
        _ledger = new PostgresLedger(_database.ConnectionString, new PostgresLedgerOptions(), NullLogger<PostgresLedger>.Instance);
    }

    public async Task DisposeAsync()
    {
        await _ledger.DisposeAsync();
        await _database.DisposeAsync();
    }

    private static LedgerEntry Entry(string member, long sequence, string messageId, long availableDelta = 100, long availableAfter = -1) => new()
    {
        MemberId = member, Sequence = sequence, MessageId = messageId, Kind = EntryKind.ForcePost, CardId = "card-" + member,
        PurchaseId = messageId, AmountMinor = availableDelta * 100, AvailableDeltaMinor = availableDelta,
        AvailableAfterMinor = availableAfter >= 0 ? availableAfter : availableDelta * sequence, Breakdown = [new AccrualLine("base", availableDelta, 100)],
        Mcc = 5411, Category = "supermarkets", MerchantId = "shop", Currency = "RUB", OccurredAt = At, RecordedAt = At.AddSeconds(sequence),
        Fingerprint = 42 + sequence, PurchaseMonth = 202611, SpendDeltaMinor = availableDelta * 100, LotExpiresAt = At.AddYears(1), Detail = "d",
    };

    [Fact]
    public async Task Entries_round_trip_with_every_field_and_page_newest_first()
    {
        var entries = Enumerable.Range(1, 5).Select(i => Entry("m1", i, $"m1-{i}")).ToArray();
        await _ledger.AppendAsync(entries[..2]);
        await _ledger.AppendAsync(entries[2..]);
        var read = await _ledger.ReadMemberAsync("m1", 0);
        Assert.Equal(entries.Select(e => System.Text.Json.JsonSerializer.Serialize(e)), read.Select(e => System.Text.Json.JsonSerializer.Serialize(e)));
        Assert.Equal([4L, 5], (await _ledger.ReadMemberAsync("m1", 3)).Select(e => e.Sequence));
        Assert.Equal([5L, 4], (await _ledger.ReadMemberPageAsync("m1", 6, 2)).Select(e => e.Sequence));
        Assert.Equal([3L, 2], (await _ledger.ReadMemberPageAsync("m1", 4, 2)).Select(e => e.Sequence));
        Assert.Equal("m1-3", (await _ledger.FindAsync("m1-3"))!.MessageId);
        Assert.Null(await _ledger.FindAsync("nope"));
    }

    [Fact]
    public async Task A_conflict_fails_only_its_own_append_even_inside_a_shared_batch()
    {
        await _ledger.AppendAsync([Entry("c1", 1, "taken")]);
        // Many appends at once so they share batches; two of them conflict.
        var good = Enumerable.Range(0, 200).Select(i => _ledger.AppendAsync([Entry($"g{i}", 1, $"g{i}-1")])).ToArray();
        var reusedId = _ledger.AppendAsync([Entry("c2", 1, "taken")]);
        var secondWriter = _ledger.AppendAsync([Entry("c1", 1, "c1-other")]);
        await Task.WhenAll(good);
        var messageConflict = await Assert.ThrowsAsync<LedgerConflictException>(() => reusedId);
        Assert.Equal((LedgerConflictKind.MessageId, "taken"), (messageConflict.Kind, messageConflict.MessageId));
        var sequenceConflict = await Assert.ThrowsAsync<LedgerConflictException>(() => secondWriter);
        Assert.Equal(LedgerConflictKind.Sequence, sequenceConflict.Kind);
        Assert.Empty(await _ledger.ReadMemberAsync("c2", 0));
        Assert.Equal("taken", Assert.Single(await _ledger.ReadMemberAsync("c1", 0)).MessageId);
        Assert.Equal(201, await CountAsync("SELECT count(*) FROM loyalty.ledger"));
    }

    [Fact]
    public async Task Sixty_four_concurrent_appenders_commit_every_entry_exactly_once_in_groups()
    {
        const int appenders = 64, perAppender = 50;
        var before = _ledger.Committed;
        await Task.WhenAll(Enumerable.Range(0, appenders).Select(a => Task.Run(async () =>
        {
            for (var n = 1; n <= perAppender; n++) await _ledger.AppendAsync([Entry($"a{a}", n, $"a{a}-{n}")]);
        })));
        Assert.Equal(appenders * perAppender, await CountAsync("SELECT count(*) FROM loyalty.ledger"));
        Assert.Equal(appenders * perAppender, await CountAsync("SELECT count(DISTINCT message_id) FROM loyalty.ledger"));
        var (batches, entries) = _ledger.Committed;
        Assert.Equal(appenders * perAppender, entries - before.Entries);
        Assert.True(batches - before.Batches < appenders * perAppender, $"no grouping: {batches - before.Batches} commits for {entries - before.Entries} entries");
        Assert.Empty(await LedgerChecks.ViolationsAsync(_database.ConnectionString));
    }

    [Fact]
    public async Task The_invariant_check_finds_a_member_whose_balance_does_not_match_its_rows()
    {
        await _ledger.AppendAsync([Entry("ok", 1, "ok-1"), Entry("ok", 2, "ok-2")]);
        await _ledger.AppendAsync([Entry("bad", 1, "bad-1"), Entry("bad", 2, "bad-2", availableAfter: 999)]);
        await _ledger.AppendAsync([Entry("gap", 1, "gap-1"), Entry("gap", 3, "gap-3", availableAfter: 200)]);
        var violations = await LedgerChecks.ViolationsAsync(_database.ConnectionString);
        Assert.Equal(["bad", "gap"], violations.Select(v => v.MemberId).Order());
        Assert.Contains("available 999", violations.Single(v => v.MemberId == "bad").Problem, StringComparison.Ordinal);
        Assert.Contains("sequence gap", violations.Single(v => v.MemberId == "gap").Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Appends_commit_again_after_every_connection_of_the_database_is_terminated()
    {
        // Before: the writer reused its prepared statement's parameters on the new connection and failed every later
        // batch ("The parameter already belongs to a collection") until the process restarted.
        for (var round = 1; round <= 3; round++)
        {
            await _ledger.AppendAsync([Entry("t", round, $"t-{round}")]);
            await ExecuteAsync($"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{_database.Name}' AND pid <> pg_backend_pid()");
        }
        var after = Enumerable.Range(0, 50).Select(i => _ledger.AppendAsync([Entry($"after{i}", 1, $"after-{i}")])).ToArray();
        await Task.WhenAll(after).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(53, await CountAsync("SELECT count(*) FROM loyalty.ledger"));
        Assert.True(_ledger.Availability.IsAvailable);
    }

    [Fact]
    public async Task A_commit_held_up_by_the_database_answers_unavailable_within_the_bound_and_its_real_outcome_is_kept()
    {
        await using var ledger = new PostgresLedger(_database.ConnectionString, new PostgresLedgerOptions { CommitTimeout = TimeSpan.FromMilliseconds(500) },
            NullLogger<PostgresLedger>.Instance);
        await ledger.AppendAsync([Entry("warm", 1, "warm-1")]);
        // A lock held elsewhere stands in for a frozen server: the writer's INSERT waits on it.
        await using var blocker = new NpgsqlConnection(_database.ConnectionString);
        await blocker.OpenAsync();
        await using var transaction = await blocker.BeginTransactionAsync();
        await using (var lockTable = new NpgsqlCommand("LOCK TABLE loyalty.ledger_keys IN ACCESS EXCLUSIVE MODE", blocker, transaction))
        {
            await lockTable.ExecuteNonQueryAsync();
        }
        var started = System.Diagnostics.Stopwatch.StartNew();
        var held = await Assert.ThrowsAsync<LedgerUnavailableException>(() => ledger.AppendAsync([Entry("held", 1, "held-1")]));
        var waited = started.Elapsed;
        Assert.False(held.NotCommitted); // taken by a writer: the outcome is unknown
        Assert.True(waited < TimeSpan.FromSeconds(5), $"the append waited {waited} with a 500 ms bound");
        await transaction.RollbackAsync();
        // The writer's statement goes through once the lock is gone: "unknown" was the truth, and the ledger keeps it.
        LedgerEntry? kept = null;
        for (var i = 0; i < 100 && kept is null; i++)
        {
            kept = await ledger.FindAsync("held-1");
            if (kept is null) await Task.Delay(50);
        }
        Assert.NotNull(kept);
        await ledger.AppendAsync([Entry("held", 2, "held-2")]);
    }

    [Fact]
    public async Task Disposing_twice_is_harmless()
    {
        var ledger = new PostgresLedger(_database.ConnectionString, new PostgresLedgerOptions(), NullLogger<PostgresLedger>.Instance);
        await ledger.AppendAsync([Entry("d", 1, "d-1")]);
        await ledger.DisposeAsync();
        await ledger.DisposeAsync();
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_database.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private async Task<long> CountAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_database.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
