using Grpc.Core;
using LoyaltyGrains.LoadTests.Echo;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LoyaltyGrains.LoadTests;

/// <summary>
/// The bare gRPC baseline (h2c, same Kestrel settings as the engine). The tool runs it in a process of its own
/// (<c>--serve-echo PORT</c>, see <see cref="EchoProcess"/>), so its server CPU per call is measured apart from the
/// client's, exactly as the engine's is.
/// </summary>
public sealed class EchoServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private EchoServer(WebApplication app, string address)
    {
        _app = app;
        Address = address;
    }

    public string Address { get; }

    public static async Task<EchoServer> StartAsync(int port = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(System.Net.IPAddress.Loopback, port, l => l.Protocols = HttpProtocols.Http2);
            k.Limits.Http2.MaxStreamsPerConnection = 1024;
            k.AddServerHeader = false;
        });
        builder.Services.AddGrpc();
        var app = builder.Build();
        app.MapGrpcService<EchoService>();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new EchoServer(app, address);
    }

    /// <summary>Serves until SIGTERM/Ctrl+C or until standard input closes (the tool that started it is gone).</summary>
    public async Task ServeUntilStoppedAsync()
    {
        var lifetime = _app.Services.GetRequiredService<IHostApplicationLifetime>();
        _ = Task.Run(() =>
        {
            while (Console.In.Read() >= 0)
            {
            }
            lifetime.StopApplication();
        });
        await _app.WaitForShutdownAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private sealed class EchoService : Echo.Echo.EchoBase
    {
        public override Task<EchoReply> Ping(EchoRequest request, ServerCallContext context) => Task.FromResult(new EchoReply
        {
            TransactionId = request.TransactionId, Status = 1, MemberId = "member-" + request.CardId, AccruedMinor = request.AmountMinor / 100,
            PendingMinor = request.AmountMinor / 100, AvailableMinor = 0, Rule = "base", RuleAmountMinor = request.AmountMinor / 100, CardId = request.CardId,
        });
    }
}
