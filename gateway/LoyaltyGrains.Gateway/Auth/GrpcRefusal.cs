using Grpc.AspNetCore.Server;
using Grpc.Core;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Http;
using Microsoft.IdentityModel.Tokens;

namespace LoyaltyGrains.Gateway.Auth;

/// <summary>
/// Refusals written by middleware (authentication, authorization, rate limiting) as real gRPC statuses. Left to
/// ASP.NET they would be bare HTTP 401/403/429, which gRPC clients turn into UNAUTHENTICATED, PERMISSION_DENIED and —
/// per the gRPC HTTP mapping — UNAVAILABLE for 429, which a processor would retry at once instead of backing off.
/// </summary>
public static class GrpcRefusal
{
    public static bool IsGrpc(HttpContext context) =>
        context.Request.ContentType is { } type && type.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase);

    /// <summary>A trailers-only response: HTTP 200, grpc-status and grpc-message in the headers, no body.</summary>
    public static Task WriteAsync(HttpContext context, StatusCode code, string message)
    {
        var response = context.Response;
        if (response.HasStarted) return Task.CompletedTask;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/grpc";
        response.Headers["grpc-status"] = ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture);
        response.Headers["grpc-message"] = Uri.EscapeDataString(message);
        return Task.CompletedTask;
    }

    /// <summary>The method of a gRPC endpoint ("/loyalty.v1.Admin/BlockCard"), or null for anything else.</summary>
    public static string? MethodOf(HttpContext context) => context.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>()?.Method.FullName;

    /// <summary>Why a token was refused, in words a client developer can act on (no token contents echoed).</summary>
    public static string DescribeFailure(Exception? failure, bool hadToken) => failure switch
    {
        null when !hadToken => "missing bearer token: send the metadata 'authorization: Bearer <jwt>'",
        null => "invalid bearer token",
        SecurityTokenExpiredException => "the bearer token has expired",
        SecurityTokenNotYetValidException => "the bearer token is not valid yet (nbf)",
        SecurityTokenInvalidIssuerException => "the bearer token's issuer (iss) is not accepted",
        SecurityTokenInvalidAudienceException => "the bearer token's audience (aud) is not accepted",
        SecurityTokenInvalidAlgorithmException => "the bearer token's signing algorithm is not accepted",
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => "the bearer token's signature is invalid",
        SecurityTokenNoExpirationException => "the bearer token has no expiry (exp)",
        SecurityTokenMalformedException or ArgumentException => "the bearer token is malformed",
        _ when failure.Message.StartsWith(AuthSetup.RejectedPrefix, StringComparison.Ordinal) => failure.Message[AuthSetup.RejectedPrefix.Length..],
        _ => "invalid bearer token",
    };
}

/// <summary>Turns authorization's challenge/forbid into UNAUTHENTICATED / PERMISSION_DENIED for gRPC calls, and audits refused audited calls.</summary>
public sealed class GrpcAuthorizationResultHandler(AuditLog audit, TimeProvider clock) : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (!GrpcRefusal.IsGrpc(context) || authorizeResult.Succeeded)
        {
            await _default.HandleAsync(next, context, policy, authorizeResult);
            return;
        }
        var method = GrpcRefusal.MethodOf(context) ?? context.Request.Path.Value ?? "";
        var caller = Caller.From(context.User);
        StatusCode code;
        string message;
        if (authorizeResult.Forbidden)
        {
            var roles = RpcAccess.Find(method)?.Roles ?? Roles.Admin;
            code = StatusCode.PermissionDenied;
            message = $"{RpcAccess.ShortName(method)} needs role {string.Join(" or ", LoyaltyClaims.Names(roles))}; the token has " +
                (caller.Roles == Roles.None ? "none" : LoyaltyClaims.Format(caller.Roles));
        }
        else
        {
            var failure = context.Items.TryGetValue(AuthSetup.FailureItem, out var item) ? item as Exception : null;
            var hadToken = context.Request.Headers.Authorization.Count > 0;
            code = StatusCode.Unauthenticated;
            message = GrpcRefusal.DescribeFailure(failure, hadToken);
        }
        if (RpcAccess.Find(method) is { Audited: true })
        {
            audit.RecordRefusal(AuditRecord.Refused(clock.GetUtcNow(), caller, method, code, message, context.Connection.RemoteIpAddress?.ToString() ?? ""));
        }
        await GrpcRefusal.WriteAsync(context, code, message);
    }
}
