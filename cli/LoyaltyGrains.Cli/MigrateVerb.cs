using System.CommandLine;
using LoyaltyGrains.Persistence;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace LoyaltyGrains.Cli;

/// <summary>
/// `migrate`: brings the database (LOYALTY_POSTGRES or ConnectionStrings:Postgres) to this build's schema, creates the
/// ledger's monthly partitions three months ahead, and exits — for a deploy step (a Kubernetes Job) run with a
/// DDL-capable role, so the engine itself can run with a DML-only role and Loyalty:Database:ApplyMigrations=false.
/// The same advisory lock as a starting silo: running it beside silos that migrate is safe. Waits for a database that
/// is not up yet, like a starting node. Exit 0 migrated (or already current), 1 the database failed or has a newer
/// or edited schema, 2 no connection string.
/// </summary>
public static class MigrateVerb
{
    public static Command Create()
    {
        var wait = CliOptions.Duration("--wait", "how long to wait for PostgreSQL to accept connections (default Loyalty:Database:StartupWait, 10 min)", null);
        var command = new Command("migrate",
            "Apply the schema migrations to LOYALTY_POSTGRES (a role allowed to create objects), create the ledger's partitions three months ahead, and exit. " +
            "Run it before an upgrade and at least monthly when the engine runs with a DML-only role (Loyalty:Database:ApplyMigrations=false; docs/OPERATIONS.md).")
        {
            wait,
        };
        command.SetAction(async (parsed, cancellation) =>
        {
            var configuration = CliOptions.Configuration();
            var postgres = Environment.GetEnvironmentVariable(CliOptions.PostgresVariable) is { Length: > 0 } fromEnvironment
                ? fromEnvironment
                : configuration.GetConnectionString("Postgres") is { Length: > 0 } configured
                    ? configured
                    : throw new CommandLineException($"{CliOptions.PostgresVariable} (or ConnectionStrings:Postgres) is not set: the database to migrate");
            ConfigurationCheck.RequireConnectionString(postgres);
            var waitMax = parsed.GetResult(wait) is { Implicit: false } ? parsed.GetValue(wait) : ConfigurationCheck.StartupWait(configuration);
            using var logs = LoggerFactory.Create(b => b.AddConfiguration(configuration.GetSection("Logging")).AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
                o.UseUtcTimestamp = true;
            }));
            var log = logs.CreateLogger("LoyaltyGrains.Migrate");
            bool ready;
            try
            {
                ready = await DatabaseStartup.PrepareAsync(postgres, waitMax, log, applyMigrations: true);
            }
            catch (Exception ex) when (ex is InvalidOperationException or NpgsqlException)
            {
                throw new CommandLineException(ex.Message, LoyaltyCommandLine.RuntimeFailure);
            }
            if (!ready) return LoyaltyCommandLine.RuntimeFailure;
            var schema = await SchemaVersion.RequireCurrentAsync(postgres, cancellation);
            await parsed.InvocationConfiguration.Output.WriteLineAsync(
                $"migrate: schema at version {schema.Version} (this build's); ledger partitions for {schema.MonthsAhead} months from this one");
            return LoyaltyCommandLine.Success;
        });
        return command;
    }
}
