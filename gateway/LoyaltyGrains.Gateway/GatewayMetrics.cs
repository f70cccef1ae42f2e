using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using LoyaltyGrains.Gateway.Auth;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;

namespace LoyaltyGrains.Gateway;

/// <summary>
/// The gateway's own instruments (meter "LoyaltyGrains", from the host's <see cref="IMeterFactory"/>):
/// <list type="bullet">
/// <item><c>rpc.server.call.duration</c> (seconds): every gRPC call once, with the status the client gets, by
/// OpenTelemetry's RPC conventions (<c>rpc.system.name</c>, <c>rpc.service</c>, <c>rpc.method</c>,
/// <c>rpc.response.status_code</c>, and <c>error.type</c> for the codes gRPC counts as server errors). Measured by a
/// middleware in front of the whole pipeline, so refusals written before any interceptor runs — authentication,
/// authorization, rate limiting — are counted like the rest.</item>
/// <item>gauges of the audit queue (depth, capacity) and of the open WatchBalance streams.</item>
/// </list>
/// </summary>
public sealed class GatewayMetrics
{
    public const string MeterName = "LoyaltyGrains";
    public const string CallDurationName = "rpc.server.call.duration";
    /// <summary>What a call is labelled with when it matched no gRPC method (an unknown path): bounded cardinality.</summary>
    public const string Other = "_OTHER";

    /// <summary>Seconds, from 100 µs (a cached read) to 10 s (past every deadline we set): sub-millisecond calls stay apart.</summary>
    public static readonly double[] SecondsBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private static readonly long DeadlineSlack = Stopwatch.Frequency / 20;

    private readonly Histogram<double> _callDuration;

