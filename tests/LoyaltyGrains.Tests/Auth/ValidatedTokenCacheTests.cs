using System.Security.Claims;
using System.Security.Cryptography;
using LoyaltyGrains.Gateway.Auth;
using Microsoft.IdentityModel.Tokens;

namespace LoyaltyGrains.Tests.Auth;

/// <summary>A remembered token validation is used only within the token's lifetime, the cache's age limit and the same keys.</summary>
public sealed class ValidatedTokenCacheTests
{
    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }

    private static readonly DateTimeOffset Start = DateTimeOffset.UtcNow;
    private readonly ManualClock _clock = new(Start);
    private readonly LoyaltyAuthOptions _options = new() { SigningKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) };

    /// <summary>The engine's validation, with the lifetime judged by the test's clock (so moving it expires tokens for both).</summary>
    private TokenValidationParameters Parameters()
    {
        var parameters = AuthSetup.ValidationParameters(_options);
        parameters.LifetimeValidator = (notBefore, expires, _, p) => _clock.Now.UtcDateTime < expires!.Value + p.ClockSkew;
        return parameters;
    }

    private string Token(TimeSpan lifetime) => LoyaltyTokens.Mint(_options, new TokenRequest("processor-1", ["processor"], null, lifetime), Start);

    [Fact]
    public async Task A_remembered_token_stops_working_when_it_expires()
    {
        var cache = new ValidatedTokenCache(_clock);
        var parameters = Parameters();
        var token = Token(TimeSpan.FromSeconds(50));
        Assert.True((await cache.ValidateTokenAsync(token, parameters)).IsValid);
        _clock.Now = Start + TimeSpan.FromSeconds(40);
        Assert.True((await cache.ValidateTokenAsync(token, parameters)).IsValid);
        _clock.Now = Start + TimeSpan.FromSeconds(50) + _options.ClockSkew + TimeSpan.FromSeconds(1);
        Assert.False((await cache.ValidateTokenAsync(token, parameters)).IsValid);
    }

    [Fact]
    public async Task Different_keys_check_the_token_again()
    {
        var cache = new ValidatedTokenCache(_clock);
        var token = Token(TimeSpan.FromHours(1));
        Assert.True((await cache.ValidateTokenAsync(token, Parameters())).IsValid);
        var rotated = Parameters();
        rotated.IssuerSigningKeys = [new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(32))];
        Assert.False((await cache.ValidateTokenAsync(token, rotated)).IsValid);
    }

    [Fact]
    public async Task A_validation_is_remembered_across_copies_of_the_parameters_for_at_most_the_age_limit()
    {
        var cache = new ValidatedTokenCache(_clock);
        var parameters = Parameters();
        var token = Token(TimeSpan.FromHours(1));
        Assert.True((await cache.ValidateTokenAsync(token, parameters)).IsValid);
        // JwtBearer passes a copy of its parameters on every call. This copy refuses every lifetime: only the
        // remembered validation can accept the token.
        var refusing = parameters.Clone();
        refusing.LifetimeValidator = (_, _, _, _) => false;
        _clock.Now = Start + ValidatedTokenCache.MaxAge - TimeSpan.FromSeconds(1);
        Assert.True((await cache.ValidateTokenAsync(token, refusing)).IsValid);
        _clock.Now = Start + ValidatedTokenCache.MaxAge + TimeSpan.FromSeconds(1);
        Assert.False((await cache.ValidateTokenAsync(token, refusing)).IsValid);
    }

    [Fact]
    public async Task Each_call_gets_its_own_identity_with_the_token_claims()
    {
        var cache = new ValidatedTokenCache(_clock);
        var parameters = Parameters();
        var token = Token(TimeSpan.FromHours(1));
        var first = await cache.ValidateTokenAsync(token, parameters);
        var second = await cache.ValidateTokenAsync(token, parameters);
        Assert.NotSame(first.ClaimsIdentity, second.ClaimsIdentity);
        second.ClaimsIdentity.AddClaim(new Claim("role", "admin"));
        var third = await cache.ValidateTokenAsync(token, parameters);
        Assert.Equal("processor-1", third.ClaimsIdentity.FindFirst("sub")?.Value);
        Assert.Equal(["processor"], third.ClaimsIdentity.FindAll("role").Select(c => c.Value));
    }

    [Fact]
    public async Task Failures_are_not_remembered_and_the_cache_is_bounded()
    {
        var cache = new ValidatedTokenCache(_clock, capacity: 3);
        var forged = LoyaltyTokens.Mint(RandomNumberGenerator.GetBytes(32), _options.Issuer, _options.Audience, new TokenRequest("x", ["admin"], null, TimeSpan.FromHours(1)), Start);
        Assert.False((await cache.ValidateTokenAsync(forged, Parameters())).IsValid);
        Assert.Equal(0, cache.Count);
        var parameters = Parameters();
        for (var i = 0; i < 10; i++) Assert.True((await cache.ValidateTokenAsync(Token(TimeSpan.FromHours(1)), parameters)).IsValid);
        Assert.InRange(cache.Count, 1, 3);
    }
}
