using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace LoyaltyGrains.Persistence;

/// <summary>
/// Applies the embedded, versioned migrations (Migrations/NNNN_name.sql) in order, each in its own transaction,
/// under a PostgreSQL advisory lock so several silos starting together apply them once. Idempotent. Refuses to run
/// against a database at a newer version than this build, or whose applied migration text has changed.
/// </summary>
public static class MigrationRunner
{
    /// <summary>Arbitrary but fixed: the advisory lock every LoyaltyGrains process takes while migrating.</summary>
    private const long AdvisoryLockKey = 0x4C6F79616C7479; // "Loyalty"

    public sealed record Migration(int Version, string Name, string Sql, string Checksum);

    public static IReadOnlyList<Migration> Known { get; } = LoadEmbedded();

    public static int LatestVersion => Known[^1].Version;

    /// <summary>Migrates the database; returns the versions applied now (empty when it was up to date).</summary>
    public static Task<IReadOnlyList<int>> MigrateAsync(string connectionString, ILogger? logger = null, CancellationToken cancellationToken = default) =>
        MigrateAsync(connectionString, LatestVersion, logger, cancellationToken);

    /// <summary>Migrates the database as far as <paramref name="upToVersion"/> (upgrade tests: a database as an earlier release left it).</summary>
    public static async Task<IReadOnlyList<int>> MigrateAsync(string connectionString, int upToVersion, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(connectionString, cancellationToken);
        await using (var lockCommand = new NpgsqlCommand($"SELECT pg_advisory_lock({AdvisoryLockKey})", connection))
        {
            await lockCommand.ExecuteNonQueryAsync(cancellationToken);
        }
        try
        {
            await using (var create = new NpgsqlCommand(
                """
                CREATE TABLE IF NOT EXISTS loyalty_schema_migrations (
                    version    integer     PRIMARY KEY,
                    name       text        NOT NULL,
                    checksum   text        NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())
                """, connection))
            {
                await create.ExecuteNonQueryAsync(cancellationToken);
            }
            var applied = new Dictionary<int, (string Name, string Checksum)>();
            await using (var read = new NpgsqlCommand("SELECT version, name, checksum FROM loyalty_schema_migrations", connection))
            await using (var reader = await read.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken)) applied[reader.GetInt32(0)] = (reader.GetString(1), reader.GetString(2));
            }
            if (applied.Count > 0 && applied.Keys.Max() > LatestVersion)
            {
                throw new InvalidOperationException(
                    $"The database is at schema version {applied.Keys.Max()}, newer than this build's {LatestVersion}: upgrade the engine, or use a database of this version.");
            }
            var appliedNow = new List<int>();
            foreach (var migration in Known.Where(m => m.Version <= upToVersion))
            {
                if (applied.TryGetValue(migration.Version, out var done))
                {
                    if (done.Checksum != migration.Checksum)
                    {
                        throw new InvalidOperationException(
                            $"Migration {migration.Version} ({migration.Name}) was applied with different text (checksum {done.Checksum}, this build {migration.Checksum}); migrations are never edited after release.");
                    }
                    continue;
                }
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                await using (var apply = new NpgsqlCommand(migration.Sql, connection, transaction))
                {
                    await apply.ExecuteNonQueryAsync(cancellationToken);
                }
                await using (var record = new NpgsqlCommand("INSERT INTO loyalty_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", connection, transaction))
                {
                    record.Parameters.Add(new NpgsqlParameter { Value = migration.Version });
                    record.Parameters.Add(new NpgsqlParameter { Value = migration.Name });
                    record.Parameters.Add(new NpgsqlParameter { Value = migration.Checksum });
                    await record.ExecuteNonQueryAsync(cancellationToken);
                }
                await transaction.CommitAsync(cancellationToken);
                appliedNow.Add(migration.Version);
                logger?.LogInformation("Applied database migration {Version} {Name}", migration.Version, migration.Name);
            }
            return appliedNow;
        }
        finally
        {
            await using var unlock = new NpgsqlCommand($"SELECT pg_advisory_unlock({AdvisoryLockKey})", connection);
            await unlock.ExecuteNonQueryAsync(CancellationToken.None);
        }
    }

    /// <summary>Opens a connection, turning "cannot connect" into an error that names the server.</summary>
    public static async Task<NpgsqlConnection> OpenAsync(string connectionString, CancellationToken cancellationToken)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var connection = new NpgsqlConnection(connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            return connection;
        }
        catch (Exception ex) when (ex is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
        {
            await connection.DisposeAsync();
            throw new InvalidOperationException(
                $"PostgreSQL at {builder.Host}:{builder.Port} (database '{builder.Database}', user '{builder.Username}') is unreachable: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// The hash of what a migration does: its statements, without its full-line comments, so the explanation of a
    /// released migration can be improved without every deployed database refusing it as edited.
    /// </summary>
    public static string Checksum(string sql)
    {
        var statements = string.Join('\n', sql.Split('\n').Where(line => !line.TrimStart().StartsWith("--", StringComparison.Ordinal)));
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(statements)))[..16];
    }

    private static Migration[] LoadEmbedded()
    {
        var assembly = typeof(MigrationRunner).Assembly;
        var migrations = new List<Migration>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.EndsWith(".sql", StringComparison.Ordinal)))
        {
            // LoyaltyGrains.Persistence.Migrations.0005_ledger.sql
            var file = resource["LoyaltyGrains.Persistence.Migrations.".Length..^".sql".Length];
            var underscore = file.IndexOf('_', StringComparison.Ordinal);
            var version = int.Parse(file.AsSpan(0, underscore), System.Globalization.CultureInfo.InvariantCulture);
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream, Encoding.UTF8);
            var sql = reader.ReadToEnd().Replace("\r\n", "\n", StringComparison.Ordinal);
            var checksum = Checksum(sql);
            migrations.Add(new Migration(version, file[(underscore + 1)..], sql, checksum));
        }
        migrations.Sort((a, b) => a.Version.CompareTo(b.Version));
        for (var i = 0; i < migrations.Count; i++)
        {
            if (migrations[i].Version != i + 1) throw new InvalidOperationException($"migration versions must be 1..n without gaps; found {migrations[i].Version} at {i + 1}");
        }
        return [.. migrations];
    }
}
