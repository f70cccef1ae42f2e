using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains.Settlement;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.Streams;

namespace LoyaltyGrains.Tests.Grains;

/// <summary>
/// The partner-event stream's queue receiver over the outbox: it hands each waiting event out once per partner batch,
/// not again while it is on its way, again when it is still waiting after the redelivery time (its delivery failed),
/// and never once it is applied. Partners are split over the queues the same way in C# and in SQL.
/// </summary>
public sealed class SettlementStreamReceiverTests
{
    private static readonly DateTimeOffset At = new(2026, 12, 1, 10, 0, 0, TimeSpan.Zero);
    private static readonly string[] Partners = ["fuel", "coffee", "books", "cinema", "p,1", "кафе"];

    private static LedgerEntry Capture(long sequence, string partner, long amount) => new()
    {
        MemberId = "m1", Sequence = sequence, MessageId = $"t{sequence}", Kind = EntryKind.Capture,
        Breakdown = [new AccrualLine("base", 10), new AccrualLine("campaign:" + partner, amount, 0, partner)],
        AvailableDeltaMinor = 10 + amount, RecordedAt = At, OccurredAt = At, LotExpiresAt = At.AddYears(1),
    };

    [Fact]
    public async Task Waiting_events_are_handed_out_once_again_after_the_redelivery_time_and_never_after_the_apply()
    {
        var clock = new FakeClock(At);
        var store = new InMemoryPartnerSettlement();
        store.AddCommitted([.. Enumerable.Range(1, 12).Select(i => Capture(i, Partners[i % Partners.Length], 100 * i))]);
        var settings = new OutboxStreamSettings { QueueCount = 1, RedeliverAfter = TimeSpan.FromSeconds(60) };
        var receiver = new OutboxQueueReceiver(store, 0, settings, clock, NullLogger<OutboxQueueReceiver>.Instance);

        var first = (await receiver.GetQueueMessagesAsync(100, CancellationToken.None)).Cast<PartnerEventBatch>().ToArray();
        Assert.Equal(Partners.Length, first.Length); // one batch per partner
        Assert.Equal(12, first.Sum(b => b.Events.Length));
        Assert.All(first, b => Assert.All(b.Events, e => Assert.Equal(b.StreamId.GetKeyAsString(), e.PartnerId)));
        Assert.All(first, b => Assert.Equal(PartnerStreams.Namespace, b.StreamId.GetNamespace()));
        Assert.Equal(first.Length, first.Select(b => b.SequenceToken).Distinct().Count());
        Assert.True(first.Zip(first.Skip(1)).All(p => p.First.SequenceToken.Older(p.Second.SequenceToken)), "tokens must grow");
        var single = Assert.Single(first[0].GetEvents<PartnerEvent[]>());
        Assert.Same(first[0].Events, single.Item1);

        // On their way: not read again.
        Assert.Empty(await receiver.GetQueueMessagesAsync(100, CancellationToken.None));
        clock.Advance(TimeSpan.FromSeconds(59));
        Assert.Empty(await receiver.GetQueueMessagesAsync(100, CancellationToken.None));

        // One partner's batch applied; the rest failed (never applied): after the redelivery time only they come again.
        var applied = first[0];
        Assert.Equal(applied.Events.Length, await store.ApplyAsync(applied.Events[0].PartnerId, applied.Events, CancellationToken.None));
        clock.Advance(TimeSpan.FromSeconds(2));
        var again = (await receiver.GetQueueMessagesAsync(100, CancellationToken.None)).Cast<PartnerEventBatch>().ToArray();
        Assert.Equal(first.Skip(1).SelectMany(b => b.Events).Select(e => e.EventId).Order(), again.SelectMany(b => b.Events).Select(e => e.EventId).Order());
        Assert.True(again.Min(b => b.Token.SequenceNumber) > first.Max(b => b.Token.SequenceNumber), "a redelivery gets newer tokens");

        // Reported done by the agent but still waiting (the apply failed): read again after the short grace, not the full minute.
        await receiver.MessagesDeliveredAsync([.. again], CancellationToken.None);
        clock.Advance(TimeSpan.FromSeconds(4));
        Assert.Empty(await receiver.GetQueueMessagesAsync(100, CancellationToken.None));
        foreach (var batch in again.Skip(1)) await store.ApplyAsync(batch.Events[0].PartnerId, batch.Events, CancellationToken.None);
        clock.Advance(TimeSpan.FromSeconds(2));
        var last = (await receiver.GetQueueMessagesAsync(100, CancellationToken.None)).Cast<PartnerEventBatch>().ToArray();
        Assert.Equal(again[0].Events.Select(e => e.EventId), Assert.Single(last).Events.Select(e => e.EventId));

        // A redelivery of what was applied counts nothing; then nothing waits.
        Assert.Equal(0, await store.ApplyAsync(applied.Events[0].PartnerId, applied.Events, CancellationToken.None));
        await store.ApplyAsync(last[0].Events[0].PartnerId, last[0].Events, CancellationToken.None);
        clock.Advance(TimeSpan.FromMinutes(5));
        Assert.Empty(await receiver.GetQueueMessagesAsync(100, CancellationToken.None));
        Assert.Equal((0L, (DateTime?)null), await store.UndeliveredAsync(null, CancellationToken.None));
    }

    [Fact]
    public async Task Each_queue_reads_only_its_partners_and_the_mapper_agrees()
    {
        var store = new InMemoryPartnerSettlement();
        store.AddCommitted([.. Enumerable.Range(1, 60).Select(i => Capture(i, Partners[i % Partners.Length], i))]);
        const int queues = 4;
        var mapper = new OutboxQueueMapper(PartnerStreams.ProviderName, queues);
        var all = mapper.GetAllQueues().ToArray();
        Assert.Equal(queues, all.Length);
        var seen = new List<long>();
        for (var q = 0; q < queues; q++)
        {
            var receiver = new OutboxQueueReceiver(store, mapper.IndexOf(all[q]), new OutboxStreamSettings { QueueCount = queues }, new FakeClock(At),
                NullLogger<OutboxQueueReceiver>.Instance);
            foreach (var batch in (await receiver.GetQueueMessagesAsync(100, CancellationToken.None)).Cast<PartnerEventBatch>())
            {
                Assert.Equal(all[q], mapper.GetQueueForStream(batch.StreamId));
                seen.AddRange(batch.Events.Select(e => e.EventId));
            }
        }
        Assert.Equal(Enumerable.Range(1, 60).Select(i => (long)i), seen.Order()); // every event in exactly one queue
        Assert.True(Partners.Select(p => PartnerStreams.QueueOf(p, queues)).Distinct().Count() > 1, "partners spread over the queues");
    }
}
