using System.Security.Cryptography;
using System.Text;
using LoyaltyGrains.Gateway.Auth;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace LoyaltyGrains.Tests.Auth;

/// <summary>The validation settings every node uses, per kind of key: what is accepted and what is refused.</summary>
public sealed class KeyConfigurationTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("loyalty-keys-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string Mint(LoyaltyAuthOptions auth, SigningCredentials credentials, string? issuer = null)
    {
        var now = DateTime.UtcNow;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer ?? auth.Issuer, Audience = auth.Audience, IssuedAt = now, NotBefore = now, Expires = now.AddMinutes(5),
            Claims = new Dictionary<string, object> { ["sub"] = "p-1", ["role"] = "processor" },
            SigningCredentials = credentials,
        });
    }

    private static async Task<bool> ValidAsync(string token, LoyaltyAuthOptions auth) =>
        (await new JsonWebTokenHandler().ValidateTokenAsync(token, AuthSetup.ValidationParameters(auth))).IsValid;

    [Fact]
    public async Task A_pem_public_key_accepts_es256_and_rs256_tokens_from_its_private_key_only()
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var ecPath = Path.Combine(_folder, "ec.pem");
        await File.WriteAllTextAsync(ecPath, ec.ExportSubjectPublicKeyInfoPem());
        var ecAuth = new LoyaltyAuthOptions { PublicKeyPath = ecPath };
        Assert.True(await ValidAsync(Mint(ecAuth, new SigningCredentials(new ECDsaSecurityKey(ec), SecurityAlgorithms.EcdsaSha256)), ecAuth));
        using var otherEc = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Assert.False(await ValidAsync(Mint(ecAuth, new SigningCredentials(new ECDsaSecurityKey(otherEc), SecurityAlgorithms.EcdsaSha256)), ecAuth));
        Assert.False(await ValidAsync(Mint(ecAuth, new SigningCredentials(new ECDsaSecurityKey(ec), SecurityAlgorithms.EcdsaSha256), issuer: "elsewhere"), ecAuth));

        using var rsa = RSA.Create(2048);
        var rsaPath = Path.Combine(_folder, "rsa.pem");
        await File.WriteAllTextAsync(rsaPath, rsa.ExportSubjectPublicKeyInfoPem());
        var rsaAuth = new LoyaltyAuthOptions { PublicKeyPath = rsaPath };
        Assert.True(await ValidAsync(Mint(rsaAuth, new SigningCredentials(new RsaSecurityKey(rsa), SecurityAlgorithms.RsaSha256)), rsaAuth));
        // RSASSA-PSS is not on the list, even with the right key.
        Assert.False(await ValidAsync(Mint(rsaAuth, new SigningCredentials(new RsaSecurityKey(rsa), SecurityAlgorithms.RsaSsaPssSha256)), rsaAuth));
    }

    [Fact]
    public async Task An_hmac_made_with_the_public_key_is_refused()
    {
        // The classic algorithm confusion: sign HS256 with the (public) verification key's bytes.
        using var rsa = RSA.Create(2048);
        var pem = rsa.ExportSubjectPublicKeyInfoPem();
        var path = Path.Combine(_folder, "rsa.pem");
        await File.WriteAllTextAsync(path, pem);
        var auth = new LoyaltyAuthOptions { PublicKeyPath = path };
        var forged = Mint(auth, new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(pem)), SecurityAlgorithms.HmacSha256));
        Assert.False(await ValidAsync(forged, auth));
    }

    [Fact]
    public async Task Rotation_every_listed_key_validates_and_short_or_bad_keys_are_refused_at_start()
    {
        var (old, current) = (RandomNumberGenerator.GetBytes(32), RandomNumberGenerator.GetBytes(32));
        var auth = new LoyaltyAuthOptions { SigningKey = $"{Convert.ToBase64String(current)}, {Convert.ToBase64String(old)}" };
        Assert.True(await ValidAsync(LoyaltyTokens.Mint(old, auth.Issuer, auth.Audience, new TokenRequest("p", ["processor"], null, TimeSpan.FromMinutes(1))), auth));
        var minted = LoyaltyTokens.Mint(auth, new TokenRequest("p", ["processor"], null, TimeSpan.FromMinutes(1)));
        Assert.True(await ValidAsync(minted, new LoyaltyAuthOptions { SigningKey = Convert.ToBase64String(current) }));
        Assert.Contains("at least 32", Assert.Throws<InvalidOperationException>(() => new LoyaltyAuthOptions { SigningKey = Convert.ToBase64String(new byte[16]) }.SigningKeys()).Message, StringComparison.Ordinal);
        Assert.Contains("not base64", Assert.Throws<InvalidOperationException>(() => new LoyaltyAuthOptions { SigningKey = "not base64!" }.SigningKeys()).Message, StringComparison.Ordinal);
    }
}
