using LoyaltyGrains.Contracts;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Providers.Streams.Common;
using Orleans.Streams;

namespace LoyaltyGrains.Grains.Settlement;

/// <summary>How the outbox stream reads (Loyalty:Settlement:*).</summary>
public sealed record OutboxStreamSettings
{
    /// <summary>How often a queue's agent reads the outbox: the delivery lag's floor.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// An event handed to the stream and still in the outbox after this long is handed out again (its delivery failed
    /// for good, or was lost with a silo). Longer than the agent's own retries, so a slow delivery is not doubled.
    /// </summary>
    public TimeSpan RedeliverAfter { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The agent's retries of one batch (a partner grain that fails) before it leaves it to redelivery.</summary>
    public TimeSpan MaxDeliveryTime { get; init; } = TimeSpan.FromSeconds(30);

    public int QueueCount { get; init; } = PartnerStreams.QueueCountDefault;

    public static OutboxStreamSettings From(IConfiguration? configuration)
    {
        var defaults = new OutboxStreamSettings();
        if (configuration is null) return defaults;
        return new OutboxStreamSettings
        {
            PollInterval = configuration.GetValue<TimeSpan?>("Loyalty:Settlement:PollInterval") ?? defaults.PollInterval,
            RedeliverAfter = configuration.GetValue<TimeSpan?>("Loyalty:Settlement:RedeliverAfter") ?? defaults.RedeliverAfter,
            QueueCount = Math.Clamp(configuration.GetValue<int?>("Loyalty:Settlement:Queues") ?? defaults.QueueCount, 1, 64),
        };
    }
}

/// <summary>
/// One partner's events, as one item on its stream. Its token is the receiver's delivery order, not the event ids
/// (those are not a commit order); the partner grain de-duplicates by event id, in the database.
/// </summary>
[GenerateSerializer, Immutable, Alias("lg.PartnerEventBatch")]
public sealed record PartnerEventBatch(
    [property: Id(0)] StreamId StreamId,
    [property: Id(1)] PartnerEvent[] Events,
    [property: Id(2)] EventSequenceTokenV2 Token) : IBatchContainer
{
    public StreamSequenceToken SequenceToken => Token;

    public IEnumerable<Tuple<T, StreamSequenceToken>> GetEvents<T>() =>
        Events is T item ? [Tuple.Create<T, StreamSequenceToken>(item, Token)] : [];

    public bool ImportRequestContext() => false;
}

/// <summary>
/// A persistent Orleans stream whose queues are the PostgreSQL outbox (or the embedded default's in-memory one): the
/// ledger's commit is the only producer, each queue's pulling agent reads its partners' waiting rows, and the partner
/// grain's apply deletes what it counts. The outbox table is therefore the queue, the acknowledgement and the position:
/// nothing is lost by a kill -9 anywhere, and a restarted (or another) silo's agent reads what still waits.
/// </summary>
public sealed class OutboxQueueAdapterFactory : IQueueAdapterFactory, IQueueAdapter
{
    private const int CacheSize = 4_096;
    private readonly IPartnerSettlementStore _store;
    private readonly OutboxStreamSettings _settings;
    private readonly TimeProvider _clock;
    private readonly ILoggerFactory _loggers;
    private readonly OutboxQueueMapper _mapper;
    private readonly SimpleQueueAdapterCache _cache;

    public OutboxQueueAdapterFactory(string name, IPartnerSettlementStore store, OutboxStreamSettings settings, TimeProvider clock, ILoggerFactory loggers)
    {
        Name = name;
        _store = store;
        _settings = settings;
        _clock = clock;
        _loggers = loggers;
        _mapper = new OutboxQueueMapper(name, settings.QueueCount);
        _cache = new SimpleQueueAdapterCache(new SimpleQueueCacheOptions { CacheSize = CacheSize }, name, loggers);
    }

    public static OutboxQueueAdapterFactory Create(IServiceProvider services, string name) => new(name,
        services.GetRequiredService<IPartnerSettlementStore>(), services.GetRequiredService<OutboxStreamSettings>(),
        services.GetRequiredService<TimeProvider>(), services.GetRequiredService<ILoggerFactory>());

    public string Name { get; }

    /// <summary>Not rewindable: delivered events are gone from the outbox (they are in the payouts).</summary>
    public bool IsRewindable => false;

