using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LoyaltyGrains.Gateway;
using LoyaltyGrains.Gateway.Auth;
using LoyaltyGrains.Gateway.V1;
using LoyaltyGrains.Tests.Auth;
using LoyaltyGrains.Tests.Durability;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace LoyaltyGrains.Tests.Api;

/// <summary>The engine with a two-per-minute admin budget and a one-record audit queue whose store can be held shut.</summary>
public sealed class MeteredEngineFixture : EngineFixture
{
    public RecordingAuditStore Store { get; } = new();

    protected override void Configure(WebApplicationBuilder builder)
    {
        builder.Configuration["Loyalty:Limits:AdminCallsPerMinute"] = "2";
        builder.Configuration["Loyalty:Audit:QueueCapacity"] = "1";
        builder.Configuration["Loyalty:Audit:DurableWait"] = "00:00:00.100";
        builder.Services.AddSingleton<IAuditStore>(Store);
    }
}

/// <summary>
/// Every gRPC call is counted once, with the status its client got, whoever answered it: the JwtBearer/authorization
/// middleware (before any interceptor), the rate limiter, the scope and audit interceptors, validation, the grains, or
/// the call's own deadline. Read through a MeterListener on this engine's own meter factory (other tests' engines
/// in the same process have theirs).
/// </summary>
public sealed class RpcMetricsTests(MeteredEngineFixture engine, ITestOutputHelper output) : IClassFixture<MeteredEngineFixture>
{
    private static readonly Timestamp Now = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-1));

    private sealed record Measured(string Service, string Method, string Status, string? ErrorType);

    private readonly Dictionary<StatusCode, int> _made = [];

    /// <summary>Makes the call, checks its client saw <paramref name="expected"/>, and counts it as made.</summary>
    private async Task Call(StatusCode expected, Func<Task> call)
    {
        var status = StatusCode.OK;
        try
        {
            await call();
        }
        catch (RpcException ex)
        {
            status = ex.StatusCode;
        }
        Assert.Equal(expected, status);
        _made[status] = _made.GetValueOrDefault(status) + 1;
    }

    /// <summary>
    /// An audited call while the store is open: first wait for the one-record queue to drain (a refusal's record, or the
    /// last call's, may still hold the slot for a moment after its reply), so only the held store makes it UNAVAILABLE.
    /// </summary>
    private async Task Audited(StatusCode expected, Func<Task> call)
    {
        var audit = engine.Services.GetRequiredService<AuditLog>();
        await WaitUntil(() => audit.Queued == 0, "the audit queue to drain");
        await Call(expected, call);
    }

    [Fact]
    public async Task A_mixed_run_is_counted_once_per_call_with_its_final_status()
    {
        var scope = engine.Services.GetRequiredService<IMeterFactory>();
        var measured = new ConcurrentQueue<Measured>();
        var gauges = new ConcurrentDictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Scope == scope) l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            if (instrument.Name != GatewayMetrics.CallDurationName) return;
            Assert.True(value >= 0);
            var labels = new Dictionary<string, string>();
            foreach (var tag in tags) labels[tag.Key] = (string)tag.Value!;
            string Tag(string key) => labels.GetValueOrDefault(key, "");
            Assert.Equal("grpc", Tag("rpc.system.name"));
            measured.Enqueue(new Measured(Tag("rpc.service"), Tag("rpc.method"), Tag("rpc.response.status_code"), Tag("error.type") is { Length: > 0 } e ? e : null));
        });
        listener.SetMeasurementEventCallback<int>((instrument, value, _, _) => gauges[instrument.Name] = value);
        listener.Start();

        var run = Guid.NewGuid().ToString("N")[..8];
        var member = "mx-" + run;
        var card = "card-" + member;
        var admin = new Admin.AdminClient(engine.Channel);
        var balances = new Balances.BalancesClient(engine.Channel);
        var processing = new Processing.ProcessingClient(engine.Channel);

        // OK
        await Audited(StatusCode.OK, () => admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = member }).ResponseAsync);
        await Audited(StatusCode.OK, () => admin.IssueCardAsync(new IssueCardRequest { CardId = card, MemberId = member }).ResponseAsync);
        await Call(StatusCode.OK, () => processing.AuthorizeAsync(new AuthorizeRequest
        {
            TransactionId = "a-" + run, CardId = card, AmountMinor = 10_000, Currency = "RUB", Mcc = 5411, MerchantId = "shop", OccurredAt = Now,
        }).ResponseAsync);
        await Call(StatusCode.OK, () => balances.GetBalanceAsync(new GetBalanceRequest { MemberId = member }).ResponseAsync);

        // UNAUTHENTICATED, answered by the authentication/authorization middleware: no token, and a forged one.
        await Call(StatusCode.Unauthenticated, () => new Balances.BalancesClient(engine.ChannelFor(null)).GetBalanceAsync(new GetBalanceRequest { MemberId = member }).ResponseAsync);
        await Call(StatusCode.Unauthenticated, () => new Balances.BalancesClient(engine.ChannelFor("not.a.jwt")).GetBalanceAsync(new GetBalanceRequest { MemberId = member }).ResponseAsync);

        // PERMISSION_DENIED: by role (authorization middleware) and by scope (interceptor).
        var otherApp = engine.ChannelFor(engine.Token("someone-" + run, [LoyaltyClaims.App]));
        await Call(StatusCode.PermissionDenied, () => new Admin.AdminClient(otherApp).GetProgramAsync(new GetProgramRequest()).ResponseAsync);
        await Call(StatusCode.PermissionDenied, () => new Balances.BalancesClient(otherApp).GetBalanceAsync(new GetBalanceRequest { MemberId = member }).ResponseAsync);

        // INVALID_ARGUMENT (validation) and NOT_FOUND (a grain's refusal).
        await Call(StatusCode.InvalidArgument, () => processing.AuthorizeAsync(new AuthorizeRequest
        {
            TransactionId = "bad-" + run, CardId = card, AmountMinor = -5, Currency = "RUB", Mcc = 5411, MerchantId = "shop", OccurredAt = Now,
        }).ResponseAsync);
        await Call(StatusCode.NotFound, () => balances.GetBalanceAsync(new GetBalanceRequest { MemberId = "nobody-" + run }).ResponseAsync);

        // RESOURCE_EXHAUSTED from the rate limiter: a subject's third admin call within the minute.
        var limited = new Admin.AdminClient(engine.ChannelFor(engine.Token("limited-" + run, [LoyaltyClaims.Admin])));
        await Audited(StatusCode.OK, () => limited.GetProgramAsync(new GetProgramRequest()).ResponseAsync);
        await Audited(StatusCode.OK, () => limited.GetProgramAsync(new GetProgramRequest()).ResponseAsync);
        await Call(StatusCode.ResourceExhausted, () => limited.GetProgramAsync(new GetProgramRequest()).ResponseAsync);

        // UNAVAILABLE from the audit interceptor: the store held, the one-record queue taken by the first enrolment.
        var auditLog = engine.Services.GetRequiredService<AuditLog>();
        await WaitUntil(() => auditLog.Queued == 0, "the audit queue to drain");
        engine.Store.Hold();
        try
        {
            await Call(StatusCode.OK, () => admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = "held1-" + run }).ResponseAsync);
            await Call(StatusCode.Unavailable, () => admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = "held2-" + run }).ResponseAsync);
            listener.RecordObservableInstruments();
            Assert.Equal((1L, 1L), (gauges["loyalty.audit.queue.depth"], gauges["loyalty.audit.queue.capacity"]));
        }
        finally
        {
            engine.Store.Release();
        }

        // UNIMPLEMENTED: a method no service has, labelled _OTHER (a client cannot mint label values).
        var nowhere = new Method<Empty, Empty>(MethodType.Unary, "loyalty.v1.Nowhere", "Nothing",
            Marshallers.Create<Empty>(m => m.ToByteArray(), Empty.Parser.ParseFrom), Marshallers.Create<Empty>(m => m.ToByteArray(), Empty.Parser.ParseFrom));
        await Call(StatusCode.Unimplemented, () => engine.Channel.CreateCallInvoker().AsyncUnaryCall(nowhere, null, new CallOptions(), new Empty()).ResponseAsync);

        // DEADLINE_EXCEEDED: a balance stream the client gives half a second; the open-streams gauge sees it meanwhile.
        await Call(StatusCode.DeadlineExceeded, async () =>
        {
            using var watch = balances.WatchBalance(new GetBalanceRequest { MemberId = member }, deadline: DateTime.UtcNow.AddMilliseconds(500));
            Assert.True(await watch.ResponseStream.MoveNext());
            listener.RecordObservableInstruments();
            Assert.Equal(1L, gauges["loyalty.watch.streams"]);
            while (await watch.ResponseStream.MoveNext())
            {
            }
        });

        // The server records a call when its pipeline returns, which for a stream cut off by its deadline can be a
        // moment after the client saw the status.
        var total = _made.Values.Sum();
        await WaitUntil(() => measured.Count >= total, $"{total} calls to be recorded");
        var counted = measured.GroupBy(m => m.Status).ToDictionary(g => g.Key, g => g.Count());
        var made = _made.ToDictionary(p => AuditRecord.StatusName(p.Key), p => p.Value);
        var line = string.Join(", ", made.Keys.Union(counted.Keys).Order(StringComparer.Ordinal)
            .Select(status => $"{status} {made.GetValueOrDefault(status)} made / {counted.GetValueOrDefault(status)} counted"));
        TestSummary.Record(output, nameof(RpcMetricsTests), $"rpc.server.call.duration, mixed run of {total} calls: {line}");
        Assert.Equal(made.OrderBy(p => p.Key, StringComparer.Ordinal), counted.OrderBy(p => p.Key, StringComparer.Ordinal));
        Assert.Equal(8, made.Count(p => p.Key != "OK"));

        // Labels: real methods by name, the unknown one bounded; error.type only on the codes that are the server's.
        Assert.Contains(measured, m => m is { Service: "loyalty.v1.Balances", Method: "GetBalance", Status: "UNAUTHENTICATED", ErrorType: null });
        Assert.Contains(measured, m => m is { Service: "loyalty.v1.Admin", Method: "GetProgram", Status: "RESOURCE_EXHAUSTED", ErrorType: null });
        Assert.Contains(measured, m => m is { Service: "loyalty.v1.Admin", Method: "EnrollMember", Status: "UNAVAILABLE", ErrorType: "UNAVAILABLE" });
        Assert.Contains(measured, m => m is { Service: "loyalty.v1.Balances", Method: "WatchBalance", Status: "DEADLINE_EXCEEDED", ErrorType: "DEADLINE_EXCEEDED" });
        Assert.Contains(measured, m => m is { Service: GatewayMetrics.Other, Method: GatewayMetrics.Other, Status: "UNIMPLEMENTED" });
        Assert.All(measured, m => Assert.Equal(GatewayMetrics.IsServerError(System.Enum.Parse<StatusCode>(m.Status.Replace("_", ""), ignoreCase: true)), m.ErrorType is not null));
    }

    private static async Task WaitUntil(Func<bool> condition, string what)
    {
        var until = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < until, $"gave up waiting for {what}");
            await Task.Delay(20);
        }
    }
}

