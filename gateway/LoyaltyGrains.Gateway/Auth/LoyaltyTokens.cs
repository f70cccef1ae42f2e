using System.Net.Http.Headers;
using System.Security.Cryptography;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace LoyaltyGrains.Gateway.Auth;

/// <summary>What a token says: subject, roles, partner; valid for <see cref="Lifetime"/> from now.</summary>
public sealed record TokenRequest(string Subject, IReadOnlyList<string> Roles, string? PartnerId, TimeSpan Lifetime);

/// <summary>
/// Mints HS256 tokens with the engine's signing key, for the token command, the demo, tests and benchmarks. Production
/// apps and partners get theirs from the bank's identity provider (<c>Loyalty:Auth:Authority</c>).
/// </summary>
public static class LoyaltyTokens
{
    public static string Mint(byte[] key, string issuer, string audience, TokenRequest request, DateTimeOffset? now = null)
    {
        if (request.Subject.Length == 0) throw new ArgumentException("a token needs a subject", nameof(request));
        var issuedAt = (now ?? DateTimeOffset.UtcNow).UtcDateTime;
        var claims = new Dictionary<string, object>
        {
            [LoyaltyClaims.Subject] = request.Subject,
            [LoyaltyClaims.Role] = request.Roles.Count == 1 ? request.Roles[0] : request.Roles.ToArray(),
            [LoyaltyClaims.TokenId] = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)),
        };
        if (!string.IsNullOrEmpty(request.PartnerId)) claims[LoyaltyClaims.PartnerId] = request.PartnerId;
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            Claims = claims,
            IssuedAt = issuedAt,
            NotBefore = issuedAt,
            Expires = issuedAt + request.Lifetime,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(key), AuthSetup.HmacAlgorithm),
        });
    }

    /// <summary>Signs with the first configured key (the others only validate, during a rotation).</summary>
    public static string Mint(LoyaltyAuthOptions options, TokenRequest request, DateTimeOffset? now = null)
    {
        var keys = options.SigningKeys();
        if (keys.Count == 0) throw new InvalidOperationException("no HMAC signing key configured: tokens come from the identity provider");
        return Mint(keys[0], options.Issuer, options.Audience, request, now);
    }
}

/// <summary>Adds <c>authorization: Bearer …</c> to every request of a gRPC channel (works on h2c, unlike call credentials).</summary>
public sealed class BearerTokenHandler(string token, HttpMessageHandler inner) : DelegatingHandler(inner)
{
    private readonly AuthenticationHeaderValue _header = new("Bearer", token);

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        request.Headers.Authorization = _header;
        return base.SendAsync(request, cancellationToken);
    }

    public static global::Grpc.Net.Client.GrpcChannel Channel(string address, string? token, global::Grpc.Net.Client.GrpcChannelOptions? options = null)
    {
        options ??= new global::Grpc.Net.Client.GrpcChannelOptions();
        var inner = options.HttpHandler ?? new SocketsHttpHandler { EnableMultipleHttp2Connections = true };
        options.HttpHandler = token is null ? inner : new BearerTokenHandler(token, inner);
        return global::Grpc.Net.Client.GrpcChannel.ForAddress(address, options);
    }
}
