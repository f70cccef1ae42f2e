using Grpc.Health.V1;
using Grpc.Net.Client;
using LoyaltyGrains.Tests.Durability;
using static Grpc.Health.V1.HealthCheckResponse.Types;

namespace LoyaltyGrains.Tests.Faults;

/// <summary>
/// Polls the silo's overall gRPC health (service "") every 250 ms, as a load balancer would, and keeps what it said
/// when: a status, or null when it did not answer within a second.
/// </summary>
public sealed class HealthWatch : IAsyncDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);

    private readonly Health.HealthClient _health;
    private readonly Func<TimeSpan> _clock;
    private readonly List<(TimeSpan At, ServingStatus? Status)> _samples = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _polling;
    private bool _disposed;

    public HealthWatch(GrpcChannel channel, Func<TimeSpan> clock)
    {
        _health = new Health.HealthClient(channel);
        _clock = clock;
        _polling = Task.Run(PollAsync);
    }

    public IReadOnlyList<(TimeSpan At, ServingStatus? Status)> Samples
    {
        get
        {
            lock (_samples) return [.. _samples];
        }
    }

    /// <summary>When it first said <paramref name="status"/> at or after <paramref name="from"/> (and before <paramref name="until"/>), or null.</summary>
    public TimeSpan? First(ServingStatus status, TimeSpan from, TimeSpan? until = null) =>
        Samples.Where(s => s.Status == status && s.At >= from && (until is null || s.At < until)).Select(s => (TimeSpan?)s.At).FirstOrDefault();

    /// <summary>What it said between two moments, in order, repeats folded: e.g. "SERVING, NOT_SERVING x12, no answer x3, SERVING".</summary>
    public string Describe(TimeSpan from, TimeSpan until)
    {
        var runs = new List<(string Status, int Count)>();
        foreach (var (_, status) in Samples.Where(s => s.At >= from && s.At < until))
        {
            var name = status switch
            {
                null => "no answer",
                ServingStatus.NotServing => "NOT_SERVING",
                ServingStatus.Serving => "SERVING",
                _ => status.ToString()!.ToUpperInvariant(),
            };
            if (runs.Count > 0 && runs[^1].Status == name) runs[^1] = (name, runs[^1].Count + 1);
            else runs.Add((name, 1));
        }
        return runs.Count == 0 ? "no samples" : string.Join(", ", runs.Select(r => r.Count == 1 ? r.Status : $"{r.Status} x{r.Count}"));
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        await _stop.CancelAsync();
        await _polling;
        _stop.Dispose();
    }

    private async Task PollAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var at = _clock();
            var status = await EngineProcess.CheckHealthAsync(_health);
            lock (_samples) _samples.Add((at, status));
            try
            {
                await Task.Delay(Interval, _stop.Token);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }
}
