using System.Diagnostics.Metrics;
using LoyaltyGrains.Contracts;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LoyaltyGrains.Grains.Settlement;

/// <summary>
/// Partner settlement's metrics: the delivery lag and the waiting events (this silo's view of the whole outbox, sampled
/// every half second), the delay from an event's ledger stamp to its application, and the events applied here.
/// </summary>
public sealed class PayoutDeliveryMetrics(IPartnerSettlementStore store, TimeProvider clock, ILogger<PayoutDeliveryMetrics> logger) : BackgroundService
{
    private static readonly TimeSpan SampleEvery = TimeSpan.FromMilliseconds(500);

    private static readonly Meter Meter = new(LoyaltyMetrics.MeterName, "1.0");
    private static readonly Histogram<double> DeliveryDelay = LoyaltyMetrics.Seconds(Meter, "loyalty.payouts.delivery.delay",
        "Time from an event's ledger commit stamp to its application to the partner's totals");
    private static readonly Counter<long> Applied = Meter.CreateCounter<long>("loyalty.payouts.events.applied", "{event}",
        "Partner events applied to payouts by this silo (arrived on the partner-event stream)");

    // Read by the observable gauges: the silo's last view of the outbox.
    private static long s_undelivered;
    private static long s_oldestTicks;
    private static TimeProvider s_clock = TimeProvider.System;

    static PayoutDeliveryMetrics()
    {
        Meter.CreateObservableGauge("loyalty.payouts.lag", () =>
        {
            var oldest = Interlocked.Read(ref s_oldestTicks);
            return oldest == 0 ? 0 : Math.Max(0, (s_clock.GetUtcNow().UtcDateTime - new DateTime(oldest, DateTimeKind.Utc)).TotalSeconds);
        }, "s", "Age of the oldest partner event not yet applied to payouts (0: payouts are complete)");
        Meter.CreateObservableGauge("loyalty.payouts.undelivered", () => Interlocked.Read(ref s_undelivered), "{event}",
            "Partner events committed to the ledger and not yet applied to payouts");
    }

    /// <summary>Called by the partner grain after an apply committed.</summary>
    public static void RecordApplied(IReadOnlyList<PartnerEvent> delivered, int applied, DateTime nowUtc)
    {
        Applied.Add(applied);
        foreach (var e in delivered) DeliveryDelay.Record(Math.Max(0, (nowUtc - e.RecordedAtUtc).TotalSeconds));
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        s_clock = clock;
        var failing = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var (count, oldest) = await store.UndeliveredAsync(null, stoppingToken).ConfigureAwait(false);
                Interlocked.Exchange(ref s_undelivered, count);
                Interlocked.Exchange(ref s_oldestTicks, oldest?.Ticks ?? 0);
                failing = false;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // The last figures stay exported; the lag keeps growing from the oldest event seen.
                // A database outage is logged once elsewhere: the reason without its stack; any other fault with it.
                if (!failing)
                {
                    logger.LogWarning(Contracts.Faults.IsUnavailable(ex) ? null : ex, "Partner payouts: the outbox cannot be counted for the lag metric ({Reason}); retrying",
                        ex.GetBaseException().Message);
                }
                failing = true;
            }
            try
            {
                await Task.Delay(SampleEvery, clock, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
