using LoyaltyGrains.Persistence;
using LoyaltyGrains.Tests.Durability;
using Npgsql;

namespace LoyaltyGrains.Tests.Postgres;

public sealed class MigrationTests
{
    [Fact]
    public async Task Migrations_apply_in_order_once_and_then_are_a_no_op()
    {
        await using var database = await TestDatabase.CreateAsync("migrate");
        var first = await MigrationRunner.MigrateAsync(database.ConnectionString);
        Assert.Equal(Enumerable.Range(1, MigrationRunner.LatestVersion), first);
        Assert.Empty(await MigrationRunner.MigrateAsync(database.ConnectionString));
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync();
        await using var count = new NpgsqlCommand("SELECT count(*) FROM loyalty_schema_migrations", connection);
        Assert.Equal((long)MigrationRunner.LatestVersion, (long)(await count.ExecuteScalarAsync())!);
        // Every query key the 10.4.2 providers ask for is present (clustering refuses to start otherwise).
        await using var keys = new NpgsqlCommand("SELECT querykey FROM orleansquery", connection);
        var present = new HashSet<string>();
        await using (var reader = await keys.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync()) present.Add(reader.GetString(0));
        }
        string[] required =
        [
            "InsertMembershipVersionKey", "InsertMembershipKey", "UpdateMembershipKey", "UpdateIAmAlivetimeKey", "MembershipReadRowKey",
            "MembershipReadAllKey", "DeleteMembershipTableEntriesKey", "GatewaysQueryKey", "CleanupDefunctSiloEntriesKey", "CleanupDefunctSiloEntryKey",
            "WriteToStorageKey", "ReadFromStorageKey", "ClearStorageKey", "UpsertReminderRowKey", "ReadReminderRowsKey", "ReadReminderRowKey",
            "ReadRangeRows1Key", "ReadRangeRows2Key", "DeleteReminderRowKey", "DeleteReminderRowsKey",
        ];
        Assert.Empty(required.Except(present));
    }

    [Fact]
    public async Task Concurrent_starts_apply_each_migration_once()
    {
        await using var database = await TestDatabase.CreateAsync("migrate_race");
        var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => MigrationRunner.MigrateAsync(database.ConnectionString)));
        Assert.Equal(MigrationRunner.LatestVersion, results.Sum(r => r.Count));
    }

    [Fact]
    public async Task Silos_starting_together_create_each_ledger_partition_once_without_an_error()
    {
        await using var database = await TestDatabase.CreateAsync("partition_race");
        await MigrationRunner.MigrateAsync(database.ConnectionString);
        // Months nobody has created yet, asked for by eight callers at once, in several rounds: before the lock the
        // second caller's CREATE failed with 42P07 whenever two checks interleaved.
        var created = 0L;
        for (var round = 0; round < 10; round++)
        {
            var from = new DateTimeOffset(2040 + round, 1, 1, 0, 0, 0, TimeSpan.Zero);
            var counts = await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
            {
                await using var connection = new NpgsqlConnection(database.ConnectionString);
                await connection.OpenAsync();
                await using var ensure = new NpgsqlCommand("SELECT loyalty.ensure_ledger_partitions($1, 12)", connection);
                ensure.Parameters.Add(new NpgsqlParameter { Value = from });
                return (int)(await ensure.ExecuteScalarAsync())!;
            }));
            created += counts.Sum();
        }
        Assert.Equal(120L, created);
        await using var check = new NpgsqlConnection(database.ConnectionString);
        await check.OpenAsync();
        await using var count = new NpgsqlCommand("SELECT count(*) FROM pg_tables WHERE schemaname = 'loyalty' AND tablename ~ '^ledger_20[4-4][0-9]_'", check);
        Assert.Equal(120L, (long)(await count.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task A_database_newer_than_the_code_is_refused_with_a_clear_error()
    {
        await using var database = await TestDatabase.CreateAsync("migrate_newer");
        await MigrationRunner.MigrateAsync(database.ConnectionString);
        await using (var connection = new NpgsqlConnection(database.ConnectionString))
        {
            await connection.OpenAsync();
            await using var newer = new NpgsqlCommand("INSERT INTO loyalty_schema_migrations (version, name, checksum) VALUES (999, 'future', 'x')", connection);
            await newer.ExecuteNonQueryAsync();
        }
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => MigrationRunner.MigrateAsync(database.ConnectionString));
        Assert.Contains("schema version 999, newer than this build", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_edited_migration_is_refused()
    {
        await using var database = await TestDatabase.CreateAsync("migrate_edited");
        await MigrationRunner.MigrateAsync(database.ConnectionString);
        await using (var connection = new NpgsqlConnection(database.ConnectionString))
        {
            await connection.OpenAsync();
            await using var edit = new NpgsqlCommand("UPDATE loyalty_schema_migrations SET checksum = 'changed' WHERE version = 2", connection);
            await edit.ExecuteNonQueryAsync();
        }
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => MigrationRunner.MigrateAsync(database.ConnectionString));
        Assert.Contains("Migration 2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_database_is_named_in_the_error()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            MigrationRunner.MigrateAsync("Host=127.0.0.1;Port=1;Username=postgres;Database=nowhere;Timeout=2"));
        Assert.Contains("127.0.0.1:1", error.Message, StringComparison.Ordinal);
        Assert.Contains("unreachable", error.Message, StringComparison.Ordinal);
    }
}
