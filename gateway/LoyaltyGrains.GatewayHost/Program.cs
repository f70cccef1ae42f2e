using LoyaltyGrains.Gateway;
using LoyaltyGrains.Gateway.Auth;
using LoyaltyGrains.GatewayHost;
using LoyaltyGrains.Persistence;
using Orleans.Configuration;

// Same settings style as the silo: Loyalty:* keys, LOYALTY_* environment variables win.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
GatewaySettings settings;
try
{
    settings = GatewaySettings.From(builder.Configuration);
}
catch (Exception ex) when (ex is InvalidOperationException or FormatException)
{
    // A bad or missing setting: one line naming it and exit 2, as the silo does; not an unhandled-exception abort.
    await Console.Error.WriteLineAsync($"configuration: {ex.Message}");
    return 2;
}

// h2c by default (TLS at the load balancer), or TLS here with Loyalty:Tls:CertificatePath, as on a silo.
var tls = TlsSettings.From(builder.Configuration);
builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenForLoyalty(settings.ListenAddress, settings.GrpcPort, settings.MetricsPort, tls));

builder.UseOrleansClient(client =>
{
    client.Configure<ClusterOptions>(options =>
    {
        options.ClusterId = settings.ClusterId;
        options.ServiceId = settings.ServiceId;
    });
    client.UseLoyaltyPostgresClustering(settings.PostgresConnectionString);
    // Silos not up yet, or all restarting: keep trying (with a line now and then) rather than exit.
    client.UseConnectionRetryFilter<SiloConnectionRetry>();
});

builder.Services.AddLoyaltyGateway();
// Admin calls and redemptions made through this gateway are audited in the same table as the silos' (the gateway library's Auth/).
builder.Services.AddSingleton<LoyaltyGrains.Gateway.Auth.IAuditStore>(new LoyaltyGrains.Gateway.Auth.PostgresAuditStore(settings.PostgresConnectionString));
// Analytics (figures and what-if replay) read the same ledger database.
builder.Services.AddSingleton(new LoyaltyGrains.Analytics.AnalyticsDatabase(settings.PostgresConnectionString));
builder.Services.AddHealthChecks().AddCheck<ClusterHealthCheck>(ClusterHealthCheck.Name);
// Services start together: Kestrel listens (liveness answers, /readyz says not ready) while the Orleans client still waits
// for a silo, so a gateway installed before its silos is not restarted by its liveness probe.
builder.Services.Configure<HostOptions>(options => (options.ShutdownTimeout, options.ServicesStartConcurrently) = (settings.ShutdownTimeout, true));
builder.Services.AddLoyaltyTelemetry("loyaltygrains-gateway");

var app = builder.Build();
app.MapLoyaltyGateway();
// Ready = a silo of the cluster answers.
app.MapLoyaltyProbes(settings.MetricsPort);
app.Lifetime.ApplicationStarted.Register(() =>
{
    app.Logger.LogInformation(
        "LoyaltyGrains gateway serving gRPC on {Address}:{Port} (TLS: {Tls}), metrics on :{MetricsPort}/metrics; cluster '{ClusterId}' via PostgreSQL membership; bearer tokens required",
        settings.ListenAddress, settings.GrpcPort, tls.Describe(), settings.MetricsPort, settings.ClusterId);
    if (!System.Net.IPAddress.IsLoopback(settings.ListenAddress) && !tls.Enabled)
    {
        app.Logger.LogWarning("gRPC listens on {Address} without TLS: tokens travel in clear text. Set Loyalty:Tls:CertificatePath, or terminate TLS in front of this node.",
            settings.ListenAddress);
    }
});
return await app.RunLoyaltyAsync("LoyaltyGrains gateway");
