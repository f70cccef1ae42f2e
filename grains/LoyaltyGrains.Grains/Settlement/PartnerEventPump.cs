using System.Diagnostics;
using System.Diagnostics.Metrics;
using LoyaltyGrains.Contracts;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LoyaltyGrains.Grains.Settlement;

/// <summary>
/// Delivers the outbox to partner grains, on every silo. An event leaves the outbox only in the same commit that adds it
/// to its partner's totals (<see cref="IPartnerSettlementStore.ApplyAsync"/>), so a kill -9 anywhere here leaves it
/// either applied or still waiting, and the next pass (this silo's after a restart, or another's) delivers what waits.
/// Two silos delivering the same event is harmless: the second apply finds it gone and counts nothing.
/// A partner whose grain fails is retried with back-off, never skipped for good: a payout is never dropped.
/// </summary>
public sealed class PartnerEventPump(IGrainFactory grains, IPartnerSettlementStore store, TimeProvider clock, ILogger<PartnerEventPump> logger,
    IConfiguration? configuration = null) : BackgroundService
{
    private const int ReadMax = 2_000;
    private const int EventsPerCall = 500;
    /// <summary>The pause after a pass that found less than a full read: the delivery lag's floor when idle.</summary>
    private readonly TimeSpan _idlePoll = configuration?.GetValue<TimeSpan?>("Loyalty:Settlement:PollInterval") ?? TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan CountEvery = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan BackoffMin = TimeSpan.FromMilliseconds(200), BackoffMax = TimeSpan.FromSeconds(10);

    private static readonly Meter Meter = new(LoyaltyMetrics.MeterName, "1.0");
    private static readonly Histogram<double> DeliveryDelay = Meter.CreateHistogram<double>("loyalty.payouts.delivery.delay", "ms",
        "Time from an event's ledger commit stamp to its application to the partner's totals");
    private static readonly Counter<long> Applied = Meter.CreateCounter<long>("loyalty.payouts.events.applied", "{event}",
        "Partner events applied to payouts by this silo");

    // Read by the observable gauges: the silo's last view of the outbox.
    private static long s_undelivered;
    private static long s_oldestTicks;
    private static TimeProvider s_clock = TimeProvider.System;

    static PartnerEventPump()
    {
        Meter.CreateObservableGauge("loyalty.payouts.lag", () =>
        {
            var oldest = Interlocked.Read(ref s_oldestTicks);
            return oldest == 0 ? 0 : Math.Max(0, (s_clock.GetUtcNow().UtcDateTime - new DateTime(oldest, DateTimeKind.Utc)).TotalSeconds);
        }, "s", "Age of the oldest partner event not yet applied to payouts (0: payouts are complete)");
        Meter.CreateObservableGauge("loyalty.payouts.undelivered", () => Interlocked.Read(ref s_undelivered), "{event}",
            "Partner events committed to the ledger and not yet applied to payouts");
    }

    private readonly Dictionary<string, (int Failures, DateTime RetryAt)> _backoff = new(StringComparer.Ordinal);
    private DateTime _countedAt;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        s_clock = clock;
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var delivered = await PassAsync(stoppingToken).ConfigureAwait(false);
                if (failures > 0) logger.LogInformation("Partner event delivery reaches the outbox again");
                failures = 0;
                if (delivered < ReadMax) await Task.Delay(_idlePoll, clock, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // The outbox cannot be read (database down, silo starting or stopping): the events wait there.
                if (failures++ == 0) logger.LogWarning(ex, "Partner event delivery paused: the outbox cannot be read; retrying");
                await Task.Delay(Backoff(failures), clock, stoppingToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>One pass: read, deliver by partner, in parallel across partners. Returns the events read.</summary>
    private async Task<int> PassAsync(CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        var skip = _backoff.Where(b => b.Value.RetryAt > now).Select(b => b.Key).ToHashSet(StringComparer.Ordinal);
        var events = await store.ReadUndeliveredAsync(ReadMax, skip, cancellationToken).ConfigureAwait(false);
        await CountAsync(events, skip.Count > 0, cancellationToken).ConfigureAwait(false);
        if (events.Count == 0) return 0;
        var byPartner = events.GroupBy(e => e.PartnerId, StringComparer.Ordinal);
        await Task.WhenAll(byPartner.Select(group => DeliverAsync(group.Key, [.. group]))).ConfigureAwait(false);
        return events.Count;
    }

    private async Task DeliverAsync(string partnerId, PartnerEvent[] events)
    {
        try
        {
            var grain = grains.GetGrain<IPartnerSettlementGrain>(GrainKeys.PartnerPrefix + partnerId);
            for (var offset = 0; offset < events.Length; offset += EventsPerCall)
            {
                var chunk = events.AsSpan(offset, Math.Min(EventsPerCall, events.Length - offset)).ToArray();
                var applied = await grain.Apply(chunk).ConfigureAwait(false);
                Applied.Add(applied);
                var now = clock.GetUtcNow().UtcDateTime;
                foreach (var e in chunk) DeliveryDelay.Record(Math.Max(0, (now - e.RecordedAtUtc).TotalMilliseconds));
            }
            lock (_backoff)
            {
                if (_backoff.Remove(partnerId)) logger.LogInformation("Partner {Partner}: event delivery resumed", partnerId);
            }
        }
        catch (Exception ex)
        {
            lock (_backoff)
            {
                var failures = _backoff.TryGetValue(partnerId, out var b) ? b.Failures + 1 : 1;
                _backoff[partnerId] = (failures, clock.GetUtcNow().UtcDateTime + Backoff(failures));
                if (failures == 1) logger.LogWarning(ex, "Partner {Partner}: event delivery failed; its events stay in the outbox and are retried", partnerId);
            }
        }
    }

    /// <summary>Keeps the lag gauges current: from the pass itself when it read all that waits, from a count every few seconds otherwise.</summary>
    private async Task CountAsync(IReadOnlyList<PartnerEvent> read, bool skipped, CancellationToken cancellationToken)
    {
        if (!skipped && read.Count < ReadMax)
        {
            Interlocked.Exchange(ref s_undelivered, read.Count);
            Interlocked.Exchange(ref s_oldestTicks, read.Count == 0 ? 0 : read.Min(e => e.RecordedAtUtc).Ticks);
            return;
        }
        var now = clock.GetUtcNow().UtcDateTime;
        if (now - _countedAt < CountEvery) return;
        _countedAt = now;
        var (count, oldest) = await store.UndeliveredAsync(null, cancellationToken).ConfigureAwait(false);
        Interlocked.Exchange(ref s_undelivered, count);
        Interlocked.Exchange(ref s_oldestTicks, oldest?.Ticks ?? 0);
    }

    private static TimeSpan Backoff(int failures) =>
        TimeSpan.FromTicks(Math.Min(BackoffMin.Ticks << Math.Min(failures - 1, 16), BackoffMax.Ticks));
}