/// <summary>How the metrics middleware reads a call's end when no interceptor is there to tell it.</summary>
public sealed class RpcFinalStatusTests
{
    private static Microsoft.AspNetCore.Http.DefaultHttpContext Context(int httpStatus = 200, string? grpcStatus = null)
    {
        var context = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        context.Response.StatusCode = httpStatus;
        if (grpcStatus is not null) context.Response.Headers["grpc-status"] = grpcStatus;
        return context;
    }

    [Theory]
    [InlineData(200, "16", StatusCode.Unauthenticated)]   // a trailers-only refusal
    [InlineData(200, "8", StatusCode.ResourceExhausted)]
    [InlineData(200, "99", StatusCode.Unknown)]            // not a gRPC code: as a missing one
    [InlineData(401, null, StatusCode.Unauthenticated)]    // plain HTTP answers, mapped as gRPC clients map them
    [InlineData(403, null, StatusCode.PermissionDenied)]
    [InlineData(404, null, StatusCode.Unimplemented)]
    [InlineData(429, null, StatusCode.Unavailable)]
    [InlineData(503, null, StatusCode.Unavailable)]
    [InlineData(200, null, StatusCode.Unknown)]
    public void The_status_is_grpc_status_else_the_http_mapping(int httpStatus, string? grpcStatus, StatusCode expected) =>
        Assert.Equal(expected, GatewayMetrics.FinalStatus(Context(httpStatus, grpcStatus), long.MaxValue, threw: false));

