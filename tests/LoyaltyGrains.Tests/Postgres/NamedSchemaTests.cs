using System.Text.RegularExpressions;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Persistence;
using LoyaltyGrains.Tests.Durability;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace LoyaltyGrains.Tests.Postgres;

/// <summary>
/// What C# and SQL must agree on, checked against a migrated database: the entry kinds (EntryKind ↔ loyalty.entry_kinds and
/// loyalty.kind), the ledger's columns (LedgerColumns ↔ the table), and the breakdown columns migration 0010 added and
/// backfilled — so no query depends on the breakdown's JSON text.
/// </summary>
public sealed partial class NamedSchemaTests
{
    private static readonly DateTimeOffset At = new(2026, 11, 20, 9, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task Entry_kinds_in_the_database_are_the_csharp_enum()
    {
        await using var database = await TestDatabase.CreateAsync("kinds");
        await MigrationRunner.MigrateAsync(database.ConnectionString);
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync();

        var table = new List<(short, string)>();
        await using (var read = new NpgsqlCommand("SELECT kind, name FROM loyalty.entry_kinds ORDER BY kind", connection))
        await using (var reader = await read.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync()) table.Add((reader.GetInt16(0), reader.GetString(1)));
        }
        Assert.True(EntryKindsSql.All.SequenceEqual(table),
            "loyalty.entry_kinds differs from EntryKind: add a migration with this SQL (EntryKindsSql.Render()):\n" + EntryKindsSql.Render());
        foreach (var (kind, name) in EntryKindsSql.All)
        {
            await using var lookup = new NpgsqlCommand("SELECT loyalty.kind($1)", connection);
            lookup.Parameters.Add(new NpgsqlParameter { Value = name });
            Assert.Equal(kind, (short)(await lookup.ExecuteScalarAsync())!);
        }
        await using var unknown = new NpgsqlCommand("SELECT loyalty.kind($1)", connection);
        unknown.Parameters.Add(new NpgsqlParameter { Value = "Captured" });
        var error = await Assert.ThrowsAsync<PostgresException>(() => unknown.ExecuteScalarAsync());
        Assert.Contains("no entry kind is named Captured", error.MessageText, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_kind_named_in_the_repository_sql_is_an_entry_kind()
    {
        var root = RepositoryRoot();
        var names = Enum.GetNames<EntryKind>().ToHashSet(StringComparer.Ordinal);
        var files = new[] { "*.sql", "*.cs", "*.sh" }
            .SelectMany(pattern => Directory.EnumerateFiles(root, pattern, SearchOption.AllDirectories))
            .Where(path => !path.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !path.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal));
        var used = 0;
        foreach (var path in files)
        {
            foreach (Match match in KindByName().Matches(File.ReadAllText(path)))
            {
                used++;
                Assert.True(names.Contains(match.Groups[1].Value), $"{Path.GetRelativePath(root, path)} names entry kind '{match.Groups[1].Value}', which EntryKind does not have");
            }
        }
        Assert.True(used > 20, $"expected the SQL of migrations, queries and scripts to name kinds; found {used} uses");
    }

    [Fact]
    public async Task The_ledger_table_has_the_columns_LedgerColumns_declares_in_order()
    {
        await using var database = await TestDatabase.CreateAsync("columns");
        await MigrationRunner.MigrateAsync(database.ConnectionString);
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync();
        await using var read = new NpgsqlCommand("""
            SELECT a.attname, format_type(a.atttypid, a.atttypmod)
              FROM pg_attribute a
             WHERE a.attrelid = 'loyalty.ledger'::regclass AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum
            """, connection);
        var table = new List<(string, string)>();
        await using (var reader = await read.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync()) table.Add((reader.GetString(0), Short(reader.GetString(1))));
        }
        Assert.Equal(LedgerColumns.Declared.Select(c => (c.Name, c.SqlType)), table);

        static string Short(string type) => type switch
        {
            "timestamp with time zone" => "timestamptz",
            _ => type,
        };
    }

