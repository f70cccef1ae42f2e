using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using LoyaltyGrains.Gateway.Auth;
using LoyaltyGrains.Gateway.V1;
using LoyaltyGrains.Tests.Api;
using Microsoft.AspNetCore.Builder;

namespace LoyaltyGrains.Tests.Auth;

/// <summary>A throwaway CA, a server certificate for 127.0.0.1 and client certificates, in a temporary folder.</summary>
public sealed class TestCertificates : IDisposable
{
    public TestCertificates()
    {
        Folder = Directory.CreateTempSubdirectory("loyalty-tls-").FullName;
        Ca = Authority("LoyaltyGrains test CA");
        OtherCa = Authority("Somebody else's CA");
        using var server = Issue(Ca, "127.0.0.1", serverAuth: true);
        File.WriteAllText(ServerCertificatePath, server.ExportCertificatePem());
        File.WriteAllText(ServerKeyPath, server.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(CaPath, Ca.ExportCertificatePem());
        Processor = Issue(Ca, "processor-1", serverAuth: false);
        Stranger = Issue(OtherCa, "processor-1", serverAuth: false);
    }

    public string Folder { get; }
    public X509Certificate2 Ca { get; }
    public X509Certificate2 OtherCa { get; }
    public X509Certificate2 Processor { get; }
    public X509Certificate2 Stranger { get; }
    public string ServerCertificatePath => Path.Combine(Folder, "server.pem");
    public string ServerKeyPath => Path.Combine(Folder, "server.key");
    public string CaPath => Path.Combine(Folder, "ca.pem");

    private static X509Certificate2 Authority(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
    }

    private static X509Certificate2 Issue(X509Certificate2 ca, string name, bool serverAuth)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(serverAuth ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
        if (serverAuth)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(IPAddress.Loopback);
            names.AddDnsName("localhost");
            request.CertificateExtensions.Add(names.Build());
        }
        using var issued = request.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(10), RandomNumberGenerator.GetBytes(8));
        return issued.CopyWithPrivateKey(key);
    }

    public void Dispose()
    {
        Ca.Dispose();
        OtherCa.Dispose();
        Processor.Dispose();
        Stranger.Dispose();
        Directory.Delete(Folder, recursive: true);
    }
}

/// <summary>The engine with TLS on its gRPC port and client certificates required of processors.</summary>
public sealed class TlsEngineFixture : EngineFixture
{
    public TestCertificates Certificates { get; } = new();

    protected override void Configure(WebApplicationBuilder builder)
    {
        builder.Configuration["Loyalty:Tls:CertificatePath"] = Certificates.ServerCertificatePath;
        builder.Configuration["Loyalty:Tls:KeyPath"] = Certificates.ServerKeyPath;
        builder.Configuration["Loyalty:Tls:RequireClientCertificate"] = "true";
        builder.Configuration["Loyalty:Tls:ClientCaPath"] = Certificates.CaPath;
    }

    /// <summary>Trusts the test CA for the server; presents <paramref name="client"/> when given.</summary>
    public GrpcChannelOptions Client(X509Certificate2? client)
    {
        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            certificate is not null && TrustsServer(X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
        if (client is not null) handler.SslOptions.ClientCertificates = [client];
        return new GrpcChannelOptions { HttpHandler = handler };
    }

    private bool TrustsServer(X509Certificate2 server)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Certificates.Ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(server);
    }

    protected override GrpcChannelOptions? ChannelOptions() => Client(null);

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Certificates.Dispose();
    }
}

public sealed class TlsTests(TlsEngineFixture engine) : IClassFixture<TlsEngineFixture>
{
    private static readonly Timestamp At = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-1));

    private async Task<(string Member, string Card)> MemberAsync()
    {
        var member = "tls-" + Guid.NewGuid().ToString("N")[..12];
        var admin = new Admin.AdminClient(engine.Channel);
        await admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = member });
        await admin.IssueCardAsync(new IssueCardRequest { CardId = "card-" + member, MemberId = member });
        return (member, "card-" + member);
    }

    private static AuthorizeRequest Authorize(string card, string id) => new()
    {
        TransactionId = id, CardId = card, AmountMinor = 100_000, Currency = "RUB", Mcc = 5411, MerchantId = "shop", OccurredAt = At,
    };

    [Fact]
    public async Task Over_tls_processors_need_a_client_certificate_from_the_bank_ca_and_apps_need_none()
    {
        Assert.StartsWith("https://", engine.Address, StringComparison.Ordinal);
        var (member, card) = await MemberAsync();
        var processorToken = engine.Token("proc-1", [LoyaltyClaims.Processor]);

        var withCertificate = new Processing.ProcessingClient(engine.ChannelFor(processorToken, engine.Client(engine.Certificates.Processor)));
        Assert.Equal(PostingStatus.Accepted, (await withCertificate.AuthorizeAsync(Authorize(card, "t1-" + member))).Status);

        var without = await Assert.ThrowsAsync<RpcException>(() =>
            new Processing.ProcessingClient(engine.ChannelFor(processorToken)).AuthorizeAsync(Authorize(card, "t2-" + member)).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, without.StatusCode);
        Assert.Contains("client certificate", without.Status.Detail, StringComparison.Ordinal);

        // A certificate from another CA does not get through the handshake.
        var stranger = await Assert.ThrowsAsync<RpcException>(() =>
            new Processing.ProcessingClient(engine.ChannelFor(processorToken, engine.Client(engine.Certificates.Stranger))).AuthorizeAsync(Authorize(card, "t3-" + member)).ResponseAsync);
        Assert.NotEqual(StatusCode.OK, stranger.StatusCode);

        var app = new Balances.BalancesClient(engine.ChannelFor(engine.Token(member, [LoyaltyClaims.App])));
        Assert.Equal(1_000, (await app.GetBalanceAsync(new GetBalanceRequest { MemberId = member })).PendingMinor);
    }
}