    [Fact]
    public void A_call_without_status_past_its_deadline_is_deadline_exceeded_and_one_that_threw_before_it_unknown()
    {
        var now = System.Diagnostics.Stopwatch.GetTimestamp();
        Assert.Equal(StatusCode.DeadlineExceeded, GatewayMetrics.FinalStatus(Context(), now - 1, threw: false));
        Assert.Equal(StatusCode.Unknown, GatewayMetrics.FinalStatus(Context(), long.MaxValue, threw: true));
        // A status that was written wins over the deadline.
        Assert.Equal(StatusCode.NotFound, GatewayMetrics.FinalStatus(Context(grpcStatus: "5"), now - 1, threw: false));
    }

    [Theory]
    [InlineData("100m", 0.1)]
    [InlineData("5S", 5)]
    [InlineData("2M", 120)]
    [InlineData("1H", 3600)]
    [InlineData("250u", 0.00025)]
    [InlineData("99999999n", 0.099999999)]
    public void The_grpc_timeout_header_becomes_a_deadline(string header, double seconds)
    {
        var deadline = GatewayMetrics.DeadlineOf(header, 0);
        Assert.Equal(seconds, (double)deadline / System.Diagnostics.Stopwatch.Frequency, 6);
    }

    [Theory]
    [InlineData("")]
    [InlineData("m")]
    [InlineData("10x")]
    [InlineData("-5m")]
    [InlineData("1234567890S")]
    public void A_malformed_grpc_timeout_means_no_deadline(string header) => Assert.Equal(long.MaxValue, GatewayMetrics.DeadlineOf(header, 0));
}
