using System.Collections.Concurrent;
using System.Threading.Channels;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.LoadTests;

/// <summary>Deterministic per-arrival randomness (SplitMix64 of seed and index): the same run sends the same traffic.</summary>
public readonly struct Dice(int seed, long index)
{
    private readonly ulong _state = (ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)index;

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

/// <summary>The engine's clients over a few HTTP/2 connections, and the members the run enrolled.</summary>
public sealed class Engine : IDisposable
{
    private readonly GrpcChannel[] _channels;

    public Engine(LoadOptions options, string run)
    {
        Options = options;
        Run = run;
        _channels = [.. Enumerable.Range(0, options.Connections).Select(_ => GrpcChannel.ForAddress(options.Target, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true, PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan },
        }))];
        At = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-1));
    }

    public LoadOptions Options { get; }
    public string Run { get; }
    public Timestamp At { get; }
    public Expectations Expect { get; } = new();

    public GrpcChannel Channel(long i) => _channels[i % _channels.Length];
    public Processing.ProcessingClient Processing(long i) => new(Channel(i));
    public Balances.BalancesClient Balances(long i) => new(Channel(i));
    public Admin.AdminClient Admin => new(_channels[0]);
    public Offers.OffersClient Offers(long i) => new(Channel(i));
    public string MemberId(int m) => $"lt{Run}-m{m}";
    public string CardId(int m) => $"lt{Run}-c{m}";

    public async Task EnrollAsync(Action<string> progress)
    {
        var done = 0;
        await Parallel.ForEachAsync(Enumerable.Range(0, Options.Members), new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (m, ct) =>
        {
            await Admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = MemberId(m) }, cancellationToken: ct);
            await Admin.IssueCardAsync(new IssueCardRequest { CardId = CardId(m), MemberId = MemberId(m) }, cancellationToken: ct);
            if (Interlocked.Increment(ref done) % 1_000 == 0) progress($"enrolled {done} of {Options.Members} members");
        });
    }

    public void Dispose()
    {
        foreach (var channel in _channels) channel.Dispose();
    }
}

/// <summary>A purchase's realistic shape: MCC mix (a few excluded), amounts from 50 to 50 000 RUB, log-uniform.</summary>
public static class Purchases
{
    private static readonly (int Mcc, int Weight)[] Mix =
    [
        (5411, 35), (5812, 12), (5814, 7), (5541, 10), (5912, 8), (4111, 10), (5651, 7), (5732, 5), (4121, 3), (6011, 2), (4829, 1),
    ];

    private static readonly int TotalWeight = Mix.Sum(m => m.Weight);

    public static int Mcc(Dice dice, int salt)
    {
        var roll = dice.Below(salt, TotalWeight);
        foreach (var (mcc, weight) in Mix)
        {
            if (roll < weight) return mcc;
            roll -= weight;
        }
        return 5411;
    }

    public static long AmountMinor(Dice dice, int salt) => (long)Math.Exp(Math.Log(5_000) + dice.Unit(salt) * (Math.Log(5_000_000) - Math.Log(5_000)));
}

public interface IScenario
{
    Task SetupAsync(Action<string> progress);

    Task<OpOutcome> ArrivalAsync(long i);
}

/// <summary>Shared building blocks: a purchase flow (authorize, capture, sometimes a retry), balance and eligibility reads.</summary>
public abstract class EngineScenario(Engine engine) : IScenario
{
    protected Engine Engine { get; } = engine;

    public virtual Task SetupAsync(Action<string> progress) => Engine.EnrollAsync(progress);

    public abstract Task<OpOutcome> ArrivalAsync(long i);

    protected AuthorizeRequest Authorize(long i, int member, Dice dice, string merchant = "") => new()
    {
        TransactionId = $"lt{Engine.Run}-a{i}", CardId = Engine.CardId(member), AmountMinor = Purchases.AmountMinor(dice, 1), Currency = "RUB",
        Mcc = Purchases.Mcc(dice, 2), MerchantId = merchant.Length > 0 ? merchant : $"merchant-{dice.Below(3, 500)}", OccurredAt = Engine.At,
    };

