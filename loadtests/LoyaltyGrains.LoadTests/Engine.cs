using System.Diagnostics;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.LoadTests;

/// <summary>Deterministic per-arrival randomness (SplitMix64 of seed and index): the same seed sends the same traffic.</summary>
public readonly struct Dice(int seed, long index)
{
    private readonly ulong _state = (ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)index * 0xD1B54A32D192ED03UL;

    public ulong Roll(int salt)
    {
        var z = _state + (ulong)salt * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public int Below(int salt, int bound) => (int)(Roll(salt) % (ulong)bound);

    public double Unit(int salt) => (Roll(salt) >> 11) * (1.0 / (1UL << 53));
}

/// <summary>One pre-generated purchase shape: what is authorized and what is captured.</summary>
public readonly record struct PurchaseShape(int Mcc, string MerchantId, long AuthorizeMinor, long CaptureMinor);

/// <summary>
/// A bank's day of card purchases, generated once per run (allocation-light: arrivals only index into it).
/// MCC mix by weight, ~3% excluded MCCs (cash, transfers); amounts log-normal around ~900 RUB, clipped to
/// 50–50 000 RUB, in kopecks; fuel pre-authorizes more than it captures, restaurants sometimes capture a tip
/// (both inside the default 20% capture margin).
/// </summary>
public sealed class Purchases
{
    public const int ExcludedWeightPerMille = 30;

    private static readonly (int Mcc, int WeightPerMille)[] Mix =
    [
        (5411, 330), (5812, 120), (5814, 60), (5541, 100), (5912, 80), (4111, 100), (5651, 70), (5732, 50), (4121, 40),
        (6011, 15), (4829, 10), (6012, 5),
    ];

    private const int Size = 1 << 16;
    private readonly PurchaseShape[] _shapes = new PurchaseShape[Size];

    public Purchases(int seed, int merchantsPerMcc = 200)
    {
        var merchants = Mix.ToDictionary(m => m.Mcc, m => Enumerable.Range(0, merchantsPerMcc).Select(k => $"mer-{m.Mcc}-{k}").ToArray());
        var total = Mix.Sum(m => m.WeightPerMille);
        for (var i = 0; i < Size; i++)
        {
            var dice = new Dice(seed ^ 0x5EED, i);
            var roll = dice.Below(1, total);
            var mcc = 5411;
            foreach (var (code, weight) in Mix)
            {
                if (roll < weight)
                {
                    mcc = code;
                    break;
                }
                roll -= weight;
            }
            // Box–Muller normal → log-normal rouble amount; kopecks make amounts realistic and rounding visible.
            var normal = Math.Sqrt(-2 * Math.Log(1 - dice.Unit(2))) * Math.Cos(2 * Math.PI * dice.Unit(3));
            var roubles = Math.Clamp(Math.Exp(Math.Log(900) + 1.2 * normal), 50, 50_000);
            var amountMinor = (long)roubles * 100 + dice.Below(4, 100);
            var captureMinor = mcc switch
            {
                5541 => Math.Max(100, amountMinor * (60 + dice.Below(5, 41)) / 100),
                5812 when dice.Below(6, 100) < 30 => amountMinor + amountMinor * dice.Below(7, 11) / 100,
                _ => amountMinor,
            };
            _shapes[i] = new PurchaseShape(mcc, merchants[mcc][dice.Below(8, merchantsPerMcc)], amountMinor, captureMinor);
        }
    }

    public PurchaseShape Pick(Dice dice, int salt) => _shapes[dice.Below(salt, Size)];

    public IEnumerable<PurchaseShape> All => _shapes;
}

/// <summary>The engine's clients over a few HTTP/2 connections, the run's members and cards, and what their balances must be.</summary>
public sealed class Engine : IDisposable
{
    private readonly GrpcChannel[] _channels;
    private readonly Processing.ProcessingClient[] _processing;
    private readonly Balances.BalancesClient[] _balances;
    private readonly Offers.OffersClient[] _offers;
    private readonly string[] _memberIds;
    private readonly string[][] _cardIds;

    public Engine(LoadOptions options, string runId)
    {
        Options = options;
        RunId = runId;
        // Connections spread round-robin over the targets, at least one each.
        var targets = options.Targets;
        var token = options.BearerToken();
        _channels = [.. Enumerable.Range(0, Math.Max(options.Connections, targets.Length)).Select(i => CreateChannel(targets[i % targets.Length], token))];
        _processing = [.. _channels.Select(c => new Processing.ProcessingClient(c))];
        _balances = [.. _channels.Select(c => new Balances.BalancesClient(c))];
        _offers = [.. _channels.Select(c => new Offers.OffersClient(c))];
        Admin = new Admin.AdminClient(_channels[0]);
        _memberIds = [.. Enumerable.Range(0, options.Members).Select(m => $"lt-{runId}-m{m}")];
        _cardIds = [.. Enumerable.Range(0, options.Members).Select(m => Enumerable.Range(0, options.CardsPerMember).Select(c => $"lt-{runId}-m{m}-c{c}").ToArray())];
        // A minute ago: inside the current month and the program in force, and never "in the future" for the engine's clock.
        OccurredAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-1));
        Purchases = new Purchases(options.Seed);
        Expect = new Expectations(options.Members);
    }

    public LoadOptions Options { get; }
    public string RunId { get; }
    public Timestamp OccurredAt { get; }
    public Purchases Purchases { get; }
    public Expectations Expect { get; }
    public Admin.AdminClient Admin { get; }
    public int Members => _memberIds.Length;

    /// <summary>A channel; with <paramref name="token"/>, every call carries <c>authorization: Bearer …</c>.</summary>
    public static GrpcChannel CreateChannel(string address, string? token = null)
    {
        HttpMessageHandler handler = new SocketsHttpHandler
        {
            // Past the server's concurrent-stream limit (Kestrel: 100) a channel opens another connection instead of
            // queueing calls on the client, so --max-in-flight rather than the stream limit bounds what is outstanding.
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            KeepAlivePingDelay = TimeSpan.FromSeconds(60),
        };
        if (token is not null) handler = new BearerHandler(token, handler);
        return GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = handler, MaxReceiveMessageSize = 16 * 1024 * 1024 });
    }

    /// <summary>The header on every request (h2c: gRPC call credentials would need an insecure-channel opt-in).</summary>
    private sealed class BearerHandler(string token, HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        private readonly System.Net.Http.Headers.AuthenticationHeaderValue _header = new("Bearer", token);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.Authorization = _header;
            return base.SendAsync(request, cancellationToken);
        }
    }

    public Processing.ProcessingClient Processing(long i) => _processing[i % _processing.Length];
    public Balances.BalancesClient Balances(long i) => _balances[i % _balances.Length];
    public Offers.OffersClient Offers(long i) => _offers[i % _offers.Length];
    public string MemberId(int member) => _memberIds[member];
    public string CardId(int member, int card) => _cardIds[member][card];
    public string TransactionId(long i, char suffix = 'a') => $"lt-{RunId}-t{i}{suffix}";

    /// <summary>Enrolls every member and issues its cards, with bounded concurrency; both calls are idempotent, so transient failures are retried.</summary>
    public async Task SeedAsync(Action<string> progress, CancellationToken cancellation)
    {
        var done = 0;
        var step = Math.Max(1, Members / 10);
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, Members), new ParallelOptions { MaxDegreeOfParallelism = Options.SeedConcurrency, CancellationToken = cancellation }, async (m, ct) =>
        {
            await WithRetries(() => Admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = _memberIds[m] }, deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: ct).ResponseAsync, ct);
            foreach (var card in _cardIds[m])
            {
                await WithRetries(() => Admin.IssueCardAsync(new IssueCardRequest { CardId = card, MemberId = _memberIds[m] }, deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: ct).ResponseAsync, ct);
            }
            var n = Interlocked.Increment(ref done);
            if (n % step == 0) progress($"seeded {n:N0} of {Members:N0} members ({Options.CardsPerMember} card(s) each)");
        });
        progress($"seeded {Members:N0} members in {clock.Elapsed.TotalSeconds:0.0} s");
    }

    /// <summary>Statuses after which the outcome of a posting is unknown (it may or may not have been applied).</summary>
    public static bool OutcomeUnknown(StatusCode code) => code is not (StatusCode.OK or StatusCode.NotFound or StatusCode.AlreadyExists
        or StatusCode.FailedPrecondition or StatusCode.InvalidArgument or StatusCode.Unimplemented or StatusCode.PermissionDenied
        or StatusCode.Unauthenticated or StatusCode.OutOfRange);

    public static async Task<T> WithRetries<T>(Func<Task<T>> call, CancellationToken cancellation, int attempts = 6)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await call();
            }
            catch (RpcException ex) when (attempt < attempts && ex.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Aborted or StatusCode.ResourceExhausted)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100 * (1 << attempt)), cancellation);
            }
        }
    }

    public void Dispose()
    {
        foreach (var channel in _channels) channel.Dispose();
    }
}
