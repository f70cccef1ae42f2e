using Grpc.Core;
using Grpc.Core.Interceptors;
using LoyaltyGrains.Contracts;
using LoyaltyGrains.Gateway.Grpc;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.Gateway.Auth;

/// <summary>
/// Which member or partner a token may touch, checked from the request before the service method runs (so before any
/// grain call that changes state). The roles gate already ran (ASP.NET authorization, <see cref="RpcAccess"/>); here:
/// an app token only for its own member (a card must be one of its member's), a partner token only for its own
/// partner_id, admin for anyone, processors unscoped. Also caps open WatchBalance streams.
/// </summary>
public sealed class CallerAccessInterceptor(IGrainFactory grains, CardRoutes routes, WatchStreamQuota watchQuota, TlsSettings tls) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        if (RpcAccess.Find(context.Method) is { } rule)
        {
            RequireProcessorCertificate(rule, context);
            await CheckAsync(Caller.From(context.GetHttpContext().User), rule, request);
        }
        return await continuation(request, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        // Processing.Post: its items carry no member or partner scope, so the roles gate and the certificate are the whole check.
        if (RpcAccess.Find(context.Method) is { } rule) RequireProcessorCertificate(rule, context);
        return continuation(requestStream, responseStream, context);
    }

    /// <summary>With mTLS for processors on, posting needs a client certificate from the bank's CA (Kestrel validated it at the handshake).</summary>
    private void RequireProcessorCertificate(RpcRule rule, ServerCallContext context)
    {
        if (!tls.RequireClientCertificate || rule.Roles != Roles.Processor) return;
        if (context.GetHttpContext().Connection.ClientCertificate is null)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, $"{RpcAccess.ShortName(rule.Method)}: processors must present a client certificate (mTLS)"));
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        if (RpcAccess.Find(context.Method) is not { } rule)
        {
            await continuation(request, responseStream, context);
            return;
        }
        var caller = Caller.From(context.GetHttpContext().User);
        await CheckAsync(caller, rule, request);
        using var slot = watchQuota.TryEnter(caller.Subject, out var refusal) ?? throw new RpcException(new Status(StatusCode.ResourceExhausted, refusal));
        await continuation(request, responseStream, context);
    }

    public async Task CheckAsync(Caller caller, RpcRule rule, object request)
    {
        if (caller.Has(Roles.Admin) && rule.Roles.HasFlag(Roles.Admin)) return;
        if (caller.Has(Roles.Processor) && rule.Roles.HasFlag(Roles.Processor)) return;
        if (caller.Has(Roles.Analyst) && rule.Roles.HasFlag(Roles.Analyst)) return;
        if (caller.Has(Roles.App) && rule.Roles.HasFlag(Roles.App) && await AppMayAsync(caller.MemberId, request)) return;
        if (caller.Has(Roles.Partner) && rule.Roles.HasFlag(Roles.Partner) && PartnerMay(caller.PartnerId, request)) return;
        throw new RpcException(new Status(StatusCode.PermissionDenied, Refusal(caller, rule.Method)));
    }

    private static string Refusal(Caller caller, string method)
    {
        var whose = caller.Has(Roles.App) ? $"member '{caller.MemberId}'" : caller.Has(Roles.Partner) ? $"partner '{caller.PartnerId}'" : "its subject";
        return $"{RpcAccess.ShortName(method)}: this token may act only for {whose}";
    }

    /// <summary>An app's request must name its own member; a card, when named, must be one of that member's cards.</summary>
    private async Task<bool> AppMayAsync(string memberId, object request)
    {
        switch (request)
        {
            case GetBalanceRequest r: return r.MemberId == memberId;
            case GetStatementRequest r: return r.MemberId == memberId;
            case ChooseCategoriesRequest r: return r.MemberId == memberId;
            case RedeemRequest r: return r.MemberId == memberId;
            case ListOffersRequest r: return r.MemberId == memberId;
            case ActivateOfferRequest r: return r.MemberId == memberId;
            case CheckEligibilityRequest r:
                if (r.MemberId.Length == 0 && r.CardId.Length == 0) return false;
                if (r.MemberId.Length > 0 && r.MemberId != memberId) return false;
                return r.CardId.Length == 0 || await MemberOfCardAsync(r.CardId) == memberId;
            default: return false;
        }
    }

    /// <summary>
    /// A partner's request must name its own partner_id. A quote (CheckEligibility) names no partner: a partner may ask
    /// by the card presented at its till, never by member id, so it cannot browse members.
    /// </summary>
    private static bool PartnerMay(string partnerId, object request) => request switch
    {
        RedeemRequest r => r.PartnerId == partnerId,
        GetPayoutsRequest r => r.PartnerId == partnerId,
        CheckEligibilityRequest r => r.MemberId.Length == 0 && r.CardId.Length > 0,
        _ => false,
    };

    /// <summary>The card's member from the gateway's route cache, else from the card grain (a read); "" for an unknown card.</summary>
    private async Task<string> MemberOfCardAsync(string cardId)
    {
        var card = Validate.Id(cardId, "card_id");
        if (routes.TryGetMember(card, out var known)) return known;
        try
        {
            var info = await grains.CardGrain(card).GetCard();
            routes.Learn(card, info.MemberId);
            return info.MemberId;
        }
        catch (LoyaltyRejectedException)
        {
            return "";
        }
    }
}
