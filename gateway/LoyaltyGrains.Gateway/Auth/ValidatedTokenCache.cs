using System.Collections.Concurrent;
using System.Security.Claims;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace LoyaltyGrains.Gateway.Auth;

/// <summary>
/// The bearer-token validation JwtBearer runs on every call, remembered per token: a processor sends the same token
/// thousands of times a second, and checking its signature, claims and lifetime each time was most of what
/// authentication cost per call (measured: ~25 µs of ~30). A remembered validation is used only while the token
/// is still within its lifetime (exp + the allowed skew), at most <see cref="MaxAge"/> after it was checked, and only
/// with the same signing keys it was checked against (JwtBearer copies the parameters for every call, so the keys
/// themselves are compared; new keys, e.g. a changed configuration or keys fetched from an OpenID Connect authority,
/// mean a fresh check). Each call gets its own copy of the identity. Failures are never
/// remembered. Bounded: when full, it starts again empty.
/// </summary>
public sealed class ValidatedTokenCache(TimeProvider time, int capacity = ValidatedTokenCache.CapacityDefault) : TokenHandler
{
    public const int CapacityDefault = 10_000;
    public static readonly TimeSpan MaxAge = TimeSpan.FromMinutes(1);

    private readonly JsonWebTokenHandler _inner = new() { MapInboundClaims = false };
    private readonly ConcurrentDictionary<string, Validated> _validated = new(StringComparer.Ordinal);

    private sealed record Validated(ClaimsIdentity Identity, SecurityToken Token, SecurityKey[] Keys, DateTimeOffset UsableUntil);

    public int Count => _validated.Count;

    public override async Task<TokenValidationResult> ValidateTokenAsync(string token, TokenValidationParameters validationParameters)
    {
        var now = time.GetUtcNow();
        if (_validated.TryGetValue(token, out var known) && now < known.UsableUntil && SameKeys(known.Keys, validationParameters))
        {
            return new TokenValidationResult { IsValid = true, ClaimsIdentity = known.Identity.Clone(), SecurityToken = known.Token };
        }
        var result = await _inner.ValidateTokenAsync(token, validationParameters);
        if (result.IsValid && result.SecurityToken is { } securityToken && result.ClaimsIdentity is { } identity)
        {
            var expires = new DateTimeOffset(DateTime.SpecifyKind(securityToken.ValidTo, DateTimeKind.Utc)) + validationParameters.ClockSkew;
            var until = now + MaxAge < expires ? now + MaxAge : expires;
            if (_validated.Count >= capacity) _validated.Clear();
            _validated[token] = new Validated(identity.Clone(), securityToken, Keys(validationParameters), until);
        }
        return result;
    }

    private static SecurityKey[] Keys(TokenValidationParameters parameters) =>
        [.. parameters.IssuerSigningKey is { } key ? [key] : Array.Empty<SecurityKey>(), .. parameters.IssuerSigningKeys ?? []];

    /// <summary>The same key objects in the same order (no allocation for the usual single list).</summary>
    private static bool SameKeys(SecurityKey[] known, TokenValidationParameters parameters)
    {
        var i = 0;
        if (parameters.IssuerSigningKey is { } single && (known.Length == 0 || !ReferenceEquals(known[i++], single))) return false;
        if (parameters.IssuerSigningKeys is IList<SecurityKey> list)
        {
            if (known.Length != i + list.Count) return false;
            for (var k = 0; k < list.Count; k++)
            {
                if (!ReferenceEquals(known[i + k], list[k])) return false;
            }
            return true;
        }
        foreach (var key in parameters.IssuerSigningKeys ?? [])
        {
            if (i >= known.Length || !ReferenceEquals(known[i++], key)) return false;
        }
        return i == known.Length;
    }

    public override SecurityToken ReadToken(string token) => _inner.ReadToken(token);

    public override int MaximumTokenSizeInBytes
    {
        get => _inner.MaximumTokenSizeInBytes;
        set => _inner.MaximumTokenSizeInBytes = value;
    }
}
