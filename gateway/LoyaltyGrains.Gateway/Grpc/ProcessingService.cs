using System.Threading.Channels;
using Grpc.Core;
using LoyaltyGrains.Contracts;
using LoyaltyGrains.Gateway.V1;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LoyaltyGrains.Gateway.Grpc;

/// <summary>
/// Processing: card processors' postings. Validate, call the member grain (or, for a card not yet seen here, the card
/// grain, which forwards to its member), map the reply.
/// </summary>
public sealed class ProcessingService(IGrainFactory grains, CardRoutes routes, TimeProvider clock, IOptions<GatewayLimits> limits,
    ILogger<ProcessingService> logger) : Processing.ProcessingBase
{
    private readonly TimeSpan _postingAgeMax = limits.Value.PostingAgeMax;

    /// <summary>Requests of one Post stream in flight at once; the stream reads no further until one completes.</summary>
    public const int PostStreamInFlightMax = 512;

    public override Task<PostingReply> Authorize(AuthorizeRequest request, ServerCallContext context) => AuthorizeCore(request);

    public override Task<PostingReply> Capture(CaptureRequest request, ServerCallContext context) => CaptureCore(request);

    public override Task<PostingReply> Reverse(ReverseRequest request, ServerCallContext context) => ReverseCore(request);

    public override Task<PostingReply> Refund(RefundRequest request, ServerCallContext context) => RefundCore(request);

    /// <summary>Items of one Post stream for one member sent in one grain call at most (the member commits them together).</summary>
    public const int PostGroupMax = 128;

    /// <summary>
    /// A bidi stream of postings. Items that have already arrived are grouped by member (for cards this gateway has
    /// routed before) and each group goes to its member in one call, which decides them in order and commits them in one
    /// append: a clearing file sorted by card costs one grain call and one commit per card's run, not per item. Items of
    /// cards not yet routed here go one by one through their card grain, as unary calls do. Each item's reply is what
    /// its unary call would answer; replies go out as they complete.
    /// </summary>
    public override async Task Post(IAsyncStreamReader<PostingRequest> requestStream, IServerStreamWriter<PostingReply> responseStream,
        ServerCallContext context)
    {
        using var slots = new SemaphoreSlim(PostStreamInFlightMax);
        var replies = Channel.CreateUnbounded<PostingReply>(new UnboundedChannelOptions { SingleReader = true });
        var writer = WriteRepliesAsync(replies.Reader, responseStream, slots);
        var inFlight = new List<Task>();
        var groups = new Dictionary<string, List<(PostingRequest Request, PostingItem Item)>>(StringComparer.Ordinal);
        void Send(string memberId, List<(PostingRequest, PostingItem)> group)
        {
            groups.Remove(memberId);
            inFlight.Add(PostGroupAsync(memberId, group, replies.Writer));
        }
        void SendAll()
        {
            foreach (var (memberId, group) in groups.ToArray()) Send(memberId, group);
        }
        try
        {
            while (true)
            {
                // What has arrived already is grouped; when the next item is not here yet, the groups go.
                var moving = requestStream.MoveNext(context.CancellationToken);
                if (!moving.IsCompleted) SendAll();
                if (!await moving) break;
                var request = requestStream.Current;
                if (!slots.Wait(0))
                {
                    SendAll();
                    await slots.WaitAsync(context.CancellationToken);
                }
                if (GroupableItem(request) is { } item && routes.TryGetMember(item.CardId, out var memberId))
                {
                    if (!groups.TryGetValue(memberId, out var group)) groups[memberId] = group = [];
                    group.Add((request, item));
                    if (group.Count >= PostGroupMax) Send(memberId, group);
                }
                else
                {
                    inFlight.Add(PostOneAsync(request, replies.Writer));
                }
                if (inFlight.Count >= PostStreamInFlightMax) inFlight.RemoveAll(t => t.IsCompleted);
            }
            SendAll();
            await Task.WhenAll(inFlight);
        }
        finally
        {
            replies.Writer.TryComplete();
        }
        await writer;
    }

    /// <summary>The grain message of a well-formed item, or null (a malformed one is answered by the one-by-one path).</summary>
    private PostingItem? GroupableItem(PostingRequest request)
    {
        try
        {
            return request.KindCase switch
            {
                PostingRequest.KindOneofCase.Authorize => new PostingItem(Authorize: AuthorizeMessageOf(request.Authorize)),
                PostingRequest.KindOneofCase.Capture => new PostingItem(Capture: CaptureMessageOf(request.Capture)),
                PostingRequest.KindOneofCase.Reverse => new PostingItem(Reverse: ReverseMessageOf(request.Reverse)),
                PostingRequest.KindOneofCase.Refund => new PostingItem(Refund: RefundMessageOf(request.Refund)),
                _ => null,
            };
        }
        catch (RpcException)
        {
            return null;
        }
    }

    /// <summary>One member's items in one call; an authorization on a card the member was not told about goes through its card grain.</summary>
    private async Task PostGroupAsync(string memberId, List<(PostingRequest Request, PostingItem Item)> group, ChannelWriter<PostingReply> replies)
    {
        PostingItemResult[] results;
        try
        {
            results = await grains.MemberGrain(memberId).Post([.. group.Select(g => g.Item)]);
        }
        catch (Exception ex)
        {
            foreach (var (request, _) in group) replies.TryWrite(ErrorReply(request, ex));
            return;
        }
        List<Task>? rerouted = null;
        for (var i = 0; i < group.Count; i++)
        {
            var (request, item) = group[i];
            switch (results[i])
            {
                case { Error: CardRouteRequiredException }:
                    (rerouted ??= []).Add(ReplyAsync(request, async () => routes.Learn(item.CardId, await grains.CardGrain(item.CardId).Authorize(item.Authorize!)), replies));
                    break;
                case { Error: { } error }:
                    replies.TryWrite(ErrorReply(request, error));
                    break;
                case { Result: { } result }:
                    replies.TryWrite(ProtoMapping.ToReply(result));
                    break;
            }
        }
        if (rerouted is not null) await Task.WhenAll(rerouted);
    }

    private async Task ReplyAsync(PostingRequest request, Func<Task<PostingResult>> post, ChannelWriter<PostingReply> replies)
    {
        PostingReply reply;
        try
        {
            reply = ProtoMapping.ToReply(await post());
        }
        catch (Exception ex)
        {
            reply = ErrorReply(request, ex);
        }
        replies.TryWrite(reply);
    }

    private PostingReply ErrorReply(PostingRequest request, Exception ex)
    {
        var status = ErrorMappingInterceptor.StatusOf(ex);
        if (status.StatusCode == StatusCode.Internal) logger.LogError(ex, "Post item {TransactionId} failed", TransactionIdOf(request));
        return new PostingReply
        {
            TransactionId = TransactionIdOf(request),
            Error = new PostingError { Code = status.StatusCode.ToString().ToUpperInvariantSnake(), Message = status.Detail },
        };
    }

    /// <summary>
    /// The stream's one writer. Replies that are already waiting go out with <see cref="WriteFlags.BufferHint"/> and only
    /// the last of a run is flushed, so under load many replies share one HTTP/2 DATA write instead of one each.
    /// A slot is freed when its reply is written: a client that stops reading stops the stream, not the server.
    /// </summary>
    private static async Task WriteRepliesAsync(ChannelReader<PostingReply> replies, IServerStreamWriter<PostingReply> responseStream, SemaphoreSlim slots)
    {
        var buffered = new WriteOptions(WriteFlags.BufferHint);
        var flushed = new WriteOptions();
        while (await replies.WaitToReadAsync())
        {
            if (!replies.TryRead(out var reply)) continue;
            while (true)
            {
                // Read one ahead: a single-reader channel cannot count, and "is another waiting?" is all we need.
                var more = replies.TryRead(out var next);
                responseStream.WriteOptions = more ? buffered : flushed;
                await responseStream.WriteAsync(reply);
                slots.Release();
                if (!more) break;
                reply = next!;
            }
        }
    }

    private async Task PostOneAsync(PostingRequest request, ChannelWriter<PostingReply> replies)
    {
        PostingReply reply;
        try
        {
            reply = request.KindCase switch
            {
                PostingRequest.KindOneofCase.Authorize => await AuthorizeCore(request.Authorize),
                PostingRequest.KindOneofCase.Capture => await CaptureCore(request.Capture),
                PostingRequest.KindOneofCase.Reverse => await ReverseCore(request.Reverse),
                PostingRequest.KindOneofCase.Refund => await RefundCore(request.Refund),
                _ => throw Validate.Invalid("kind", "one of authorize, capture, reverse, refund is required"),
            };
        }
        catch (Exception ex)
        {
            reply = ErrorReply(request, ex);
        }
        replies.TryWrite(reply);
    }

    private static string TransactionIdOf(PostingRequest request) => request.KindCase switch
    {
        PostingRequest.KindOneofCase.Authorize => request.Authorize.TransactionId,
        PostingRequest.KindOneofCase.Capture => request.Capture.TransactionId,
        PostingRequest.KindOneofCase.Reverse => request.Reverse.TransactionId,
        PostingRequest.KindOneofCase.Refund => request.Refund.TransactionId,
        _ => "",
    };

    /// <summary>
    /// To the card's member directly when this gateway knows it; otherwise through the card grain, which says whose card
    /// it is (remembered for the card's next messages). Static delegates: nothing is allocated for the choice.
    /// </summary>
    private async Task<PostingResult> RouteAsync<TMessage>(string cardId, TMessage message,
        Func<IMemberGrain, TMessage, Task<PostingResult>> toMember, Func<ICardGrain, TMessage, Task<PostingResult>> toCard)
    {
        if (routes.TryGetMember(cardId, out var memberId))
        {
            try
            {
                return await toMember(grains.MemberGrain(memberId), message);
            }
            catch (CardRouteRequiredException)
            {
                // The member has not been told about this card since it was activated: the card grain tells it (nothing was recorded).
            }
        }
        return routes.Learn(cardId, await toCard(grains.CardGrain(cardId), message));
    }

    private async Task<PostingReply> AuthorizeCore(AuthorizeRequest r)
    {
        var message = AuthorizeMessageOf(r);
        return ProtoMapping.ToReply(await RouteAsync(message.CardId, message, static (m, x) => m.AuthorizeOnKnownCard(x), static (c, x) => c.Authorize(x)));
    }

    private async Task<PostingReply> CaptureCore(CaptureRequest r)
    {
        var message = CaptureMessageOf(r);
        return ProtoMapping.ToReply(await RouteAsync(message.CardId, message, static (m, x) => m.Capture(x), static (c, x) => c.Capture(x)));
    }

    private async Task<PostingReply> ReverseCore(ReverseRequest r)
    {
        var message = ReverseMessageOf(r);
        return ProtoMapping.ToReply(await RouteAsync(message.CardId, message, static (m, x) => m.Reverse(x), static (c, x) => c.Reverse(x)));
    }

    private async Task<PostingReply> RefundCore(RefundRequest r)
    {
        var message = RefundMessageOf(r);
        return ProtoMapping.ToReply(await RouteAsync(message.CardId, message, static (m, x) => m.Refund(x), static (c, x) => c.Refund(x)));
    }

    private AuthorizeMessage AuthorizeMessageOf(AuthorizeRequest r) => new(
        Validate.Id(r.TransactionId, "transaction_id"),
        Validate.Id(r.CardId, "card_id"),
        Validate.PositiveAmount(r.AmountMinor, "amount_minor"),
        Validate.Currency(r.Currency, "currency"),
        Validate.Mcc(r.Mcc, "mcc"),
        Validate.Id(r.MerchantId, "merchant_id"),
        Validate.Time(r.OccurredAt, "occurred_at", clock.GetUtcNow(), _postingAgeMax));

    // Only the fields' form is checked here; whether this is a force post (and so needs mcc and merchant_id) is the
    // member's decision: an authorization id it does not know makes one too.
    private CaptureMessage CaptureMessageOf(CaptureRequest r) => new(
        Validate.Id(r.TransactionId, "transaction_id"),
        Validate.OptionalId(r.AuthorizationId, "authorization_id"),
        Validate.Id(r.CardId, "card_id"),
        Validate.PositiveAmount(r.AmountMinor, "amount_minor"),
        Validate.OptionalTime(r.OccurredAt, "occurred_at", clock.GetUtcNow(), _postingAgeMax),
        r.Mcc != 0 ? Validate.Mcc(r.Mcc, "mcc") : -1,
        Validate.OptionalId(r.MerchantId, "merchant_id"),
        r.Currency.Length == 0 ? "" : Validate.Currency(r.Currency, "currency"));

    private ReverseMessage ReverseMessageOf(ReverseRequest r) => new(
        Validate.Id(r.TransactionId, "transaction_id"),
        Validate.Id(r.AuthorizationId, "authorization_id"),
        Validate.Id(r.CardId, "card_id"),
        Validate.AmountOrZero(r.AmountMinor, "amount_minor"),
        Validate.OptionalTime(r.OccurredAt, "occurred_at", clock.GetUtcNow(), _postingAgeMax));

    private RefundMessage RefundMessageOf(RefundRequest r) => new(
        Validate.Id(r.TransactionId, "transaction_id"),
        Validate.Id(r.OriginalTransactionId, "original_transaction_id"),
        Validate.Id(r.CardId, "card_id"),
        Validate.PositiveAmount(r.AmountMinor, "amount_minor"),
        Validate.OptionalTime(r.OccurredAt, "occurred_at", clock.GetUtcNow(), _postingAgeMax));
}

internal static class StatusNames
{
    /// <summary>"InvalidArgument" → "INVALID_ARGUMENT", the canonical gRPC code name.</summary>
    public static string ToUpperInvariantSnake(this string name)
    {
        var builder = new System.Text.StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (i > 0 && char.IsUpper(name[i])) builder.Append('_');
            builder.Append(char.ToUpperInvariant(name[i]));
        }
        return builder.ToString();
    }
}