    public StreamProviderDirection Direction => StreamProviderDirection.ReadOnly;

    [Obsolete("Use the overload which accepts a CancellationToken.")]
    public Task<IQueueAdapter> CreateAdapter() => Task.FromResult<IQueueAdapter>(this);

    public Task<IQueueAdapter> CreateAdapter(CancellationToken cancellationToken) => Task.FromResult<IQueueAdapter>(this);

    public IQueueAdapterCache GetQueueAdapterCache() => _cache;

    public IStreamQueueMapper GetStreamQueueMapper() => _mapper;

    /// <summary>Never faults the subscription: an event whose delivery failed stays in the outbox and is handed out again.</summary>
    public Task<IStreamFailureHandler> GetDeliveryFailureHandler(QueueId queueId) => Task.FromResult<IStreamFailureHandler>(new NoOpStreamDeliveryFailureHandler(false));

    public Task QueueMessageBatchAsync<T>(StreamId streamId, IEnumerable<T> events, StreamSequenceToken? token, Dictionary<string, object>? requestContext) =>
        throw new NotSupportedException("Partner events are produced only by the ledger's commit (the outbox rows of its batch statement)");

    public IQueueAdapterReceiver CreateReceiver(QueueId queueId) =>
        new OutboxQueueReceiver(_store, _mapper.IndexOf(queueId), _settings, _clock, _loggers.CreateLogger<OutboxQueueReceiver>());
}

/// <summary>
/// The queues of the consistent-ring balancer (Orleans' own mapper), with a partner's stream in the queue whose reader
/// selects its rows (<see cref="PartnerStreams.QueueOf"/>).
/// </summary>
public sealed class OutboxQueueMapper : IConsistentRingStreamQueueMapper
{
    private readonly HashRingBasedStreamQueueMapper _ring;
    private readonly QueueId[] _byIndex;
    private readonly Dictionary<QueueId, int> _indexes;

    public OutboxQueueMapper(string name, int queueCount)
    {
        _ring = new HashRingBasedStreamQueueMapper(new HashRingStreamQueueMapperOptions { TotalQueueCount = queueCount }, name);
        _byIndex = [.. _ring.GetAllQueues().OrderBy(q => q.GetNumericId())];
        _indexes = _byIndex.Select((q, i) => (q, i)).ToDictionary(p => p.q, p => p.i);
    }

    public int QueueCount => _byIndex.Length;

    public int IndexOf(QueueId queueId) => _indexes.TryGetValue(queueId, out var index)
        ? index : throw new ArgumentOutOfRangeException(nameof(queueId), $"not a partner-event queue: {queueId}");

    public IEnumerable<QueueId> GetAllQueues() => _byIndex;

    public IEnumerable<QueueId> GetQueuesForRange(IRingRange range) => _ring.GetQueuesForRange(range);

