using System.Security.Cryptography;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace LoyaltyGrains.LoadTests;

/// <summary>
/// The tool's own bearer token (sub "loadtest", roles admin and processor), HS256 with the engine's key. Minted here
/// rather than with the gateway's code: the tool references no engine project, only the public contract.
/// </summary>
public static class LoadToken
{
    public const string Issuer = "loyaltygrains";
    public const string Audience = "loyalty.v1";

    public static string? Mint(string? signingKey)
    {
        var key = signingKey ?? Environment.GetEnvironmentVariable("LOYALTY_AUTH_SIGNING_KEY") ?? DevelopmentKey();
        if (string.IsNullOrWhiteSpace(key)) return null;
        var now = DateTime.UtcNow;
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Environment.GetEnvironmentVariable("LOYALTY_AUTH_ISSUER") ?? Issuer,
            Audience = Environment.GetEnvironmentVariable("LOYALTY_AUTH_AUDIENCE") ?? Audience,
            Claims = new Dictionary<string, object> { ["sub"] = "loadtest", ["role"] = new[] { "admin", "processor" }, ["jti"] = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)) },
            IssuedAt = now,
            NotBefore = now,
            // Long enough for a find-max run plus its correctness check.
            Expires = now.AddHours(24),
            // The first key of a comma-separated rotation list signs, as the engine's token command does.
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Convert.FromBase64String(key.Split(',')[0].Trim())), SecurityAlgorithms.HmacSha256),
        });
    }

    /// <summary>The key the embedded engine generated for this user when none was configured (read only, never created here).</summary>
    private static string? DevelopmentKey()
    {
        var path = Environment.GetEnvironmentVariable("LOYALTY_AUTH_DEV_KEY_FILE")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify), "loyaltygrains", "dev-signing-key");
        return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
    }
}
