using System.Text;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LoyaltyGrains.Contracts;
using LoyaltyGrains.Gateway.Auth;
using LoyaltyGrains.Gateway.V1;
using LoyaltyGrains.Tests.Api;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace LoyaltyGrains.Tests.Auth;

/// <summary>Bad tokens of every kind are UNAUTHENTICATED with a reason, and the attack they carried changed nothing.</summary>
public sealed class AuthTokenTests(EngineFixture engine) : IClassFixture<EngineFixture>
{
    private static readonly Timestamp At = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-1));

    private byte[] Key => engine.Auth.SigningKeys()[0];

    private string Mint(string issuer = "", string audience = "", DateTimeOffset? now = null, TimeSpan? lifetime = null, string[]? roles = null, byte[]? key = null) =>
        LoyaltyTokens.Mint(key ?? Key, issuer.Length > 0 ? issuer : engine.Auth.Issuer, audience.Length > 0 ? audience : engine.Auth.Audience,
            new TokenRequest("attacker", roles ?? [LoyaltyClaims.Admin, LoyaltyClaims.Processor], null, lifetime ?? TimeSpan.FromHours(1)), now);

    private string Custom(Dictionary<string, object> claims)
    {
        var now = DateTime.UtcNow;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = engine.Auth.Issuer, Audience = engine.Auth.Audience, Claims = claims, IssuedAt = now, NotBefore = now, Expires = now.AddHours(1),
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Key), SecurityAlgorithms.HmacSha256),
        });
    }

    private static string B64(string json) => Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(json));

    private async Task<(string Member, string Card)> VictimAsync()
    {
        var member = "victim-" + Guid.NewGuid().ToString("N")[..10];
        var admin = new Admin.AdminClient(engine.Channel);
        await admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = member });
        await admin.IssueCardAsync(new IssueCardRequest { CardId = "card-" + member, MemberId = member });
        return (member, "card-" + member);
    }

    /// <summary>With <paramref name="token"/>: force-post 10 bn RUB on a victim's card and set 100% cashback; both refused with <paramref name="code"/>, nothing changed.</summary>
    private async Task<string> AttackFailsAsync(string? token, StatusCode code)
    {
        var (member, card) = await VictimAsync();
        var grains = engine.Services.GetRequiredService<IGrainFactory>();
        var versions = (await grains.GetGrain<IProgramGrain>(IProgramGrain.Key).GetVersions()).Length;
        var before = await grains.MemberGrain(member).GetBalance();
        var channel = engine.ChannelFor(token);
        var post = await Assert.ThrowsAsync<RpcException>(() => new Processing.ProcessingClient(channel).CaptureAsync(new CaptureRequest
        {
            TransactionId = "steal-" + member, CardId = card, AmountMinor = 1_000_000_000_000, Mcc = 5411, MerchantId = "shop", OccurredAt = At,
        }).ResponseAsync);
        Assert.Equal(code, post.StatusCode);
        var program = await new Admin.AdminClient(engine.Channel).GetProgramAsync(new GetProgramRequest());
        foreach (var tier in program.Tiers) tier.BaseRateBps = 10_000;
        var set = await Assert.ThrowsAsync<RpcException>(() => new Admin.AdminClient(channel).SetProgramAsync(program).ResponseAsync);
        Assert.Equal(code, set.StatusCode);
        var balance = await grains.MemberGrain(member).GetBalance();
        Assert.Equal((0L, 0L, before.Sequence), (balance.AvailableMinor, balance.PendingMinor, balance.Sequence));
        Assert.Equal(versions, (await grains.GetGrain<IProgramGrain>(IProgramGrain.Key).GetVersions()).Length);
        return post.Status.Detail;
    }

    [Fact]
    public async Task No_token_is_unauthenticated()
    {
        Assert.Contains("missing bearer token", await AttackFailsAsync(null, StatusCode.Unauthenticated), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Expired_token_is_unauthenticated_beyond_the_small_clock_skew()
    {
        Assert.Contains("expired", await AttackFailsAsync(Mint(now: DateTimeOffset.UtcNow.AddHours(-2)), StatusCode.Unauthenticated), StringComparison.Ordinal);
        Assert.Contains("expired", await AttackFailsAsync(Mint(now: DateTimeOffset.UtcNow.AddMinutes(-62)), StatusCode.Unauthenticated), StringComparison.Ordinal);
        // Expired 10 s ago: inside the 30 s skew, still accepted.
        var (member, _) = await VictimAsync();
        var justExpired = Mint(now: DateTimeOffset.UtcNow.AddSeconds(-3610));
        await new Balances.BalancesClient(engine.ChannelFor(justExpired)).GetBalanceAsync(new GetBalanceRequest { MemberId = member });
    }

    [Fact]
    public async Task Token_not_valid_yet_is_unauthenticated()
    {
        Assert.Contains("not valid yet", await AttackFailsAsync(Mint(now: DateTimeOffset.UtcNow.AddMinutes(5)), StatusCode.Unauthenticated), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Forged_and_tampered_tokens_are_unauthenticated()
    {
        var forged = Mint(key: System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        Assert.Contains("signature", await AttackFailsAsync(forged, StatusCode.Unauthenticated), StringComparison.Ordinal);
        // A real app token with its payload swapped for an admin's: the signature no longer matches.
        var parts = engine.Token("someone", [LoyaltyClaims.App]).Split('.');
        var payload = B64($$"""{"sub":"someone","role":["admin","processor"],"iss":"{{engine.Auth.Issuer}}","aud":"{{engine.Auth.Audience}}","exp":{{DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds()}}}""");
        Assert.Contains("signature", await AttackFailsAsync($"{parts[0]}.{payload}.{parts[2]}", StatusCode.Unauthenticated), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Alg_none_and_unexpected_algorithms_are_unauthenticated()
    {
        var exp = DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds();
        var body = B64($$"""{"sub":"attacker","role":["admin","processor"],"iss":"{{engine.Auth.Issuer}}","aud":"{{engine.Auth.Audience}}","exp":{{exp}}}""");
        await AttackFailsAsync($"{B64("""{"alg":"none","typ":"JWT"}""")}.{body}.", StatusCode.Unauthenticated);
        await AttackFailsAsync($"{B64("""{"alg":"None","typ":"JWT"}""")}.{body}.", StatusCode.Unauthenticated);
        // The right key with another HMAC: only HS256 is accepted.
        var signed = $"{B64("""{"alg":"HS512","typ":"JWT"}""")}.{body}";
        var hs512 = $"{signed}.{Base64UrlEncoder.Encode(System.Security.Cryptography.HMACSHA512.HashData(Key, Encoding.ASCII.GetBytes(signed)))}";
        // (IdentityModel reports an algorithm outside ValidAlgorithms as a signature that does not validate.)
        await AttackFailsAsync(hs512, StatusCode.Unauthenticated);
    }

    [Fact]
    public async Task Wrong_issuer_or_audience_is_unauthenticated()
    {
        Assert.Contains("issuer", await AttackFailsAsync(Mint(issuer: "someone-else"), StatusCode.Unauthenticated), StringComparison.Ordinal);
        Assert.Contains("audience", await AttackFailsAsync(Mint(audience: "another.api"), StatusCode.Unauthenticated), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Malformed_tokens_and_tokens_without_subject_or_partner_are_unauthenticated()
    {
        await AttackFailsAsync("not-a-jwt", StatusCode.Unauthenticated);
        await AttackFailsAsync("a.b.c", StatusCode.Unauthenticated);
        Assert.Contains("no subject", await AttackFailsAsync(Custom(new() { ["role"] = new[] { "admin", "processor" } }), StatusCode.Unauthenticated), StringComparison.Ordinal);
        Assert.Contains("partner_id", await AttackFailsAsync(Custom(new() { ["sub"] = "p", ["role"] = "partner" }), StatusCode.Unauthenticated), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_valid_token_with_no_or_unknown_roles_is_permission_denied()
    {
        Assert.Contains("needs role processor", await AttackFailsAsync(Mint(roles: ["superuser"]), StatusCode.PermissionDenied), StringComparison.Ordinal);
        await AttackFailsAsync(Custom(new() { ["sub"] = "nobody" }), StatusCode.PermissionDenied);
        // Admin alone runs the programme but posts no transactions; a processor alone posts but runs nothing.
        var (member, card) = await VictimAsync();
        var adminOnly = engine.ChannelFor(engine.Token("ops", [LoyaltyClaims.Admin]));
        var denied = await Assert.ThrowsAsync<RpcException>(() => new Processing.ProcessingClient(adminOnly).AuthorizeAsync(new AuthorizeRequest
        {
            TransactionId = "a-" + member, CardId = card, AmountMinor = 100, Currency = "RUB", Mcc = 5411, MerchantId = "m", OccurredAt = At,
        }).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
    }

    [Fact]
    public async Task Health_and_reflection_need_no_token()
    {
        var anonymous = engine.ChannelFor(null);
        var health = await new global::Grpc.Health.V1.Health.HealthClient(anonymous).CheckAsync(new global::Grpc.Health.V1.HealthCheckRequest());
        Assert.Equal(global::Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
        using var call = new global::Grpc.Reflection.V1Alpha.ServerReflection.ServerReflectionClient(anonymous).ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new global::Grpc.Reflection.V1Alpha.ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext());
        Assert.Contains("loyalty.v1.Admin", call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name));
    }
}