    /// <summary>Authorize then capture the same amount; with retryPercent, the authorization is sent again and must come back DUPLICATE.</summary>
    protected async Task<OpOutcome> PurchaseAsync(long i, int member, Dice dice, int retryPercent, string merchant = "")
    {
        var processing = Engine.Processing(i);
        var memberId = Engine.MemberId(member);
        var authorize = Authorize(i, member, dice, merchant);
        var reply = await processing.AuthorizeAsync(authorize);
        Engine.Expect.Authorized(memberId, reply);
        if (dice.Below(4, 100) < retryPercent) Engine.Expect.Retried(reply, await processing.AuthorizeAsync(authorize));
        var capture = await processing.CaptureAsync(new CaptureRequest
        {
            TransactionId = authorize.TransactionId + "c", AuthorizationId = authorize.TransactionId, CardId = authorize.CardId,
            AmountMinor = authorize.AmountMinor, OccurredAt = Engine.At,
        });
        Engine.Expect.Captured(memberId, authorize.TransactionId, capture);
        return OpOutcome.Ok("purchase");
    }

    protected async Task<OpOutcome> BalanceAsync(long i, int member)
    {
        await Engine.Balances(i).GetBalanceAsync(new GetBalanceRequest { MemberId = Engine.MemberId(member) });
        return OpOutcome.Ok("balance");
    }

    protected async Task<OpOutcome> EligibilityAsync(long i, int member, Dice dice)
    {
        await Engine.Offers(i).CheckEligibilityAsync(new CheckEligibilityRequest
        {
            MemberId = Engine.MemberId(member), MerchantId = $"merchant-{dice.Below(3, 500)}", Mcc = Purchases.Mcc(dice, 2), AmountMinor = Purchases.AmountMinor(dice, 1),
        });
        return OpOutcome.Ok("eligibility");
    }
}

/// <summary>85% purchases (authorize + capture, 5% of them retried), 10% balance reads, 5% eligibility checks.</summary>
public sealed class PeakDay(Engine engine) : EngineScenario(engine)
{
    public override Task<OpOutcome> ArrivalAsync(long i)
    {
        var dice = new Dice(Engine.Options.Seed, i);
        var member = dice.Below(0, Engine.Options.Members);
        var roll = dice.Below(5, 100);
        return roll < 85 ? PurchaseAsync(i, member, dice, retryPercent: 5) : roll < 95 ? BalanceAsync(i, member) : EligibilityAsync(i, member, dice);
    }
}

/// <summary>Only Authorize, on random members: the durable unary rate compared with the echo baseline.</summary>
public sealed class AuthorizeOnly(Engine engine) : EngineScenario(engine)
{
    public override async Task<OpOutcome> ArrivalAsync(long i)
    {
        var dice = new Dice(Engine.Options.Seed, i);
        var member = dice.Below(0, Engine.Options.Members);
        var reply = await Engine.Processing(i).AuthorizeAsync(Authorize(i, member, dice));
        Engine.Expect.Authorized(Engine.MemberId(member), reply);
        return OpOutcome.Ok("authorize");
    }
}

/// <summary>Only GetBalance, on random members (after one purchase each during set-up, so every member is active).</summary>
public sealed class BalanceOnly(Engine engine) : EngineScenario(engine)
{
    // Set-up purchases use indexes far above any arrival's, so their transaction ids never meet.
    private const long SetupIndexBase = 1_000_000_000_000;

    public override async Task SetupAsync(Action<string> progress)
    {
        await base.SetupAsync(progress);
        await Parallel.ForEachAsync(Enumerable.Range(0, Engine.Options.Members), new ParallelOptions { MaxDegreeOfParallelism = 64 },
            async (m, _) => await PurchaseAsync(SetupIndexBase + m, m, new Dice(Engine.Options.Seed, SetupIndexBase + m), retryPercent: 0));
        progress("every member made one purchase (activated)");
    }

    public override Task<OpOutcome> ArrivalAsync(long i) => BalanceAsync(i, new Dice(Engine.Options.Seed, i).Below(0, Engine.Options.Members));
}