    public GatewayMetrics(IMeterFactory meters, AuditLog audit, WatchStreamQuota watchStreams)
    {
        var meter = meters.Create(MeterName, "1.0");
        _callDuration = meter.CreateHistogram(CallDurationName, "s",
            "gRPC calls served by this node and how long each took, by service, method and final status",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });
        meter.CreateObservableGauge("loyalty.audit.queue.depth", () => audit.Queued, "{record}",
            "Audit records reserved or waiting to be stored; at capacity audited calls are refused UNAVAILABLE");
        meter.CreateObservableGauge("loyalty.audit.queue.capacity", () => audit.Capacity, "{record}",
            "The audit queue's bound (Loyalty:Audit:QueueCapacity)");
        meter.CreateObservableGauge("loyalty.watch.streams", () => watchStreams.Open, "{stream}",
            "WatchBalance streams open on this node (each holds an observer on a member grain)");
    }

    /// <summary>The middleware: times the call, lets the pipeline run, then records the status it ended with.</summary>
    public async Task MeasureAsync(HttpContext context, RequestDelegate next)
    {
        if (!GrpcRefusal.IsGrpc(context))
        {
            await next(context);
            return;
        }
        var started = Stopwatch.GetTimestamp();
        var deadline = DeadlineOf(context.Request.Headers["grpc-timeout"], started);
        var threw = true;
        try
        {
            await next(context);
            threw = false;
        }
        finally
        {
            Record(context, started, deadline, threw);
        }
    }

    private void Record(HttpContext context, long started, long deadline, bool threw)
    {
        var code = FinalStatus(context, deadline, threw);
        var method = context.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>()?.Method;
        var tags = new TagList
        {
            { "rpc.system.name", "grpc" },
            { "rpc.service", method?.ServiceName ?? Other },
            { "rpc.method", method?.Name ?? Other },
            { "rpc.response.status_code", AuditRecord.StatusName(code) },
        };
        if (IsServerError(code)) tags.Add("error.type", AuditRecord.StatusName(code));
        _callDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
    }

    /// <summary>The codes gRPC's conventions count as the server's errors (the rest are the caller's).</summary>
    public static bool IsServerError(StatusCode code) => code is StatusCode.Unknown or StatusCode.DeadlineExceeded or StatusCode.Unimplemented
        or StatusCode.Internal or StatusCode.Unavailable or StatusCode.DataLoss;

    /// <summary>
    /// What the client was told: a call the client reset ended at its deadline (DEADLINE_EXCEEDED) or by its choice
    /// (CANCELLED); otherwise grpc-status from the trailers, or from the headers of a trailers-only reply (refusals written
    /// by middleware, see <see cref="GrpcRefusal"/>); without one, cut off by its deadline (gRPC resets the stream),
    /// by an exception escaping the pipeline (UNKNOWN), or answered in plain HTTP (mapped as gRPC clients map it).
    /// </summary>
    public static StatusCode FinalStatus(HttpContext context, long deadline, bool threw)
    {
        // Reset before the reply completed (the trailers go out after this middleware returns): whatever status was
        // written never reached the client, which ended the call itself — at its deadline, or by cancelling. Its deadline
        // timer started before ours (the request was in flight), so a reset just short of our deadline is the deadline.
        if (context.RequestAborted.IsCancellationRequested && !threw)
        {
            return deadline != long.MaxValue && Stopwatch.GetTimestamp() >= deadline - DeadlineSlack ? StatusCode.DeadlineExceeded : StatusCode.Cancelled;
        }
        if (context.Response.SupportsTrailers() && context.Features.Get<IHttpResponseTrailersFeature>() is { } trailers
            && Parse(trailers.Trailers["grpc-status"]) is { } trailer) return trailer;
        if (Parse(context.Response.Headers["grpc-status"]) is { } header) return header;
        // Past its deadline gRPC resets the stream after setting DEADLINE_EXCEEDED, and the trailers are gone with it.
        if (deadline != long.MaxValue && Stopwatch.GetTimestamp() >= deadline) return StatusCode.DeadlineExceeded;
        if (threw) return StatusCode.Unknown;
        // gRPC's HTTP-to-status mapping, for a reply that carries no grpc-status.
        return context.Response.StatusCode switch
        {
            StatusCodes.Status400BadRequest => StatusCode.Internal,
            StatusCodes.Status401Unauthorized => StatusCode.Unauthenticated,
            StatusCodes.Status403Forbidden => StatusCode.PermissionDenied,
            StatusCodes.Status404NotFound => StatusCode.Unimplemented,
            StatusCodes.Status429TooManyRequests or StatusCodes.Status502BadGateway or StatusCodes.Status503ServiceUnavailable
                or StatusCodes.Status504GatewayTimeout => StatusCode.Unavailable,
            _ => StatusCode.Unknown,
        };
    }

    private static StatusCode? Parse(StringValues value) =>
        value.Count == 1 && int.TryParse(value[0], NumberStyles.None, CultureInfo.InvariantCulture, out var code) && code is >= 0 and <= 16
            ? (StatusCode)code
            : null;

    /// <summary>The call's deadline as a Stopwatch timestamp (long.MaxValue: none), from the grpc-timeout header ("100m", "5S").</summary>
    public static long DeadlineOf(StringValues header, long started)
    {
        if (header.Count != 1 || header[0] is not { Length: >= 2 and <= 9 } text) return long.MaxValue;
        if (!long.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var amount)) return long.MaxValue;
        var ticksPerUnit = text[^1] switch
        {
            'H' => TimeSpan.TicksPerHour,
            'M' => TimeSpan.TicksPerMinute,
            'S' => TimeSpan.TicksPerSecond,
            'm' => TimeSpan.TicksPerMillisecond,
            'u' => TimeSpan.TicksPerMicrosecond,
            'n' => 0,
            _ => -1,
        };
        if (ticksPerUnit < 0) return long.MaxValue;
        var timeout = ticksPerUnit == 0 ? TimeSpan.FromTicks(amount / 100) : TimeSpan.FromTicks(Math.Min(amount, TimeSpan.MaxValue.Ticks / ticksPerUnit) * ticksPerUnit);
        var stopwatchTicks = timeout.TotalSeconds * Stopwatch.Frequency;
        return stopwatchTicks >= long.MaxValue - started ? long.MaxValue : started + (long)stopwatchTicks;
    }
}

/// <summary>Puts <see cref="GatewayMetrics.MeasureAsync"/> in front of everything the host adds (routing, authentication, authorization).</summary>
internal sealed class GatewayMetricsStartupFilter(GatewayMetrics metrics) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.Use(metrics.MeasureAsync);
        next(app);
    };
}
