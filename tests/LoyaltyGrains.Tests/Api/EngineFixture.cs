using Grpc.Net.Client;
using LoyaltyGrains.Gateway;
using LoyaltyGrains.Gateway.Auth;
using LoyaltyGrains.Grains;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LoyaltyGrains.Tests.Api;

/// <summary>
/// The embedded engine (silo + co-hosted gateway) on a free loopback port, and a real gRPC channel to it that carries
/// an admin+processor token; <see cref="ChannelFor"/> gives channels with other tokens (or none).
/// </summary>
public class EngineFixture : IAsyncLifetime
{
    private WebApplication? _app;
    private readonly List<GrpcChannel> _channels = [];

    public GrpcChannel Channel { get; private set; } = null!;
    public string Address { get; private set; } = "";
    public LoyaltyAuthOptions Auth { get; private set; } = null!;
    public IServiceProvider Services => _app!.Services;

    /// <summary>Extra configuration of a fixture variant (limits, audit store, reflection off...), before the app is built.</summary>
    protected virtual void Configure(WebApplicationBuilder builder)
    {
    }

    /// <summary>A variant's client settings (e.g. TLS trust); a new instance per channel.</summary>
    protected virtual GrpcChannelOptions? ChannelOptions() => null;

    public string Token(string subject, string[] roles, string? partnerId = null, TimeSpan? lifetime = null) =>
        LoyaltyTokens.Mint(Auth, new TokenRequest(subject, roles, partnerId, lifetime ?? TimeSpan.FromHours(1)));

    /// <summary>A channel sending <paramref name="token"/> (null: no authorization header), disposed with the fixture.</summary>
    public GrpcChannel ChannelFor(string? token, GrpcChannelOptions? options = null)
    {
        var channel = BearerTokenHandler.Channel(Address, token, options ?? ChannelOptions());
        lock (_channels) _channels.Add(channel);
        return channel;
    }

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        // A key of this fixture's own (LOYALTY_AUTH_SIGNING_KEY, when set, wins; tokens are minted with whichever is in force).
        builder.Configuration["Loyalty:Auth:SigningKey"] = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        builder.Configuration["Loyalty:Reflection"] = "true";
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0, l =>
        {
            l.Protocols = HttpProtocols.Http2;
            TlsSettings.From(builder.Configuration).Apply(l);
        }));
        var siloPort = FreePort();
        var gatewayPort = FreePort();
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(siloPort, gatewayPort, serviceId: "grpc-tests", clusterId: "grpc-tests-" + siloPort);
            silo.AddMemoryGrainStorage(StorageNames.Loyalty);
        });
        builder.Services.AddLoyaltyGrains();
        builder.Services.AddLoyaltyGateway();
        Configure(builder);
        _app = builder.Build();
        _app.MapLoyaltyGateway();
        await _app.StartAsync();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Address = address;
        Auth = _app.Services.GetRequiredService<IOptions<LoyaltyAuthOptions>>().Value;
        Channel = ChannelFor(Token("tests", [LoyaltyClaims.Admin, LoyaltyClaims.Processor]));
    }

    public virtual async Task DisposeAsync()
    {
        lock (_channels)
        {
            foreach (var channel in _channels) channel.Dispose();
        }
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