    [Fact]
    public async Task Migration_0010_backfills_the_breakdown_columns_whatever_the_json_key_order_and_older_writers_still_count()
    {
        await using var database = await TestDatabase.CreateAsync("backfill");
        await MigrationRunner.MigrateAsync(database.ConnectionString, upToVersion: 9);
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync();
        await using (var partitions = new NpgsqlCommand("SELECT loyalty.ensure_ledger_partitions('2026-11-01', 2)", connection)) await partitions.ExecuteScalarAsync();

        // Rows as an engine before 0010 wrote them (no breakdown columns): the JSON in another key order and spacing than
        // today's encoder, which a text match on '"partnerId":"' would have missed.
        await InsertOldRowAsync(connection, "m1", 1, 3, """[{"rule":"base","amountMinor":100,"rateBps":100,"partnerId":""}]""");
        await InsertOldRowAsync(connection, "m1", 2, 3, """[ { "partnerId" : "p1", "amountMinor" : 250, "rule" : "campaign:c1", "rateBps" : 500 } ]""");
        await InsertOldRowAsync(connection, "m1", 3, 11, """[{"amountMinor":-40,"partnerId":"p2","rule":"redeem","rateBps":0}]""");
        await InsertOldRowAsync(connection, "m1", 4, 3, """[{"rateBps":300,"rule":"campaign:c2","amountMinor":30,"partnerId":""}]""");

        Assert.Equal([10], await MigrationRunner.MigrateAsync(database.ConnectionString));
        Assert.Equal(
            [(1L, false, false), (2L, true, true), (3L, true, false), (4L, false, true)],
            await FlagsAsync(connection));

        // A row written after the migration by a silo not yet upgraded (rolling upgrade) leaves the columns NULL: the
        // settlement and analytics SQL read its breakdown instead, so it still counts.
        await InsertOldRowAsync(connection, "m1", 5, 8, """[{"partnerId":"p1","rule":"campaign:c1","amountMinor":-50,"rateBps":500}]""");
        Assert.Equal((5L, (bool?)null, (bool?)null), (await FlagsAsync(connection))[4]);
        await using var lines = new NpgsqlCommand("""
            SELECT partner_id, accrued_minor, clawed_back_minor, redeemed_minor, events
              FROM loyalty.partner_ledger_lines('-infinity', 'infinity') ORDER BY partner_id
            """, connection);
        var found = new List<(string, long, long, long, long)>();
        await using (var reader = await lines.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync()) found.Add((reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4)));
        }
        Assert.Equal([("p1", 250L, 50L, 0L, 2L), ("p2", 0L, 0L, 40L, 1L)], found);
        await using var view = new NpgsqlCommand(
            "SELECT sequence FROM loyalty.purchase_cashback_v WHERE has_campaign_line ORDER BY sequence", connection);
        var campaignRows = new List<long>();
        await using (var reader = await view.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync()) campaignRows.Add(reader.GetInt64(0));
        }
        Assert.Equal([2L, 4L, 5L], campaignRows);
    }

    [Fact]
    public async Task The_writer_sets_the_breakdown_columns_from_the_lines()
    {
        await using var database = await TestDatabase.CreateAsync("linecols");
        await PostgresHosting.PrepareDatabaseAsync(database.ConnectionString);
        await using (var ledger = new PostgresLedger(database.ConnectionString, new PostgresLedgerOptions(), NullLogger<PostgresLedger>.Instance))
        {
            await ledger.AppendAsync([
                Entry(1, [new AccrualLine("base", 100, 100)]),
                Entry(2, [new AccrualLine("base", 100, 100), new AccrualLine("campaign:c1", 50, 500, "p1")]),
                Entry(3, [new AccrualLine("campaign:c2", 20, 200)]),
                Entry(4, [new AccrualLine("redeem", -70, 0, "p2")]),
            ]);
            // Reading entries back ignores the derived columns: the lines are the breakdown.
            var read = await ledger.ReadMemberAsync("w1", 0);
            Assert.Equal("p1", read[1].Breakdown[1].PartnerId);
        }
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync();
        Assert.Equal([(1L, false, false), (2L, true, true), (3L, false, true), (4L, true, false)], await FlagsAsync(connection));
    }

    private static LedgerEntry Entry(long sequence, AccrualLine[] lines) => new()
    {
        MemberId = "w1", Sequence = sequence, MessageId = "w1-" + sequence, Kind = EntryKind.ForcePost, PurchaseId = "w1-" + sequence,
        Breakdown = lines, OccurredAt = At, RecordedAt = At.AddSeconds(sequence), LotExpiresAt = At.AddYears(1),
    };

    private static async Task<List<(long, bool?, bool?)>> FlagsAsync(NpgsqlConnection connection)
    {
        await using var read = new NpgsqlCommand("SELECT sequence, has_partner_line, has_campaign_line FROM loyalty.ledger ORDER BY sequence", connection);
        var rows = new List<(long, bool?, bool?)>();
        await using var reader = await read.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetBoolean(1), reader.IsDBNull(2) ? null : reader.GetBoolean(2)));
        }
        return rows;
    }

    /// <summary>An insert naming the 25 columns of migration 0005, as the engine before 0010 wrote them.</summary>
    private static async Task InsertOldRowAsync(NpgsqlConnection connection, string member, long sequence, short kind, string breakdown)
    {
        await using var insert = new NpgsqlCommand("""
            INSERT INTO loyalty.ledger (member_id, sequence, message_id, kind, card_id, purchase_id, amount_minor, pending_delta_minor,
                available_delta_minor, pending_after_minor, available_after_minor, breakdown, mcc, category, merchant_id, currency, partner_id,
                occurred_at, recorded_at, fingerprint, purchase_month, category_cap_delta_minor, spend_delta_minor, lot_expires_at, detail)
            VALUES ($1, $2, $1 || '-' || $2, $3, '', $1 || '-' || $2, 0, 0, 0, 0, 0, $4, 5411, 'supermarkets', '', 'RUB', '',
                    $5, $5, 0, 202611, 0, 0, $5, '')
            """, connection);
        insert.Parameters.Add(new NpgsqlParameter { Value = member });
        insert.Parameters.Add(new NpgsqlParameter { Value = sequence });
        insert.Parameters.Add(new NpgsqlParameter { Value = kind });
        insert.Parameters.Add(new NpgsqlParameter { Value = breakdown });
        insert.Parameters.Add(new NpgsqlParameter { Value = At.AddMinutes(sequence) });
        await insert.ExecuteNonQueryAsync();
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "LoyaltyGrains.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("LoyaltyGrains.sln not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"loyalty\.kind\('([^']*)'\)")]
    private static partial Regex KindByName();
}
