using System.Data.Common;
using LoyaltyGrains.Grains;
using LoyaltyGrains.Grains.Ledger;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace LoyaltyGrains.Persistence;

/// <summary>PostgreSQL mode: migrations, ADO.NET clustering, grain storage and reminders, and the ledger.</summary>
public static class PostgresHosting
{
    /// <summary>The ADO.NET invariant the Orleans providers look up (their default is SQL Server).</summary>
    public const string Invariant = "Npgsql";
    public const string PubSubStore = "PubSubStore";

    /// <summary>
    /// Brings the database to this build's schema and creates the ledger's monthly partitions ahead. Run it before
    /// the silo starts: clustering reads its queries from the database it creates.
    /// </summary>
    public static async Task PrepareDatabaseAsync(string connectionString, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        await MigrationRunner.MigrateAsync(connectionString, logger, cancellationToken);
        await using var connection = await MigrationRunner.OpenAsync(connectionString, cancellationToken);
        await using var partitions = new NpgsqlCommand("SELECT loyalty.ensure_ledger_partitions(now(), 3)", connection);
        await partitions.ExecuteScalarAsync(cancellationToken);
    }

    /// <summary>
    /// Pooled connections skip the reset on return: it discarded the providers' cached plans (about 2× storage throughput).
    /// Unless the operator set them: a connection attempt gives up after 5 s and a statement after 15 s (Npgsql's 15 s
    /// and 30 s defaults held grains, and the processors behind them, for as long during a database freeze).
    /// </summary>
    public static string Tune(string connectionString)
    {
        // Npgsql's builder reports every keyword it knows as present; a plain builder holds only what the string says.
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        var tuned = new NpgsqlConnectionStringBuilder(connectionString) { NoResetOnClose = true };
        if (!given.ContainsKey("Timeout")) tuned.Timeout = 5;
        if (!given.ContainsKey("Command Timeout") && !given.ContainsKey("CommandTimeout")) tuned.CommandTimeout = 15;
        return tuned.ConnectionString;
    }

    public static ISiloBuilder UseLoyaltyPostgres(this ISiloBuilder silo, string connectionString, PostgresLedgerOptions? ledgerOptions = null)
    {
        var tuned = Tune(connectionString);
        DbProviderFactories.RegisterFactory(Invariant, NpgsqlFactory.Instance);
        silo.UseAdoNetClustering(options =>
        {
            options.Invariant = Invariant;
            options.ConnectionString = tuned;
        });
        silo.AddAdoNetGrainStorage(StorageNames.Loyalty, options =>
        {
            options.Invariant = Invariant;
            options.ConnectionString = tuned;
        });
        silo.AddAdoNetGrainStorage(PubSubStore, options =>
        {
            options.Invariant = Invariant;
            options.ConnectionString = tuned;
        });
        silo.UseAdoNetReminderService(options =>
        {
            options.Invariant = Invariant;
            options.ConnectionString = tuned;
        });
        var ledger = ledgerOptions ?? new PostgresLedgerOptions();
        silo.Services.AddSingleton(sp => new PostgresAvailability(sp.GetRequiredService<ILoggerFactory>().CreateLogger("LoyaltyGrains.Database")));
        silo.Services.AddSingleton(sp => new PostgresLedger(tuned, ledger, sp.GetRequiredService<ILogger<PostgresLedger>>(), sp.GetRequiredService<PostgresAvailability>()));
        // The same instance: the container disposes it through both registrations, which DisposeAsync tolerates.
        silo.Services.AddSingleton<ILedger>(sp => sp.GetRequiredService<PostgresLedger>());
        silo.Services.AddSingleton<LoyaltyGrains.Grains.Settlement.IPartnerSettlementStore>(_ => new PostgresPartnerSettlement(tuned));
        return silo;
    }

    /// <summary>A separate gateway process joins the cluster as a client through the same membership table.</summary>
    public static IClientBuilder UseLoyaltyPostgresClustering(this IClientBuilder client, string connectionString)
    {
        DbProviderFactories.RegisterFactory(Invariant, NpgsqlFactory.Instance);
        var tuned = Tune(connectionString);
        client.UseAdoNetClustering(options =>
        {
            options.Invariant = Invariant;
            options.ConnectionString = tuned;
        });
        return client;
    }
}
