using LoyaltyGrains.Cli;
using LoyaltyGrains.Gateway;
using LoyaltyGrains.Grains;
using LoyaltyGrains.Persistence;
using Orleans.Configuration;

namespace LoyaltyGrains.Silo;

/// <summary>
/// The engine: what the silo executable runs with no verb. The embedded single node with demo data by default, durable
/// mode with a PostgreSQL connection string. Every setting is checked first (a bad one: one line and exit 2).
/// </summary>
public static class EngineHost
{
    public static async Task<int> RunAsync(string[] args)
    {
        // Content root is the app's own folder, so appsettings.json is found whatever the working directory.
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        if (ConfigurationCheck.FirstError(builder.Configuration) is { } configurationError)
        {
            await Console.Error.WriteLineAsync(configurationError);
            return LoyaltyCommandLine.UsageError;
        }
        var settings = EngineSettings.From(builder.Configuration);
        // Signing key (a development key only on loopback), reflection, TLS, audit table (silo/SiloSecurity.cs).
        if (SiloSecurity.Prepare(builder, settings) is not { } security) return 1;

        // Inline scheduling runs request parsing on the socket's I/O thread instead of queueing it to the thread pool; safe only
        // because nothing on the request path blocks. Off unless configured: it did not measurably change CPU per request here.
        if (builder.Configuration.GetValue("Loyalty:InlineScheduling", false))
        {
            builder.WebHost.UseSockets(sockets => sockets.UnsafePreferInlineScheduling = true);
        }
        // h2c by default: TLS terminates at the load balancer / service mesh; or here, with Loyalty:Tls:CertificatePath.
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenForLoyalty(settings.ListenAddress, settings.GrpcPort, settings.MetricsPort, security.Tls));

        if (settings.PostgresConnectionString is { } postgres)
        {
            // Durable mode: the schema first (clustering reads its queries from it), then a silo on PostgreSQL.
            using (var startupLogs = LoggerFactory.Create(b => b.AddConfiguration(builder.Configuration.GetSection("Logging")).AddConsole()))
            {
                var startupLog = startupLogs.CreateLogger("LoyaltyGrains.Startup");
                try
                {
                    if (!await DatabaseStartup.PrepareAsync(postgres, settings.DatabaseStartupWait, startupLog, settings.ApplyMigrations)) return 0;
                }
                catch (Exception ex)
                {
                    startupLog.LogCritical("Cannot start: {Reason}", ex.Message);
                    return 1;
                }
            }
            builder.UseOrleans(silo =>
            {
                silo.Configure<ClusterOptions>(options =>
                {
                    options.ClusterId = settings.ClusterId;
                    options.ServiceId = settings.ServiceId;
                });
                // Fixed ports: a restarted silo at the same endpoint declares its crashed predecessor dead at once.
                silo.ConfigureEndpoints(settings.AdvertisedAddress, settings.SiloPort, settings.SiloGatewayPort, listenOnAnyHostAddress: false);
                silo.UseLoyaltyPostgres(postgres, PostgresLedgerOptions.From(builder.Configuration) with { CommitTimeout = settings.CommitTimeout });
                silo.UseKubernetesHostingWhenInPod(builder.Configuration);
            });
            builder.Services.AddSingleton(new LoyaltyGrains.Analytics.AnalyticsDatabase(postgres));
            builder.Services.AddHealthChecks().AddCheck<DatabaseHealthCheck>(DatabaseHealthCheck.Name).AddCheck<SiloActiveHealthCheck>(SiloActiveHealthCheck.Name);
        }
        else
        {
            builder.UseOrleans(silo =>
            {
                // Embedded default: one node, localhost clustering, in-memory state and ledger, demo data. Not durable.
                silo.UseLocalhostClustering(settings.SiloPort, settings.SiloGatewayPort);
                silo.AddMemoryGrainStorage(StorageNames.Loyalty);
                silo.AddMemoryGrainStorage("PubSubStore");
                builder.Services.AddHostedService<DemoSeeder>();
            });
        }

        // Under "Loyalty:", not "Orleans:": Orleans reads its own section for providers (Orleans:GrainDirectory names directories).
        // How long idle grains stay in memory (Orleans default 15 min; cards 2 min by attribute). Operators keep members hot through a
        // peak day with e.g. Loyalty__GrainCollection__CollectionAge=04:00:00; the memory benchmark uses it to hold 1 M active.
        builder.Services.Configure<GrainCollectionOptions>(builder.Configuration.GetSection("Loyalty:GrainCollection"));
        // Grain-location cache (Orleans default 1 M entries): it saves remote directory lookups in a multi-silo cluster and costs
        // ~230 bytes per entry; a single silo, where every lookup is local, can shrink it (docs/BENCHMARKS.md, memory).
        builder.Services.Configure<GrainDirectoryOptions>(builder.Configuration.GetSection("Loyalty:GrainDirectory"));
        builder.Services.AddLoyaltyGrains();
        builder.Services.AddLoyaltyGateway();
        builder.Services.AddLoyaltyTelemetry("loyaltygrains-silo");

        // A graceful stop (SIGTERM) drains in-flight calls, then deactivates grains (snapshots) and leaves the cluster.
        builder.Services.Configure<HostOptions>(options => options.ShutdownTimeout = settings.ShutdownTimeout);

        var app = builder.Build();
        app.MapLoyaltyGateway();
        // Ready = it can commit: database reachable and this silo active in the cluster.
        app.MapLoyaltyProbes(settings.MetricsPort);
        // Started callbacks run last-registered first: the security line prints under the banner.
        app.Lifetime.ApplicationStarted.Register(() => security.PrintBanner(app.Logger));
        app.Lifetime.ApplicationStarted.Register(() => EngineSettings.PrintBanner(app.Logger, settings));
        return await app.RunLoyaltyAsync("LoyaltyGrains");
    }
}
