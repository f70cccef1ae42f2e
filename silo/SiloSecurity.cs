using System.Net;
using LoyaltyGrains.Cli;
using LoyaltyGrains.Gateway.Auth;

namespace LoyaltyGrains.Silo;

/// <summary>
/// The silo's security start-up: the signing key (a development key only on loopback), reflection's default, TLS on the
/// gRPC port, the audit table in PostgreSQL mode, and what the banner says about them.
/// </summary>
public sealed class SiloSecurity
{
    private SiloSecurity(SigningKeySource key, TlsSettings tls, EngineSettings settings)
    {
        Key = key;
        Tls = tls;
        Settings = settings;
    }

    public SigningKeySource Key { get; }
    public TlsSettings Tls { get; }
    private EngineSettings Settings { get; }

    /// <summary>Configures the builder; null (after printing why) when the node must not start.</summary>
    public static SiloSecurity? Prepare(WebApplicationBuilder builder, EngineSettings settings)
    {
        try
        {
            var key = SigningKeySource.Resolve(builder.Configuration);
            if (key.Development && !IPAddress.IsLoopback(settings.ListenAddress))
            {
                Console.Error.WriteLine(
                    $"Refusing to start: this node listens on {settings.ListenAddress}, reachable from other machines, and no signing key is configured " +
                    $"(only the development key in {key.DevelopmentKeyFile}, which anyone with this account can read). Set {LoyaltyAuthOptions.SigningKeyVariable} " +
                    $"(base64, at least {LoyaltyAuthOptions.SigningKeyBytesMin} bytes: head -c 32 /dev/urandom | base64) or {LoyaltyAuthOptions.Section}:Authority.");
                return null;
            }
            if (key.Key is not null)
            {
                LoyaltyAuthOptions.ParseKeys(key.Key);
                builder.Configuration[$"{LoyaltyAuthOptions.Section}:SigningKey"] = key.Key;
            }
            // Reflection lists the whole API to anyone: on by default only for the embedded (demo) engine.
            if (builder.Configuration[AuthSetup.ReflectionKey] is null) builder.Configuration[AuthSetup.ReflectionKey] = settings.Durable ? "false" : "true";
            var tls = TlsSettings.From(builder.Configuration);
            if (settings.PostgresConnectionString is { } postgres) builder.Services.AddSingleton<IAuditStore>(new PostgresAuditStore(postgres));
            return new SiloSecurity(key, tls, settings);
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            Console.Error.WriteLine($"Refusing to start: {ex.Message}");
            return null;
        }
    }

    public void PrintBanner(ILogger logger)
    {
        var keyText = Key.Development
            ? $"the development key in {Key.DevelopmentKeyFile}{(Key.Generated ? " (generated now)" : "")} — for this machine only"
            : Key.Description;
        logger.LogInformation("Bearer tokens required on every loyalty.v1 call (signed with {Key}); mint one with: dotnet run --project silo -c Release -- token --role admin. " +
            "TLS on the gRPC port: {Tls}", keyText, Tls.Describe());
        if (!IPAddress.IsLoopback(Settings.ListenAddress) && !Tls.Enabled)
        {
            logger.LogWarning("gRPC listens on {Address} without TLS: tokens travel in clear text. Set Loyalty:Tls:CertificatePath, or terminate TLS in front of this node.",
                Settings.ListenAddress);
        }
    }
}
