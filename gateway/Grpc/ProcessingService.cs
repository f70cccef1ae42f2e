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

    public override async Task Post(IAsyncStreamReader<PostingRequest> requestStream, IServerStreamWriter<PostingReply> responseStream,
        ServerCallContext context)
    {
        using var slots = new SemaphoreSlim(PostStreamInFlightMax);
        var replies = Channel.CreateUnbounded<PostingReply>(new UnboundedChannelOptions { SingleReader = true });
        var writer = WriteRepliesAsync(replies.Reader, responseStream, slots);
        var inFlight = new List<Task>();
        try
        {
            await foreach (var request in requestStream.ReadAllAsync(context.CancellationToken))
            {
                await slots.WaitAsync(context.CancellationToken);
                inFlight.Add(PostOneAsync(request, replies.Writer));
                if (inFlight.Count >= PostStreamInFlightMax) inFlight.RemoveAll(t => t.IsCompleted);
            }
            await Task.WhenAll(inFlight);
        }
        finally
        {
            replies.Writer.TryComplete();
        }
        await writer;
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
            var status = ErrorMappingInterceptor.StatusOf(ex);
            if (status.StatusCode == StatusCode.Internal) logger.LogError(ex, "Post item {TransactionId} failed", TransactionIdOf(request));
            reply = new PostingReply
            {
                TransactionId = TransactionIdOf(request),
                Error = new PostingError { Code = status.StatusCode.ToString().ToUpperInvariantSnake(), Message = status.Detail },
            };
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
        if (routes.TryGetMember(cardId, out var memberId)) return await toMember(grains.MemberGrain(memberId), message);
        return routes.Learn(cardId, await toCard(grains.CardGrain(cardId), message));
    }

    private async Task<PostingReply> AuthorizeCore(AuthorizeRequest r)
    {
        var now = clock.GetUtcNow();
        var message = new AuthorizeMessage(
            Validate.Id(r.TransactionId, "transaction_id"),
            Validate.Id(r.CardId, "card_id"),
            Validate.PositiveAmount(r.AmountMinor, "amount_minor"),
            Validate.Currency(r.Currency, "currency"),
            Validate.Mcc(r.Mcc, "mcc"),
            Validate.Id(r.MerchantId, "merchant_id"),
            Validate.Time(r.OccurredAt, "occurred_at", now, _postingAgeMax));
        return ProtoMapping.ToReply(await RouteAsync(message.CardId, message, static (m, x) => m.AuthorizeOnCard(x), static (c, x) => c.Authorize(x)));
    }

    private async Task<PostingReply> CaptureCore(CaptureRequest r)
    {
        var now = clock.GetUtcNow();
        var forcePost = r.AuthorizationId.Length == 0;
        var message = new CaptureMessage(
            Validate.Id(r.TransactionId, "transaction_id"),
            Validate.OptionalId(r.AuthorizationId, "authorization_id"),
            Validate.Id(r.CardId, "card_id"),
            Validate.PositiveAmount(r.AmountMinor, "amount_minor"),
            Validate.OptionalTime(r.OccurredAt, "occurred_at", now, _postingAgeMax),
            forcePost || r.Mcc != 0 ? Validate.Mcc(r.Mcc, "mcc") : -1,
            forcePost ? Validate.Id(r.MerchantId, "merchant_id") : Validate.OptionalId(r.MerchantId, "merchant_id"),
            r.Currency.Length == 0 ? "" : Validate.Currency(r.Currency, "currency"));
        return ProtoMapping.ToReply(await RouteAsync(message.CardId, message, static (m, x) => m.Capture(x), static (c, x) => c.Capture(x)));
    }

    private async Task<PostingReply> ReverseCore(ReverseRequest r)
    {
        var message = new ReverseMessage(
            Validate.Id(r.TransactionId, "transaction_id"),
            Validate.Id(r.AuthorizationId, "authorization_id"),
            Validate.Id(r.CardId, "card_id"),
            Validate.AmountOrZero(r.AmountMinor, "amount_minor"),
            Validate.OptionalTime(r.OccurredAt, "occurred_at", clock.GetUtcNow(), _postingAgeMax));
        return ProtoMapping.ToReply(await RouteAsync(message.CardId, message, static (m, x) => m.Reverse(x), static (c, x) => c.Reverse(x)));
    }

    private async Task<PostingReply> RefundCore(RefundRequest r)
    {
        var message = new RefundMessage(
            Validate.Id(r.TransactionId, "transaction_id"),
            Validate.Id(r.OriginalTransactionId, "original_transaction_id"),
            Validate.Id(r.CardId, "card_id"),
            Validate.PositiveAmount(r.AmountMinor, "amount_minor"),
            Validate.OptionalTime(r.OccurredAt, "occurred_at", clock.GetUtcNow(), _postingAgeMax));
        return ProtoMapping.ToReply(await RouteAsync(message.CardId, message, static (m, x) => m.Refund(x), static (c, x) => c.Refund(x)));
    }
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