/// <summary>One member and card hammered: every purchase serialises on one grain.</summary>
public sealed class HotCard(Engine engine) : EngineScenario(engine)
{
    public override Task<OpOutcome> ArrivalAsync(long i) => PurchaseAsync(i, 0, new Dice(Engine.Options.Seed, i), retryPercent: 5);
}

/// <summary>A first-N partner campaign opened to every member at once; the check also proves its budget held.</summary>
public sealed class CampaignRush(Engine engine) : EngineScenario(engine)
{
    private string Merchant => $"rush-{Engine.Run}";
    private string CampaignId => $"rush-{Engine.Run}";
    private long BudgetMinor => Engine.Options.Members / 4 * 10_000L;
    private long _granted;

    public override async Task SetupAsync(Action<string> progress)
    {
        await base.SetupAsync(progress);
        await Engine.Admin.UpsertPartnerAsync(new Partner { PartnerId = "rush-partner", Name = "Rush partner" });
        await Engine.Admin.UpsertCampaignAsync(new Campaign
        {
            CampaignId = CampaignId, Name = "Campaign rush", PartnerId = "rush-partner", FixedBonusMinor = 10_000, MerchantIds = { Merchant },
            MaxMembers = Engine.Options.Members / 4, BudgetMinor = BudgetMinor,
            StartsAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(-1)), EndsAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(1)),
        });
        progress($"campaign {CampaignId}: first {Engine.Options.Members / 4} members, budget {BudgetMinor} minor (rules reach every silo within 2 s)");
        await Task.Delay(TimeSpan.FromSeconds(2.5));
    }

    public override async Task<OpOutcome> ArrivalAsync(long i)
    {
        var dice = new Dice(Engine.Options.Seed, i);
        var member = dice.Below(0, Engine.Options.Members);
        var processing = Engine.Processing(i);
        var authorize = Authorize(i, member, dice, Merchant);
        authorize.Mcc = 5411;
        var reply = await processing.AuthorizeAsync(authorize);
        Engine.Expect.Authorized(Engine.MemberId(member), reply);
        Interlocked.Add(ref _granted, reply.Breakdown.Where(b => b.Rule == "campaign:" + CampaignId).Sum(b => b.AmountMinor));
        if (Interlocked.Read(ref _granted) > BudgetMinor) Engine.Expect.Problem($"campaign {CampaignId} granted {_granted} > budget {BudgetMinor}");
        return OpOutcome.Ok("authorize");
    }
}

/// <summary>30% duplicates of earlier authorizations, late reversals, reversals of authorizations that never come, purchases.</summary>
public sealed class RetryStorm(Engine engine) : EngineScenario(engine)
{
    private readonly ConcurrentQueue<(AuthorizeRequest Request, PostingReply Reply)> _sent = new();
    private const int RememberedMax = 20_000;

    public override async Task<OpOutcome> ArrivalAsync(long i)
    {
        var dice = new Dice(Engine.Options.Seed, i);
        var member = dice.Below(0, Engine.Options.Members);
        var processing = Engine.Processing(i);
        var roll = dice.Below(5, 100);
        if (roll < 30 && _sent.TryDequeue(out var earlier))
        {
            Engine.Expect.Retried(earlier.Reply, await processing.AuthorizeAsync(earlier.Request));
            _sent.Enqueue(earlier);
            return OpOutcome.Ok("duplicate");
        }
        if (roll < 40)
        {
            // An authorization reversed a little later (cancelled order).
            var authorize = Authorize(i, member, dice);
            var reply = await processing.AuthorizeAsync(authorize);
            Engine.Expect.Authorized(Engine.MemberId(member), reply);
            var reversal = await processing.ReverseAsync(new ReverseRequest { TransactionId = authorize.TransactionId + "v", AuthorizationId = authorize.TransactionId, CardId = authorize.CardId });
            Engine.Expect.Reversed(Engine.MemberId(member), authorize.TransactionId, reversal);
            return OpOutcome.Ok("late-reversal");
        }
        if (roll < 45)
        {
            // A reversal whose authorization never arrives: recorded, changes nothing.
            var parked = await processing.ReverseAsync(new ReverseRequest { TransactionId = $"lt{Engine.Run}-v{i}", AuthorizationId = $"lt{Engine.Run}-never{i}", CardId = Engine.CardId(member) });
            if (parked.AccruedMinor != 0) Engine.Expect.Problem($"a reversal of an unknown authorization changed the balance by {parked.AccruedMinor}");
            return OpOutcome.Ok("orphan-reversal");
        }
        var request = Authorize(i, member, dice);
        var accepted = await processing.AuthorizeAsync(request);
        Engine.Expect.Authorized(Engine.MemberId(member), accepted);
        if (_sent.Count < RememberedMax) _sent.Enqueue((request, accepted));
        return OpOutcome.Ok("authorize");
    }
}

