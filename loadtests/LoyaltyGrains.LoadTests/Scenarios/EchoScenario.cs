using Grpc.Core;

namespace LoyaltyGrains.LoadTests;

/// <summary>The bare gRPC echo: the same message sizes as Authorize/PostingReply, no engine behind it. Requests are built once and reused.</summary>
public sealed class EchoScenario : IScenario, IDisposable
{
    private readonly Grpc.Net.Client.GrpcChannel[] _channels;
    private readonly Echo.Echo.EchoClient[] _clients;
    private readonly Echo.EchoRequest[] _requests;
    private readonly TimeSpan _timeout;

    public EchoScenario(string address, int connections, TimeSpan timeout)
    {
        _channels = [.. Enumerable.Range(0, connections).Select(_ => Engine.CreateChannel(address))];
        _clients = [.. _channels.Select(c => new Echo.Echo.EchoClient(c))];
        _requests = [.. Enumerable.Range(0, 1024).Select(i => new Echo.EchoRequest
        {
            TransactionId = $"lt-echo000000-t{1_000_000 + i}a", CardId = $"lt-echo000000-m{i}-c0", AmountMinor = 123_456 + i, Currency = "RUB", Mcc = 5411,
            MerchantId = $"mer-5411-{i % 200}", OccurredAtSeconds = 1_795_000_000 + i, OccurredAtNanos = 123_000_000,
        })];
        _timeout = timeout;
    }

    public Task SetupAsync(Action<string> progress) => Task.CompletedTask;

    public async Task<OpOutcome> ArrivalAsync(Arrival arrival)
    {
        try
        {
            await _clients[arrival.Index % _clients.Length].PingAsync(_requests[arrival.Index % _requests.Length], deadline: DateTime.UtcNow + _timeout, cancellationToken: arrival.Cancellation);
            arrival.Rpc("Echo.Ping", arrival.IntendedTicks, OpOutcome.OkStatus);
            return OpOutcome.Ok("echo");
        }
        catch (RpcException ex)
        {
            arrival.Rpc("Echo.Ping", arrival.IntendedTicks, Arrival.StatusName(ex.StatusCode));
            return new OpOutcome("echo", Arrival.StatusName(ex.StatusCode));
        }
    }

    public void Dispose()
    {
        foreach (var channel in _channels) channel.Dispose();
    }
}
