using System.Net;
using LoyaltyGrains.Gateway.Auth;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace LoyaltyGrains.Gateway;

/// <summary>What every process serving loyalty.v1 sets up alike (the silo's co-hosted gateway and the gateway host, gateway/LoyaltyGrains.GatewayHost).</summary>
public static class NodeHosting
{
    /// <summary>
    /// gRPC on HTTP/2 (h2c, or TLS with Loyalty:Tls:CertificatePath) and, on its own port, HTTP/1.1 for /metrics and the
    /// probes. Processors keep long-lived connections: a ping after 30 s of silence finds a dead peer (its calls then
    /// fail fast on the client and are retried, which is safe: every message is idempotent).
    /// </summary>
    public static void ListenForLoyalty(this KestrelServerOptions kestrel, IPAddress address, int grpcPort, int metricsPort, TlsSettings tls)
    {
        kestrel.Listen(address, grpcPort, listen =>
        {
            listen.Protocols = HttpProtocols.Http2;
            tls.Apply(listen);
        });
        kestrel.Limits.Http2.MaxStreamsPerConnection = 1024;
        kestrel.AddServerHeader = false;
        kestrel.Limits.Http2.KeepAlivePingDelay = TimeSpan.FromSeconds(30);
        kestrel.Limits.Http2.KeepAlivePingTimeout = TimeSpan.FromSeconds(10);
        kestrel.Listen(address, metricsPort, listen => listen.Protocols = HttpProtocols.Http1);
    }

    /// <summary>
    /// On the metrics port: Prometheus /metrics, and for load balancers and Kubernetes probes /healthz (live: the process
    /// answers) and /readyz (ready: every registered check, e.g. database reachable and silo active, or a silo answers).
    /// </summary>
    public static WebApplication MapLoyaltyProbes(this WebApplication app, int metricsPort)
    {
        var metricsHost = $"*:{metricsPort}";
        app.MapPrometheusScrapingEndpoint().RequireHost(metricsHost);
        app.MapHealthChecks("/healthz", new Microsoft.AspNetCore.Diagnostics.HealthChecks.HealthCheckOptions { Predicate = _ => false })
            .RequireHost(metricsHost);
        app.MapHealthChecks("/readyz", new Microsoft.AspNetCore.Diagnostics.HealthChecks.HealthCheckOptions { ResponseWriter = WriteReadiness })
            .RequireHost(metricsHost);
        return app;
    }

    /// <summary>
    /// The overall status on the first line (what probes compare), then one line per check with its own status and why:
    /// failed probes are not logged one by one, so this is where an operator reads why a node is not ready.
    /// </summary>
    private static Task WriteReadiness(HttpContext context, Microsoft.Extensions.Diagnostics.HealthChecks.HealthReport report)
    {
        context.Response.ContentType = "text/plain; charset=utf-8";
        var text = new System.Text.StringBuilder().Append(report.Status).Append('\n');
        foreach (var (name, entry) in report.Entries)
        {
            text.Append(name).Append(": ").Append(entry.Status);
            if (entry.Description is { Length: > 0 } why) text.Append(" (").Append(why).Append(')');
            text.Append('\n');
        }
        return context.Response.WriteAsync(text.ToString());
    }

    /// <summary>Runs the host; an error that stops it is one clear line and exit 1, not an unhandled-exception abort (134).</summary>
    public static async Task<int> RunLoyaltyAsync(this WebApplication app, string what)
    {
        try
        {
            await app.RunAsync();
            return 0;
        }
        catch (Exception ex)
        {
            app.Logger.LogCritical(ex, "{What} stopped on an error", what);
            return 1;
        }
    }
}
