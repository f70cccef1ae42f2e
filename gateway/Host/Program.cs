using LoyaltyGrains.Gateway;
using LoyaltyGrains.GatewayHost;
using LoyaltyGrains.Persistence;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using OpenTelemetry.Metrics;
using Orleans.Configuration;

// Same settings style as the silo: Loyalty:* keys, LOYALTY_* environment variables win.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
var settings = GatewaySettings.From(builder.Configuration);

builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.Listen(settings.ListenAddress, settings.GrpcPort, listen => listen.Protocols = HttpProtocols.Http2);
    kestrel.Limits.Http2.MaxStreamsPerConnection = 1024;
    kestrel.AddServerHeader = false;
    kestrel.Limits.Http2.KeepAlivePingDelay = TimeSpan.FromSeconds(30);
    kestrel.Limits.Http2.KeepAlivePingTimeout = TimeSpan.FromSeconds(10);
    kestrel.Listen(settings.ListenAddress, settings.MetricsPort, listen => listen.Protocols = HttpProtocols.Http1);
});

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
// Admin calls and redemptions made through this gateway are audited in the same table as the silos' (gateway/Auth).
builder.Services.AddSingleton<LoyaltyGrains.Gateway.Auth.IAuditStore>(new LoyaltyGrains.Gateway.Auth.PostgresAuditStore(settings.PostgresConnectionString));
builder.Services.AddHealthChecks().AddCheck<ClusterHealthCheck>(ClusterHealthCheck.Name);
builder.Services.Configure<HostOptions>(options => options.ShutdownTimeout = settings.ShutdownTimeout);
builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
    .AddMeter("LoyaltyGrains", "Microsoft.Orleans", "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel")
    .AddRuntimeInstrumentation()
    .AddPrometheusExporter());

var app = builder.Build();
app.MapLoyaltyGateway();
app.MapPrometheusScrapingEndpoint().RequireHost($"*:{settings.MetricsPort}");
app.MapHealthChecks("/healthz", new Microsoft.AspNetCore.Diagnostics.HealthChecks.HealthCheckOptions { Predicate = _ => false })
    .RequireHost($"*:{settings.MetricsPort}");
app.MapHealthChecks("/readyz").RequireHost($"*:{settings.MetricsPort}");
app.Lifetime.ApplicationStarted.Register(() => app.Logger.LogInformation(
    "LoyaltyGrains gateway serving gRPC (h2c) on {Address}:{Port}, metrics on :{MetricsPort}/metrics; cluster '{ClusterId}' via PostgreSQL membership",
    settings.ListenAddress, settings.GrpcPort, settings.MetricsPort, settings.ClusterId));
try
{
    await app.RunAsync();
    return 0;
}
catch (Exception ex)
{
    app.Logger.LogCritical(ex, "LoyaltyGrains gateway stopped on an error");
    return 1;
}
