using LoyaltyGrains.Gateway.Auth;
using Microsoft.Extensions.Configuration;

namespace LoyaltyGrains.Cli;

/// <summary>Where this process's token signing key comes from.</summary>
public sealed record SigningKeySource(string? Key, string Description, string? DevelopmentKeyFile, bool Generated)
{
    public bool Development => DevelopmentKeyFile is not null;

    /// <summary>
    /// The configured HMAC key (LOYALTY_AUTH_SIGNING_KEY, then Loyalty:Auth:SigningKey); with neither, nor an authority or
    /// public key, the development key file (created when missing). The engine, the demo and the token command share it.
    /// </summary>
    public static SigningKeySource Resolve(IConfiguration configuration)
    {
        if (Environment.GetEnvironmentVariable(LoyaltyAuthOptions.SigningKeyVariable) is { Length: > 0 } fromEnvironment)
        {
            return new SigningKeySource(fromEnvironment, LoyaltyAuthOptions.SigningKeyVariable, null, false);
        }
        if (configuration[$"{LoyaltyAuthOptions.Section}:SigningKey"] is { Length: > 0 } configured)
        {
            return new SigningKeySource(configured, $"{LoyaltyAuthOptions.Section}:SigningKey", null, false);
        }
        if (configuration[$"{LoyaltyAuthOptions.Section}:Authority"] is { Length: > 0 } || configuration[$"{LoyaltyAuthOptions.Section}:PublicKeyPath"] is { Length: > 0 })
        {
            return new SigningKeySource(null, "the identity provider's keys", null, false);
        }
        var path = Environment.GetEnvironmentVariable(DevelopmentKey.FileVariable) ?? configuration[DevelopmentKey.FileKey] ?? DevelopmentKey.DefaultPath();
        var key = DevelopmentKey.LoadOrCreate(path, out var generated);
        return new SigningKeySource(key, "development key", path, generated);
    }

    public LoyaltyAuthOptions Options(IConfiguration configuration)
    {
        var options = new LoyaltyAuthOptions();
        configuration.GetSection(LoyaltyAuthOptions.Section).Bind(options);
        options.SigningKey = Key;
        return options;
    }
}