/// <summary>Authorizations through Processing.Post bidi streams (one per connection), each with many requests in flight.</summary>
public sealed class Bulk(Engine engine) : EngineScenario(engine), IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource<PostingReply>> _waiting = new(StringComparer.Ordinal);
    private readonly List<(AsyncDuplexStreamingCall<PostingRequest, PostingReply> Call, Channel<PostingRequest> Outbox, Task Pump, Task Reader)> _streams = [];

    public override async Task SetupAsync(Action<string> progress)
    {
        await base.SetupAsync(progress);
        for (var s = 0; s < Engine.Options.Connections; s++)
        {
            var call = Engine.Processing(s).Post();
            var outbox = Channel.CreateBounded<PostingRequest>(new BoundedChannelOptions(10_000) { SingleReader = true });
            var pump = Task.Run(async () =>
            {
                await foreach (var request in outbox.Reader.ReadAllAsync()) await call.RequestStream.WriteAsync(request);
                await call.RequestStream.CompleteAsync();
            });
            var reader = Task.Run(async () =>
            {
                await foreach (var reply in call.ResponseStream.ReadAllAsync())
                {
                    if (_waiting.TryRemove(reply.TransactionId, out var waiter)) waiter.TrySetResult(reply);
                }
            });
            _streams.Add((call, outbox, pump, reader));
        }
    }

    public override async Task<OpOutcome> ArrivalAsync(long i)
    {
        var dice = new Dice(Engine.Options.Seed, i);
        var member = dice.Below(0, Engine.Options.Members);
        var request = Authorize(i, member, dice);
        var waiter = new TaskCompletionSource<PostingReply>(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiting[request.TransactionId] = waiter;
        await _streams[(int)(i % _streams.Count)].Outbox.Writer.WriteAsync(new PostingRequest { Authorize = request });
        var reply = await waiter.Task.WaitAsync(TimeSpan.FromSeconds(60));
        if (reply.Error is not null) return new OpOutcome("post", reply.Error.Code);
        Engine.Expect.Authorized(Engine.MemberId(member), reply);
        return OpOutcome.Ok("post");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var stream in _streams)
        {
            stream.Outbox.Writer.TryComplete();
            await stream.Pump;
            await Task.WhenAny(stream.Reader, Task.Delay(TimeSpan.FromSeconds(10)));
            stream.Call.Dispose();
        }
    }
}

/// <summary>The bare gRPC echo: the same message sizes, no engine behind it.</summary>
public sealed class EchoScenario(string address, int connections) : IScenario, IDisposable
{
    private readonly GrpcChannel[] _channels = [.. Enumerable.Range(0, connections).Select(_ => GrpcChannel.ForAddress(address))];

    public Task SetupAsync(Action<string> progress) => Task.CompletedTask;

    public async Task<OpOutcome> ArrivalAsync(long i)
    {
        var client = new Echo.Echo.EchoClient(_channels[i % _channels.Length]);
        await client.PingAsync(new Echo.EchoRequest
        {
            TransactionId = $"echo-{i}", CardId = $"card-{i % 10_000}", AmountMinor = 123_456, Currency = "RUB", Mcc = 5411, MerchantId = "merchant-42",
            OccurredAtSeconds = 1_795_000_000,
        });
        return OpOutcome.Ok("echo");
    }

    public void Dispose()
    {
        foreach (var channel in _channels) channel.Dispose();
    }
}