    public QueueId GetQueueForStream(StreamId streamId) => _byIndex[PartnerStreams.QueueOf(streamId.GetKeyAsString(), _byIndex.Length)];
}

/// <summary>
/// Reads one queue's waiting events (oldest first) and hands them to its pulling agent as one batch per partner.
/// Remembers what it handed out until a few seconds after the agent reports it done (or until
/// <see cref="OutboxStreamSettings.RedeliverAfter"/> passes), so a slow apply is not read twice; whatever is still in the
/// outbox after that is handed out again.
/// </summary>
public sealed class OutboxQueueReceiver(IPartnerSettlementStore store, int queue, OutboxStreamSettings settings, TimeProvider clock, ILogger<OutboxQueueReceiver> logger)
    : IQueueAdapterReceiver
{
    private const int ReadMax = 2_000;
    private const int EventsPerBatch = 500;
    /// <summary>A bound on what is on its way: past it the receiver waits for deliveries before reading more.</summary>
    private const int OnTheirWayMax = 8_000;

    private readonly Lock _gate = new();
    /// <summary>
    /// The agent may report a batch done while its last apply is still committing (the cache purges what every cursor has
    /// passed): its events stay skipped this much longer, so they are not read again needlessly.
    /// </summary>
    private static readonly TimeSpan DoneGrace = TimeSpan.FromSeconds(5);

    /// <summary>Event id → when to read it again if it is still in the outbox (ticks).</summary>
    private readonly Dictionary<long, long> _onTheirWay = [];
    private bool _failing;

    /// <summary>
    /// Tokens only grow, also across receivers and restarts (they start from the clock): a partner grain still active
    /// from an earlier agent hands its last token back, and a token from the future would make the agent wait for it.
    /// </summary>
    private static long s_lastToken;

    public Task Initialize(TimeSpan timeout) => Task.CompletedTask;

    [Obsolete("Use the overload which accepts a CancellationToken.")]
    public Task<IList<IBatchContainer>> GetQueueMessagesAsync(int maxCount) => GetQueueMessagesAsync(maxCount, CancellationToken.None);

    public async Task<IList<IBatchContainer>> GetQueueMessagesAsync(int maxCount, CancellationToken cancellationToken)
    {
        long[] skip;
        var now = clock.GetUtcNow().UtcTicks;
        lock (_gate)
        {
            foreach (var (eventId, readAgainAt) in _onTheirWay.ToArray())
            {
                if (readAgainAt <= now) _onTheirWay.Remove(eventId);
            }
            if (_onTheirWay.Count >= OnTheirWayMax || maxCount <= 0) return [];
            skip = [.. _onTheirWay.Keys];
        }
        IReadOnlyList<PartnerEvent> events;
        try
        {
            events = await store.ReadUndeliveredAsync(ReadMax, queue, settings.QueueCount, skip, cancellationToken).ConfigureAwait(false);
            if (_failing) logger.LogInformation("Partner events: queue {Queue} reads the outbox again", queue);
            _failing = false;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // The agent retries on its timer; the events wait in the outbox meanwhile.
            // An outage is already logged once by the database's availability; its stack adds nothing, another fault's does.
            if (!_failing)
            {
                logger.LogWarning(Contracts.Faults.IsUnavailable(ex) ? null : ex, "Partner events: queue {Queue} cannot read the outbox ({Reason}); retrying",
                    queue, ex.GetBaseException().Message);
            }
            _failing = true;
            return [];
        }
        if (events.Count == 0) return [];

        var batches = new List<IBatchContainer>();
        lock (_gate)
        {
            foreach (var partner in events.GroupBy(e => e.PartnerId, StringComparer.Ordinal))
            {
                var all = partner.ToArray();
                var streamId = StreamId.Create(PartnerStreams.Namespace, partner.Key);
                for (var offset = 0; offset < all.Length && batches.Count < maxCount; offset += EventsPerBatch)
                {
                    var chunk = all[offset..Math.Min(all.Length, offset + EventsPerBatch)];
                    batches.Add(new PartnerEventBatch(streamId, chunk, new EventSequenceTokenV2(NextToken(now))));
                    foreach (var e in chunk) _onTheirWay[e.EventId] = now + settings.RedeliverAfter.Ticks;
                }
                if (batches.Count >= maxCount) break;
            }
        }
        return batches;
    }

    [Obsolete("Use the overload which accepts a CancellationToken.")]
    public Task MessagesDeliveredAsync(IList<IBatchContainer> messages) => MessagesDeliveredAsync(messages, CancellationToken.None);

    /// <summary>The agent is done with these (applied, or given up on: then they are still in the outbox and are read again).</summary>
    public Task MessagesDeliveredAsync(IList<IBatchContainer> messages, CancellationToken cancellationToken)
    {
        var soon = clock.GetUtcNow().UtcTicks + DoneGrace.Ticks;
        lock (_gate)
        {
            foreach (var message in messages)
            {
                if (message is not PartnerEventBatch batch) continue;
                foreach (var e in batch.Events)
                {
                    if (_onTheirWay.TryGetValue(e.EventId, out var readAgainAt) && readAgainAt > soon) _onTheirWay[e.EventId] = soon;
                }
            }
        }
        return Task.CompletedTask;
    }

    public Task Shutdown(TimeSpan timeout)
    {
        lock (_gate) _onTheirWay.Clear();
        return Task.CompletedTask;
    }

    private static long NextToken(long nowTicks)
    {
        while (true)
        {
            var last = Interlocked.Read(ref s_lastToken);
            var next = Math.Max(last + 1, nowTicks);
            if (Interlocked.CompareExchange(ref s_lastToken, next, last) == last) return next;
        }
    }
}
