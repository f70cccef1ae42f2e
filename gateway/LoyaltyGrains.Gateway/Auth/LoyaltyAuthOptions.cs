namespace LoyaltyGrains.Gateway.Auth;

/// <summary>
/// Bearer-token settings (<c>Loyalty:Auth</c>). Keys: HMAC-SHA256 secrets (<see cref="SigningKey"/>), and/or the
/// asymmetric keys of an OpenID Connect provider (<see cref="Authority"/>) or a PEM public key file (<see cref="PublicKeyPath"/>).
/// </summary>
public sealed class LoyaltyAuthOptions
{
    public const string Section = "Loyalty:Auth";
    /// <summary>Wins over <c>Loyalty:Auth:SigningKey</c>, as every LOYALTY_* variable wins over configuration files.</summary>
    public const string SigningKeyVariable = "LOYALTY_AUTH_SIGNING_KEY";
    /// <summary>HMAC-SHA256 needs a key of at least the hash size; shorter keys are refused at start.</summary>
    public const int SigningKeyBytesMin = 32;

    public string Issuer { get; set; } = "loyaltygrains";
    public string Audience { get; set; } = "loyalty.v1";

    /// <summary>Base64 HMAC-SHA256 keys, comma-separated: the first signs (the token command), every one validates (rotation).</summary>
    public string? SigningKey { get; set; }

    /// <summary>An OpenID Connect issuer whose discovery document names the JWKS (RS256/ES256 tokens).</summary>
    public string? Authority { get; set; }

    /// <summary>The discovery document's address when it is not <c>{Authority}/.well-known/openid-configuration</c>.</summary>
    public string? MetadataAddress { get; set; }

    public bool RequireHttpsMetadata { get; set; } = true;

    /// <summary>A PEM RSA or EC public key (RS256/ES256 tokens) for deployments without a reachable discovery endpoint.</summary>
    public string? PublicKeyPath { get; set; }

    /// <summary>Tolerated clock difference for exp/nbf: small, so an expired token stops working promptly.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Remember a token's successful validation for up to a minute within its lifetime (see ValidatedTokenCache); false: check every call.</summary>
    public bool RememberValidatedTokens { get; set; } = true;

    public IReadOnlyList<byte[]> SigningKeys() => ParseKeys(SigningKey);

    public static IReadOnlyList<byte[]> ParseKeys(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return [];
        var keys = new List<byte[]>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            byte[] key;
            try
            {
                key = Convert.FromBase64String(part);
            }
            catch (FormatException)
            {
                throw new InvalidOperationException($"{Section}:SigningKey / {SigningKeyVariable}: not base64 (generate one with: head -c 32 /dev/urandom | base64)");
            }
            if (key.Length < SigningKeyBytesMin)
            {
                throw new InvalidOperationException($"{Section}:SigningKey / {SigningKeyVariable}: {key.Length} bytes; HMAC-SHA256 needs at least {SigningKeyBytesMin}");
            }
            keys.Add(key);
        }
        return keys;
    }

    public bool HasKeys => !string.IsNullOrWhiteSpace(SigningKey) || !string.IsNullOrWhiteSpace(Authority) || !string.IsNullOrWhiteSpace(PublicKeyPath);
}

/// <summary>Per-caller limits (<c>Loyalty:Limits</c>). Defaults leave room for the load tool's peak-day runs from one processor token.</summary>
public sealed class LoyaltyLimitsOptions
{
    public const string Section = "Loyalty:Limits";

    /// <summary>Calls per second per token subject for processors, partners and operators (token bucket, burst of one second).</summary>
    public int RequestsPerSecond { get; set; } = 50_000;
    /// <summary>Calls per second per member for app tokens: a phone needs a handful.</summary>
    public int AppRequestsPerSecond { get; set; } = 100;
    /// <summary>EnrollMember and IssueCard per second per subject.</summary>
    public int EnrollmentsPerSecond { get; set; } = 10_000;
    /// <summary>Other Admin calls (program, campaigns, partners, blocks, reads) per minute per subject.</summary>
    public int AdminCallsPerMinute { get; set; } = 6_000;
    public int WatchStreamsPerSubject { get; set; } = 16;
    public int WatchStreamsPerProcess { get; set; } = 10_000;
}
