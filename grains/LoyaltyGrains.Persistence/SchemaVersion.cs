using Npgsql;

namespace LoyaltyGrains.Persistence;

/// <summary>
/// What a node running with a DML-only role checks instead of migrating (Loyalty:Database:ApplyMigrations = false):
/// the database's schema must be exactly this build's — every migration applied, with the same text, none newer —
/// because such a role could not apply a missing one, and a newer schema may not be what this build reads and writes.
/// </summary>
public static class SchemaVersion
{
    /// <summary>The schema as recorded by the migrations, and how far ahead the ledger's monthly partitions reach.</summary>
    public sealed record State(int Version, int MonthsAhead);

    /// <summary>Throws <see cref="InvalidOperationException"/> naming what is wrong unless the schema is this build's.</summary>
    public static async Task<State> RequireCurrentAsync(string connectionString, CancellationToken cancellationToken = default)
    {
        await using var connection = await MigrationRunner.OpenAsync(connectionString, cancellationToken);
        await using (var exists = new NpgsqlCommand("SELECT to_regclass('loyalty_schema_migrations') IS NOT NULL", connection))
        {
            if (!(bool)(await exists.ExecuteScalarAsync(cancellationToken))!)
            {
                throw new InvalidOperationException(
                    $"the database has no LoyaltyGrains schema and this node does not migrate (Loyalty:Database:ApplyMigrations=false): run the migrate verb of this build first (schema version {MigrationRunner.LatestVersion})");
            }
        }
        var applied = new Dictionary<int, string>();
        await using (var read = new NpgsqlCommand("SELECT version, checksum FROM loyalty_schema_migrations", connection))
        await using (var reader = await read.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken)) applied[reader.GetInt32(0)] = reader.GetString(1);
        }
        var version = applied.Count == 0 ? 0 : applied.Keys.Max();
        if (version > MigrationRunner.LatestVersion)
        {
            throw new InvalidOperationException(
                $"the database is at schema version {version}, newer than this build's {MigrationRunner.LatestVersion}: upgrade the engine, or use a database of this version");
        }
        foreach (var migration in MigrationRunner.Known)
        {
            if (!applied.TryGetValue(migration.Version, out var checksum))
            {
                throw new InvalidOperationException(
                    $"the database is at schema version {version}, older than this build's {MigrationRunner.LatestVersion} (migration {migration.Version} {migration.Name} not applied) " +
                    "and this node does not migrate (Loyalty:Database:ApplyMigrations=false): run the migrate verb of this build first");
            }
            if (checksum != migration.Checksum)
            {
                throw new InvalidOperationException(
                    $"migration {migration.Version} ({migration.Name}) was applied with different text (checksum {checksum}, this build {migration.Checksum}); migrations are never edited after release");
            }
        }
        return new State(version, await MonthsAheadAsync(connection, cancellationToken));
    }

    /// <summary>How many monthly ledger partitions exist from this month on, without a gap (0: not even this month's).</summary>
    private static async Task<int> MonthsAheadAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        // The first month without a partition, counted from this one: the months before it are all there.
        await using var command = new NpgsqlCommand("""
            SELECT coalesce(min(ahead), 12) FROM generate_series(0, 11) AS ahead
             WHERE to_regclass(format('loyalty.ledger_%s',
                       to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => ahead), 'YYYY_MM'))) IS NULL
            """, connection);
        return (int)(await command.ExecuteScalarAsync(cancellationToken))!;
    }
}
