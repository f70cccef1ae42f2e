using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Configuration;

namespace LoyaltyGrains.Gateway.Auth;

/// <summary>
/// Optional TLS on the gRPC port (<c>Loyalty:Tls</c>): a certificate (PEM + key, or PKCS#12 + password) and, for
/// processors, client certificates issued by a CA of the bank's (mTLS). The metrics port stays plain HTTP/1.1.
/// </summary>
public sealed class TlsSettings
{
    public const string Section = "Loyalty:Tls";
    private const string ClientAuthenticationOid = "1.3.6.1.5.5.7.3.2";

    /// <summary>PEM certificate (chain) or a .pfx/.p12 bundle.</summary>
    public string? CertificatePath { get; set; }
    /// <summary>PEM private key when it is not in the certificate file.</summary>
    public string? KeyPath { get; set; }
    /// <summary>The PKCS#12 password, or an encrypted PEM key's.</summary>
    public string? Password { get; set; }
    /// <summary>Processing.* calls need a client certificate issued by <see cref="ClientCaPath"/>; apps and partners connect without one.</summary>
    public bool RequireClientCertificate { get; set; }
    /// <summary>PEM CA certificate(s) that issue processors' client certificates.</summary>
    public string? ClientCaPath { get; set; }

    public bool Enabled => !string.IsNullOrWhiteSpace(CertificatePath);

    public static TlsSettings From(IConfiguration configuration)
    {
        var settings = new TlsSettings();
        configuration.GetSection(Section).Bind(settings);
        if (settings.RequireClientCertificate && !settings.Enabled) throw new InvalidOperationException($"{Section}:RequireClientCertificate needs TLS: set {Section}:CertificatePath");
        if (settings.RequireClientCertificate && string.IsNullOrWhiteSpace(settings.ClientCaPath)) throw new InvalidOperationException($"{Section}:RequireClientCertificate needs {Section}:ClientCaPath (the CA that issues processors' certificates)");
        if (settings.Enabled) settings.LoadCertificate().Dispose();
        return settings;
    }

    public string Describe() => !Enabled ? "off (h2c)"
        : RequireClientCertificate ? $"on ({CertificatePath}), processors need client certificates from {ClientCaPath}"
        : $"on ({CertificatePath})";

    /// <summary>Turns TLS on for a Kestrel listener when configured (HTTP/2 over TLS, ALPN h2).</summary>
    public void Apply(ListenOptions listen)
    {
        if (!Enabled) return;
        var certificate = LoadCertificate();
        var authorities = RequireClientCertificate ? LoadAuthorities() : null;
        listen.UseHttps(new HttpsConnectionAdapterOptions
        {
            ServerCertificate = certificate,
            // Asked for, not required, at the handshake: apps and partners have none; Processing.* checks it per call.
            ClientCertificateMode = RequireClientCertificate ? ClientCertificateMode.AllowCertificate : ClientCertificateMode.NoCertificate,
            ClientCertificateValidation = authorities is null ? null : (client, _, _) => IssuedBy(client, authorities),
        });
    }

    public X509Certificate2 LoadCertificate()
    {
        var path = CertificatePath!;
        if (path.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".p12", StringComparison.OrdinalIgnoreCase))
        {
            return X509CertificateLoader.LoadPkcs12FromFile(path, Password);
        }
        return string.IsNullOrEmpty(Password)
            ? X509Certificate2.CreateFromPemFile(path, KeyPath)
            : X509Certificate2.CreateFromEncryptedPemFile(path, Password, KeyPath);
    }

    private X509Certificate2Collection LoadAuthorities()
    {
        var authorities = new X509Certificate2Collection();
        authorities.ImportFromPemFile(ClientCaPath!);
        if (authorities.Count == 0) throw new InvalidOperationException($"{Section}:ClientCaPath: no certificate in {ClientCaPath}");
        return authorities;
    }

    /// <summary>Chains to one of our CAs (and only those: the system's roots are not trusted here) and is meant for client authentication.</summary>
    public static bool IssuedBy(X509Certificate2 client, X509Certificate2Collection authorities)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        // No revocation lookups: the node has no route to CRL/OCSP endpoints; revoke by rotating the CA or its list.
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid(ClientAuthenticationOid));
        return chain.Build(client);
    }
}
