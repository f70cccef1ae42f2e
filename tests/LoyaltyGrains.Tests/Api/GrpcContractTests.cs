using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.Tests.Api;

/// <summary>The public contract over a real loopback HTTP/2 channel: every status code a client can meet.</summary>
public sealed class GrpcContractTests(EngineFixture engine) : IClassFixture<EngineFixture>
{
    private Processing.ProcessingClient Processing => new(engine.Channel);
    private Balances.BalancesClient Balances => new(engine.Channel);
    private Admin.AdminClient Admin => new(engine.Channel);
    private static readonly Timestamp Now = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-1));

    private async Task<(string Member, string Card)> EnrollAsync(string name)
    {
        var member = $"{name}-{Guid.NewGuid():N}"[..20];
        await Admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = member });
        await Admin.IssueCardAsync(new IssueCardRequest { CardId = "card-" + member, MemberId = member });
        return (member, "card-" + member);
    }

    private static AuthorizeRequest Auth(string id, string card, long amount = 100_000, int mcc = 5411) => new()
    {
        TransactionId = id, CardId = card, AmountMinor = amount, Currency = "RUB", Mcc = mcc, MerchantId = "shop-1", OccurredAt = Now,
    };

    private static async Task<RpcException> Fails(StatusCode code, Func<Task> call, string field)
    {
        var ex = await Assert.ThrowsAsync<RpcException>(call);
        Assert.Equal(code, ex.StatusCode);
        Assert.Contains(field, ex.Status.Detail, StringComparison.Ordinal);
        return ex;
    }

    [Fact]
    public async Task Lifecycle_over_grpc()
    {
        var (member, card) = await EnrollAsync("g");
        var auth = await Processing.AuthorizeAsync(Auth("a-" + member, card));
        Assert.Equal((PostingStatus.Accepted, 1_000L, 1_000L, 0L), (auth.Status, auth.AccruedMinor, auth.PendingMinor, auth.AvailableMinor));
        Assert.Equal("base", Assert.Single(auth.Breakdown).Rule);
        var dup = await Processing.AuthorizeAsync(Auth("a-" + member, card));
        Assert.Equal(PostingStatus.Duplicate, dup.Status);
        var capture = await Processing.CaptureAsync(new CaptureRequest { TransactionId = "c-" + member, AuthorizationId = "a-" + member, CardId = card, AmountMinor = 100_000 });
        Assert.Equal(1_000, capture.AvailableMinor);
        var refund = await Processing.RefundAsync(new RefundRequest { TransactionId = "r-" + member, OriginalTransactionId = "c-" + member, CardId = card, AmountMinor = 50_000 });
        Assert.Equal((-500L, 500L), (refund.AccruedMinor, refund.AvailableMinor));
        var balance = await Balances.GetBalanceAsync(new GetBalanceRequest { MemberId = member });
        Assert.Equal((500L, 0L, "standard"), (balance.AvailableMinor, balance.PendingMinor, balance.Tier));
        var statement = await Balances.GetStatementAsync(new GetStatementRequest { MemberId = member, PageSize = 2 });
        Assert.Equal(["refund", "capture"], statement.Entries.Select(e => e.Kind));
        Assert.NotEmpty(statement.NextPageToken);
    }

    [Fact]
    public async Task Bad_input_is_invalid_argument_naming_the_field()
    {
        var (member, card) = await EnrollAsync("v");
        await Fails(StatusCode.InvalidArgument, () => Processing.AuthorizeAsync(Auth("x1-" + member, card, amount: -5)).ResponseAsync, "amount_minor");
        await Fails(StatusCode.InvalidArgument, () => Processing.AuthorizeAsync(Auth("", card)).ResponseAsync, "transaction_id");
        await Fails(StatusCode.InvalidArgument, () => Processing.AuthorizeAsync(Auth("x2-" + member, card, mcc: 0)).ResponseAsync, "mcc");
        await Fails(StatusCode.InvalidArgument, () => Processing.AuthorizeAsync(Auth("bad id!", card)).ResponseAsync, "transaction_id");
        var usd = Auth("x4-" + member, card);
        usd.Currency = "USD";
        await Fails(StatusCode.InvalidArgument, () => Processing.AuthorizeAsync(usd).ResponseAsync, "currency");
        var noTime = Auth("x5-" + member, card);
        noTime.OccurredAt = null;
        await Fails(StatusCode.InvalidArgument, () => Processing.AuthorizeAsync(noTime).ResponseAsync, "occurred_at");
        await Fails(StatusCode.InvalidArgument, () => Balances.GetStatementAsync(new GetStatementRequest { MemberId = member, PageToken = "garbage" }).ResponseAsync, "page_token");
        await Fails(StatusCode.InvalidArgument, () => Balances.ChooseCategoriesAsync(new ChooseCategoriesRequest { MemberId = member, Month = "2026-13" }).ResponseAsync, "month");
        await Fails(StatusCode.InvalidArgument, () => Admin.SetProgramAsync(new LoyaltyGrains.Gateway.V1.Program()).ResponseAsync, "tiers");
        var balance = await Balances.GetBalanceAsync(new GetBalanceRequest { MemberId = member });
        Assert.Equal((0L, 0L), (balance.AvailableMinor, balance.PendingMinor));
    }

    [Fact]
    public async Task Each_refusal_has_its_precise_status()
    {
        var (member, card) = await EnrollAsync("s");
        await Fails(StatusCode.NotFound, () => Processing.AuthorizeAsync(Auth("n1-" + member, "no-card")).ResponseAsync, "card_id");
        await Fails(StatusCode.NotFound, () => Balances.GetBalanceAsync(new GetBalanceRequest { MemberId = "nobody-" + member }).ResponseAsync, "member_id");
        await Processing.AuthorizeAsync(Auth("e1-" + member, card));
        await Fails(StatusCode.AlreadyExists, () => Processing.AuthorizeAsync(Auth("e1-" + member, card, amount: 100_001)).ResponseAsync, "transaction_id");
        await Fails(StatusCode.AlreadyExists, () => Admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = member, Premium = true }).ResponseAsync, "member_id");
        await Processing.CaptureAsync(new CaptureRequest { TransactionId = "e1c-" + member, AuthorizationId = "e1-" + member, CardId = card, AmountMinor = 100_000 });
        await Fails(StatusCode.FailedPrecondition, () => Processing.ReverseAsync(new ReverseRequest { TransactionId = "e1v-" + member, AuthorizationId = "e1-" + member, CardId = card }).ResponseAsync, "Refund");
        await Admin.BlockCardAsync(new BlockCardRequest { CardId = card });
        await Fails(StatusCode.FailedPrecondition, () => Processing.AuthorizeAsync(Auth("b1-" + member, card)).ResponseAsync, "blocked");
    }

    [Fact]
    public async Task Bulk_post_stream_replies_per_item_with_errors_inline()
    {
        var (member, card) = await EnrollAsync("b");
        using var call = Processing.Post();
        for (var i = 0; i < 50; i++) await call.RequestStream.WriteAsync(new PostingRequest { Authorize = Auth($"p{i}-{member}", card) });
        await call.RequestStream.WriteAsync(new PostingRequest { Authorize = Auth($"bad-{member}", card, amount: 0) });
        await call.RequestStream.WriteAsync(new PostingRequest { Authorize = Auth($"p0-{member}", card) });
        await call.RequestStream.CompleteAsync();
        var replies = new List<PostingReply>();
        await foreach (var reply in call.ResponseStream.ReadAllAsync()) replies.Add(reply);
        Assert.Equal(52, replies.Count);
        var bad = Assert.Single(replies, r => r.Error is not null);
        Assert.Equal([PostingStatus.Accepted, PostingStatus.Duplicate], replies.Where(r => r.TransactionId == "p0-" + member).Select(r => r.Status).Order());
        Assert.Equal(("bad-" + member, "INVALID_ARGUMENT"), (bad.TransactionId, bad.Error.Code));
        Assert.Equal(51, replies.Count(r => r.Error is null));
        Assert.Equal(50_000, (await Balances.GetBalanceAsync(new GetBalanceRequest { MemberId = member })).PendingMinor);
    }

    [Fact]
    public async Task Watch_balance_streams_the_current_balance_then_every_change()
    {
        var (member, card) = await EnrollAsync("w");
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var watch = Balances.WatchBalance(new GetBalanceRequest { MemberId = member }, cancellationToken: cancel.Token);
        Assert.True(await watch.ResponseStream.MoveNext(cancel.Token));
        Assert.Equal((0L, 0L), (watch.ResponseStream.Current.AvailableMinor, watch.ResponseStream.Current.PendingMinor));
        await Processing.AuthorizeAsync(Auth("w1-" + member, card));
        Assert.True(await watch.ResponseStream.MoveNext(cancel.Token));
        Assert.Equal(1_000, watch.ResponseStream.Current.PendingMinor);
        await Processing.CaptureAsync(new CaptureRequest { TransactionId = "w1c-" + member, AuthorizationId = "w1-" + member, CardId = card, AmountMinor = 100_000 });
        Assert.True(await watch.ResponseStream.MoveNext(cancel.Token));
        Assert.Equal((1_000L, 0L), (watch.ResponseStream.Current.AvailableMinor, watch.ResponseStream.Current.PendingMinor));
        await Fails(StatusCode.NotFound, async () =>
        {
            using var stranger = Balances.WatchBalance(new GetBalanceRequest { MemberId = "nobody-" + member });
            await stranger.ResponseStream.MoveNext();
        }, "member_id");
    }

    [Fact]
    public async Task Program_round_trips_and_health_and_reflection_answer()
    {
        var program = await Admin.GetProgramAsync(new GetProgramRequest());
        Assert.Equal(["standard", "silver", "gold"], program.Tiers.Select(t => t.TierId));
        var health = new global::Grpc.Health.V1.Health.HealthClient(engine.Channel);
        var status = await health.CheckAsync(new global::Grpc.Health.V1.HealthCheckRequest());
        Assert.Equal(global::Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, status.Status);
        var reflection = new global::Grpc.Reflection.V1Alpha.ServerReflection.ServerReflectionClient(engine.Channel);
        using var call = reflection.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new global::Grpc.Reflection.V1Alpha.ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext());
        var services = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToArray();
        Assert.Contains("loyalty.v1.Processing", services);
        Assert.Contains("loyalty.v1.Balances", services);
        Assert.Contains("loyalty.v1.Admin", services);
    }
}
