using System.Globalization;
using System.Text.RegularExpressions;
using Google.Protobuf.WellKnownTypes;
using LoyaltyGrains.Gateway.V1;
using LoyaltyGrains.Persistence;
using LoyaltyGrains.Tests.Durability;
using Npgsql;

namespace LoyaltyGrains.Tests.Cli;

/// <summary>
/// Least-privilege database roles as docs/OPERATIONS.md sets them up: the roles block run as written, `migrate` as the
/// migration role, and a durable silo as the DML-only runtime role (Loyalty:Database:ApplyMigrations=false) serving
/// real traffic — postings, the partner outbox and payouts, the audit table, membership, grain state. A silo that does
/// not migrate refuses a database whose schema is not this build's.
/// </summary>
[Collection(ProcessesCollection.Name)]
public sealed class MigrateRolesTests
{
    private static readonly Dictionary<string, string> DmlOnly = new() { ["Loyalty__Database__ApplyMigrations"] = "false" };

    [Fact]
    public async Task Migrate_as_the_migration_role_then_a_silo_serves_with_the_DML_only_role()
    {
        await using var database = await TestDatabase.CreateAsync("roles");
        var suffix = Guid.NewGuid().ToString("N")[..10];
        var (migrator, runtime) = ($"lg_migrator_{suffix}", $"lg_runtime_{suffix}");
        try
        {
            await ExecuteAsync(database.ConnectionString, RolesSql(migrator, runtime, database.Name));
            var asMigrator = new NpgsqlConnectionStringBuilder(database.ConnectionString) { Username = migrator, Password = "change-me-migrations" }.ConnectionString;
            var asRuntime = new NpgsqlConnectionStringBuilder(database.ConnectionString) { Username = runtime, Password = "change-me-app" }.ConnectionString;

            var migrated = await SiloVerb.RunAsync(["migrate", "--wait", "30s"], new Dictionary<string, string> { ["LOYALTY_POSTGRES"] = asMigrator });
            Assert.True(migrated.Exit == 0, migrated.ToString());
            var summary = Regex.Match(migrated.Out, @"migrate: schema at version (\d+) \(this build's\); ledger partitions for (\d+) months from this one");
            Assert.True(summary.Success, migrated.ToString());
            Assert.Equal(MigrationRunner.LatestVersion, int.Parse(summary.Groups[1].Value, CultureInfo.InvariantCulture));
            Assert.InRange(int.Parse(summary.Groups[2].Value, CultureInfo.InvariantCulture), 3, 12);
            var again = await SiloVerb.RunAsync(["migrate"], new Dictionary<string, string> { ["LOYALTY_POSTGRES"] = asMigrator });
            Assert.True(again.Exit == 0, again.ToString());

            // The runtime role reads and writes rows, and nothing more.
            var refused = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(asRuntime, "CREATE TABLE loyalty.intruder (id int)"));
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, refused.SqlState);
            refused = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(asRuntime, "TRUNCATE loyalty.ledger_keys"));
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, refused.SqlState);
            refused = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(asRuntime, "ALTER TABLE loyalty.ledger ADD COLUMN extra int"));
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, refused.SqlState);

            var (silo, _) = await SiloProcess.StartAsync(asRuntime, SiloProcess.FreePorts(), SiloProcess.StartTimeout, DmlOnly);
            await using (silo)
            {
                var run = suffix[..6];
                var admin = new Admin.AdminClient(silo.Channel);
                var processing = new Processing.ProcessingClient(silo.Channel);
                var balances = new Balances.BalancesClient(silo.Channel);
                var now = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-1));
                await admin.UpsertPartnerAsync(new Partner { PartnerId = "fuel-" + run, Name = "Fuel" });
                await admin.UpsertCampaignAsync(new Campaign
                {
                    CampaignId = "fuel5-" + run, Name = "Fuel 5%", PartnerId = "fuel-" + run, RateBps = 500, MerchantIds = { "station-" + run },
                    StartsAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(-1)), EndsAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(30)),
                    BudgetMinor = 1_000_000,
                });
                await admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = "dml-" + run });
                await admin.IssueCardAsync(new IssueCardRequest { CardId = "dml-card-" + run, MemberId = "dml-" + run });
                var authorized = await processing.AuthorizeAsync(new AuthorizeRequest
                {
                    TransactionId = "a-" + run, CardId = "dml-card-" + run, AmountMinor = 100_000, Currency = "RUB", Mcc = 5541, MerchantId = "station-" + run, OccurredAt = now,
                });
                Assert.Equal(PostingStatus.Accepted, authorized.Status);
                var captured = await processing.CaptureAsync(new CaptureRequest
                {
                    TransactionId = "c-" + run, AuthorizationId = "a-" + run, CardId = "dml-card-" + run, AmountMinor = 100_000, OccurredAt = now,
                });
                Assert.Equal(PostingStatus.Accepted, captured.Status);
                var retried = await processing.CaptureAsync(new CaptureRequest
                {
                    TransactionId = "c-" + run, AuthorizationId = "a-" + run, CardId = "dml-card-" + run, AmountMinor = 100_000, OccurredAt = now,
                });
                Assert.Equal(PostingStatus.Duplicate, retried.Status);
                var balance = await balances.GetBalanceAsync(new GetBalanceRequest { MemberId = "dml-" + run });
                Assert.True(balance.AvailableMinor > 0, balance.ToString());
                Assert.Equal(captured.AvailableMinor, balance.AvailableMinor);

                Assert.Contains($"Schema version {MigrationRunner.LatestVersion} is this build's", silo.Log, StringComparison.Ordinal);
                Assert.DoesNotContain("42501", silo.Log, StringComparison.Ordinal);
                Assert.DoesNotContain("permission denied", silo.Log, StringComparison.OrdinalIgnoreCase);
                silo.Terminate();
                Assert.Equal(0, await silo.WaitForExitAsync(TimeSpan.FromSeconds(40)));
            }
            Assert.Empty(await LedgerChecks.ViolationsAsync(database.ConnectionString));
            Assert.True(await ScalarAsync(database.ConnectionString, $"SELECT count(*) FROM loyalty.ledger WHERE member_id = 'dml-{suffix[..6]}'") >= 2);
            Assert.True(await ScalarAsync(database.ConnectionString, $"SELECT count(*) FROM loyalty.audit WHERE member_id = 'dml-{suffix[..6]}'") >= 2);
        }
        finally
        {
            await database.DisposeAsync();
            var superuser = new NpgsqlConnectionStringBuilder(TestDatabase.ServerConnectionString()).ConnectionString;
            await ExecuteAsync(superuser, $"DROP ROLE IF EXISTS {runtime}; DROP ROLE IF EXISTS {migrator}");
        }
    }

    [Fact]
    public async Task A_silo_that_does_not_migrate_refuses_a_database_without_this_builds_schema()
    {
        await using var database = await TestDatabase.CreateAsync("nomigrate");
        var ports = SiloProcess.FreePorts();
        var environment = new Dictionary<string, string>(DmlOnly)
        {
            ["LOYALTY_POSTGRES"] = database.ConnectionString,
            ["LOYALTY_GRPC_PORT"] = ports.Grpc.ToString(CultureInfo.InvariantCulture),
            ["LOYALTY_METRICS_PORT"] = ports.Metrics.ToString(CultureInfo.InvariantCulture),
            ["LOYALTY_SILO_PORT"] = ports.Silo.ToString(CultureInfo.InvariantCulture),
            ["LOYALTY_GATEWAY_PORT"] = ports.Gateway.ToString(CultureInfo.InvariantCulture),
        };
        var empty = await SiloVerb.RunAsync([], environment);
        Assert.True(empty.Exit == 1, empty.ToString());
        Assert.Contains("no LoyaltyGrains schema", empty.Out + empty.Error, StringComparison.Ordinal);
        Assert.Contains("run the migrate verb", empty.Out + empty.Error, StringComparison.Ordinal);

        // An older schema: the last migration not applied (as if this build were newer than the database).
        var migrated = await SiloVerb.RunAsync(["migrate"], new Dictionary<string, string> { ["LOYALTY_POSTGRES"] = database.ConnectionString });
        Assert.True(migrated.Exit == 0, migrated.ToString());
        await ExecuteAsync(database.ConnectionString, $"DELETE FROM loyalty_schema_migrations WHERE version = {MigrationRunner.LatestVersion}");
        var older = await SiloVerb.RunAsync([], environment);
        Assert.True(older.Exit == 1, older.ToString());
        Assert.Contains($"schema version {MigrationRunner.LatestVersion - 1}, older than this build's {MigrationRunner.LatestVersion}", older.Out + older.Error, StringComparison.Ordinal);

        // A newer schema: a version this build does not know.
        await ExecuteAsync(database.ConnectionString,
            $"INSERT INTO loyalty_schema_migrations (version, name, checksum) VALUES ({MigrationRunner.LatestVersion}, 'x', '{MigrationRunner.Known[^1].Checksum}'), ({MigrationRunner.LatestVersion + 1}, 'future', 'f')");
        var newer = await SiloVerb.RunAsync([], environment);
        Assert.True(newer.Exit == 1, newer.ToString());
        Assert.Contains($"schema version {MigrationRunner.LatestVersion + 1}, newer than this build's", newer.Out + newer.Error, StringComparison.Ordinal);
    }

    /// <summary>The roles block of docs/OPERATIONS.md, with this test's role and database names.</summary>
    private static string RolesSql(string migrator, string runtime, string databaseName)
    {
        var operations = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "OPERATIONS.md"));
        var match = Regex.Match(operations, "```sql\n(-- LoyaltyGrains least-privilege roles.*?)```", RegexOptions.Singleline);
        Assert.True(match.Success, "docs/OPERATIONS.md has no roles block");
        var sql = match.Groups[1].Value;
        Assert.Contains("loyalty_migrations", sql, StringComparison.Ordinal);
        Assert.Contains("loyalty_app", sql, StringComparison.Ordinal);
        return Regex.Replace(sql, @"DATABASE loyalty\b", $"DATABASE \"{databaseName}\"")
            .Replace("loyalty_migrations", migrator, StringComparison.Ordinal)
            .Replace("loyalty_app", runtime, StringComparison.Ordinal);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "LoyaltyGrains.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("LoyaltyGrains.sln not found above " + AppContext.BaseDirectory);
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<long> ScalarAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }
}
