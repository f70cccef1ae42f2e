using System.Collections.Concurrent;
using System.Threading.RateLimiting;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace LoyaltyGrains.Gateway.Auth;

/// <summary>
/// Per-caller budgets with ASP.NET Core rate limiting, partitioned by the token's subject: calls per second (apps far
/// fewer than processors), enrolments per second, other admin calls per minute. Refusals are RESOURCE_EXHAUSTED.
/// Runs after authorization, so every partition belongs to an authenticated caller (anonymous calls never get here).
/// </summary>
public static class RateLimits
{
    public static string PolicyName(RateClass rate) => rate switch
    {
        RateClass.Enrollment => "loyalty-enrollment",
        RateClass.Admin => "loyalty-admin",
        _ => "loyalty-calls",
    };

    public static IServiceCollection AddLoyaltyRateLimits(this IServiceCollection services)
    {
        services.AddRateLimiter(_ => { });
        services.AddOptions<RateLimiterOptions>().Configure<IOptions<LoyaltyLimitsOptions>>((options, limitsOptions) =>
        {
            var limits = limitsOptions.Value;
            options.AddPolicy(PolicyName(RateClass.Calls), context =>
            {
                var caller = Caller.From(context.User);
                // An app token speaks for one member: its budget is a phone's, not a processor's.
                return caller.Roles == Roles.App
                    ? PerSecond("app:" + caller.Subject, limits.AppRequestsPerSecond)
                    : PerSecond("calls:" + caller.Subject, limits.RequestsPerSecond);
            });
            options.AddPolicy(PolicyName(RateClass.Enrollment), context => PerSecond("enroll:" + Caller.From(context.User).Subject, limits.EnrollmentsPerSecond));
            options.AddPolicy(PolicyName(RateClass.Admin), context => PerMinute("admin:" + Caller.From(context.User).Subject, limits.AdminCallsPerMinute));
            options.OnRejected = (rejected, _) =>
            {
                var retry = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? $"; retry after {after.TotalMilliseconds:0} ms" : "";
                var method = GrpcRefusal.MethodOf(rejected.HttpContext) is { } m ? RpcAccess.ShortName(m) : "call";
                return new ValueTask(GrpcRefusal.WriteAsync(rejected.HttpContext, StatusCode.ResourceExhausted, $"rate limit of this caller exceeded ({method}){retry}"));
            };
        });
        return services;
    }

    private static RateLimitPartition<string> PerSecond(string key, int perSecond) => Bucket(key, perSecond, TimeSpan.FromSeconds(1));

    private static RateLimitPartition<string> PerMinute(string key, int perMinute) => Bucket(key, perMinute, TimeSpan.FromMinutes(1));

    /// <summary>
    /// A burst of one interval's budget, then an even flow: refilled in tenths of the interval, or one token at a time
    /// for a budget smaller than ten (so a small budget is not rounded up).
    /// </summary>
    private static RateLimitPartition<string> Bucket(string key, int budget, TimeSpan interval)
    {
        budget = Math.Max(1, budget);
        var (tokens, period) = budget >= 10 ? (budget / 10, interval / 10) : (1, interval / budget);
        return RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = budget,
            TokensPerPeriod = tokens,
            ReplenishmentPeriod = period,
            QueueLimit = 0,
            AutoReplenishment = true,
        });
    }

    /// <summary>The rate-limiting middleware; needs the app (a WebApplication is both route and app builder).</summary>
    public static void UseLoyaltyRateLimits(this IEndpointRouteBuilder endpoints)
    {
        if (endpoints is not IApplicationBuilder app)
        {
            throw new InvalidOperationException("MapLoyaltyGateway needs a WebApplication (or call app.UseRateLimiter() yourself after UseAuthorization)");
        }
        app.UseRateLimiter();
    }
}

/// <summary>
/// Open WatchBalance streams, per subject and per process: each holds an observer on a member grain and a server task
/// for as long as the client keeps it, so their number is capped rather than their rate.
/// </summary>
public sealed class WatchStreamQuota(IOptions<LoyaltyLimitsOptions> options)
{
    private readonly ConcurrentDictionary<string, int> _perSubject = new(StringComparer.Ordinal);
    private int _total;

    public int Open => Volatile.Read(ref _total);

    /// <summary>A slot for one stream, or null with the reason when a cap is reached. Dispose the slot when the stream ends.</summary>
    public IDisposable? TryEnter(string subject, out string refusal)
    {
        var limits = options.Value;
        if (Interlocked.Increment(ref _total) > limits.WatchStreamsPerProcess)
        {
            Interlocked.Decrement(ref _total);
            refusal = $"this node already serves {limits.WatchStreamsPerProcess} WatchBalance streams; retry later or on another node";
            return null;
        }
        var mine = _perSubject.AddOrUpdate(subject, 1, static (_, n) => n + 1);
        if (mine > limits.WatchStreamsPerSubject)
        {
            Leave(subject);
            refusal = $"this caller already has {limits.WatchStreamsPerSubject} WatchBalance streams open";
            return null;
        }
        refusal = "";
        return new Slot(this, subject);
    }

    private void Leave(string subject)
    {
        Interlocked.Decrement(ref _total);
        // Remove the entry only when it is still 0, so a concurrent TryEnter's increment is never lost.
        if (_perSubject.AddOrUpdate(subject, 0, static (_, n) => n - 1) == 0) _perSubject.TryRemove(new KeyValuePair<string, int>(subject, 0));
    }

    private sealed class Slot(WatchStreamQuota quota, string subject) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) quota.Leave(subject);
        }
    }
}
