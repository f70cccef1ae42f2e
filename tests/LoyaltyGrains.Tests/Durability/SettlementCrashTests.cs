using System.Diagnostics;
using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LoyaltyGrains.Gateway.V1;
using Npgsql;
using Xunit.Abstractions;

namespace LoyaltyGrains.Tests.Durability;

/// <summary>
/// Partner settlement through a crash, as an operator would see it: the real silo on PostgreSQL, campaign-funded
/// purchases, refunds, redemptions at partners and their refunds under load, kill -9 while events are being delivered,
/// restart: every partner's payouts equal its lines in the ledger (loyalty.check_payouts() empty), no event counted
/// twice, and the delivery lag back to 0.
/// </summary>
[Collection(ProcessesCollection.Name)]
public sealed class SettlementCrashTests(ITestOutputHelper output)
{
    private const int Workers = 32;
    private static readonly TimeSpan LoadBeforeKill = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ServeTimeout = TimeSpan.FromSeconds(45);
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(60);
    private static readonly string[] Partners = ["fuel", "coffee"];

    /// <summary>The pump's pause when idle, for the second run: long, so the kill finds events waiting and no delivery under way.</summary>
    private const string SlowPollVariable = "Loyalty__Settlement__PollInterval";

    private sealed record LoadRun(long Acked, double MaxLagSeconds, long MaxUndelivered, long WaitingBeforeKill, long WaitingAfterKill, long AppliedAtKill, long SawKill);

    [Fact]
    public async Task Kill_9_mid_delivery_leaves_every_payout_equal_to_the_ledger()
    {
        await using var database = await TestDatabase.CreateAsync("settle");
        var ports = SiloProcess.FreePorts();
        var members = Enumerable.Range(0, Workers).Select(i => ($"settle-m{i}", $"settle-c{i}")).ToArray();

        // Run 1, default delivery: set up, load, measure the lag, kill -9 while events are on their way.
        var (silo, _) = await SiloProcess.StartAsync(database.ConnectionString, ports, ServeTimeout);
        LoadRun first;
        try
        {
            await SetUpAsync(silo, members);
            first = await LoadAndKillAsync(silo, database.ConnectionString, ports.Metrics, members, "a", LoadBeforeKill);
        }
        finally
        {
            await silo.DisposeAsync();
        }
        Record($"run 1 ({Workers} processors, {first.Acked / LoadBeforeKill.TotalSeconds:0} acknowledged messages/s, default delivery): " +
            $"delivery lag at most {first.MaxLagSeconds:0.00} s, at most {first.MaxUndelivered} events undelivered; killed -9 with {first.AppliedAtKill} " +
            $"events applied, {first.WaitingBeforeKill} waiting just before the kill and {first.WaitingAfterKill} after it " +
            $"(an apply already sent commits on the server); {first.SawKill} processors saw the kill");
        Assert.True(first.Acked > Workers * 4, $"too little load before the kill: {first.Acked} acknowledged");

        // Run 2, delivery every 2 s: the kill lands while events wait, so the restart must deliver them.
        Environment.SetEnvironmentVariable(SlowPollVariable, "00:00:02");
        try
        {
            (silo, _) = await SiloProcess.StartAsync(database.ConnectionString, ports, ServeTimeout);
        }
        finally
        {
            Environment.SetEnvironmentVariable(SlowPollVariable, null);
        }
        LoadRun second;
        try
        {
            second = await LoadAndKillAsync(silo, database.ConnectionString, ports.Metrics, members, "b", TimeSpan.FromSeconds(3));
        }
        finally
        {
            await silo.DisposeAsync();
        }
        Record($"run 2 (delivery every 2 s): killed -9 with {second.AppliedAtKill} events applied and {second.WaitingAfterKill} waiting; " +
            $"{second.SawKill} processors saw the kill");

        // Run 3, default delivery: the restarted silo resumes where delivery stopped.
        var (restarted, _) = await SiloProcess.StartAsync(database.ConnectionString, ports, ServeTimeout);
        await using (restarted)
        {
            var drain = Stopwatch.StartNew();
            while (await ScalarAsync(database.ConnectionString, "SELECT count(*) FROM loyalty.partner_outbox") > 0)
            {
                Assert.True(drain.Elapsed < DrainTimeout, $"the outbox did not drain within {DrainTimeout}:\n{restarted.Log}");
                await Task.Delay(100);
            }
            var drained = drain.Elapsed;
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
            var (lag, undelivered) = await LagAsync(http, ports.Metrics);
            for (var i = 0; i < 50 && (lag != 0 || undelivered != 0); i++)
            {
                await Task.Delay(100);
                (lag, undelivered) = await LagAsync(http, ports.Metrics);
            }

            // What the restarted silo drained arrived on the partner-event stream: its partner grains counted it.
            var appliedFromStream = await AppliedFromStreamAsync(http, ports.Metrics);
            var violations = await PayoutChecks.ViolationsAsync(database.ConnectionString);
            var ledgerEvents = await ScalarAsync(database.ConnectionString, "SELECT coalesce(sum(events), 0)::bigint FROM loyalty.partner_ledger_lines('-infinity', 'infinity')");
            var appliedEvents = await ScalarAsync(database.ConnectionString, "SELECT coalesce(sum(events), 0)::bigint FROM loyalty.partner_payouts");
            var ledgerViolations = await LedgerChecks.ViolationsAsync(database.ConnectionString);

            // GetPayouts answers what the ledger says, partner by partner.
            var offers = new Offers.OffersClient(restarted.Channel);
            var mismatches = 0;
            var summary = new List<string>();
            foreach (var partner in Partners)
            {
                var statement = await offers.GetPayoutsAsync(new GetPayoutsRequest
                {
                    PartnerId = partner, From = Timestamp.FromDateTime(DateTime.UtcNow.Date.AddDays(-1)), To = Timestamp.FromDateTime(DateTime.UtcNow.Date.AddDays(1)),
                });
                var (accrued, clawed, redeemed) = await LedgerSumsAsync(database.ConnectionString, partner);
                var totals = statement.Totals;
                if (totals.AccruedMinor != accrued || totals.ClawedBackMinor != clawed || totals.RedeemedMinor != redeemed
                    || totals.NetMinor != accrued - clawed - redeemed || statement.UndeliveredEvents != 0)
                {
                    mismatches++;
                }
                summary.Add($"{partner} accrued {totals.AccruedMinor}, clawed back {totals.ClawedBackMinor}, redeemed {totals.RedeemedMinor}, net {totals.NetMinor}");
            }
            Record($"after restart: outbox drained {drained.TotalSeconds:0.0} s after serving, exported lag {lag} s with {undelivered} undelivered, " +
                $"{appliedFromStream} events applied from the partner-event stream by the restarted silo; " +
                $"ledger partner events {ledgerEvents}, applied {appliedEvents} (doubled {appliedEvents - ledgerEvents}); " +
                $"loyalty.check_payouts() rows {violations.Count}, GetPayouts mismatches {mismatches}, loyalty.check_ledger() violations {ledgerViolations.Count}; " +
                string.Join("; ", summary));
            foreach (var (partner, problem) in violations) output.WriteLine($"check_payouts: {partner} {problem}");
            Assert.Empty(violations);
            Assert.Empty(ledgerViolations);
            Assert.Equal(ledgerEvents, appliedEvents);
            Assert.Equal(0, mismatches);
            Assert.Equal((0.0, 0L), (lag, undelivered));
            Assert.True(ledgerEvents > Workers * 4, $"too few partner events: {ledgerEvents}");
            if (second.WaitingAfterKill > 0) Assert.True(appliedFromStream > 0, "the restarted silo applied nothing from the stream, yet events waited");
        }
    }

    private static async Task SetUpAsync(SiloProcess silo, (string Member, string Card)[] members)
    {
        var admin = new Admin.AdminClient(silo.Channel);
        await admin.UpsertPartnerAsync(new Partner { PartnerId = "fuel", Name = "Fuel" });
        await admin.UpsertPartnerAsync(new Partner { PartnerId = "coffee", Name = "Coffee" });
        var (starts, ends) = (Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(-1)), Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(30)));
        await admin.UpsertCampaignAsync(new Campaign
        {
            CampaignId = "fuel5", Name = "Fuel 5%", PartnerId = "fuel", RateBps = 500, MerchantIds = { "station" },
            StartsAt = starts, EndsAt = ends, BudgetMinor = 10_000_000_000,
        });
        await admin.UpsertCampaignAsync(new Campaign
        {
            CampaignId = "coffee-fixed", Name = "Coffee bonus", PartnerId = "coffee", FixedBonusMinor = 1_000, RateBps = 100, MerchantIds = { "cafe" },
            StartsAt = starts, EndsAt = ends, BudgetMinor = 10_000_000_000,
        });
        foreach (var (member, card) in members)
        {
            await admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = member });
            await admin.IssueCardAsync(new IssueCardRequest { CardId = card, MemberId = member });
        }
    }

    /// <summary>
    /// Each processor: purchase (authorize + capture) at the fuel station or the cafe, every third a refund of a third, every
    /// fourth a redemption at a partner, every eighth a refund of part of it. Then kill -9 while the outbox has events.
    /// </summary>
    private static async Task<LoadRun> LoadAndKillAsync(SiloProcess silo, string connectionString, int metricsPort, (string Member, string Card)[] members,
        string run, TimeSpan duration)
    {
        long acked = 0, sawKill = 0, maxUndelivered = 0;
        double maxLag = 0;
        var at = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-1));
        using var stop = new CancellationTokenSource();
        var processing = new Processing.ProcessingClient(silo.Channel);
        var balances = new Balances.BalancesClient(silo.Channel);
        var load = Enumerable.Range(0, members.Length).Select(w => Task.Run(async () =>
        {
            var (member, card) = members[w];
            try
            {
                for (var n = 0; !stop.IsCancellationRequested; n++)
                {
                    var id = $"{run}{w}-{n}";
                    var merchant = n % 2 == 0 ? "station" : "cafe";
                    var amount = 10_000 + n;
                    await processing.AuthorizeAsync(new AuthorizeRequest
                    {
                        TransactionId = id, CardId = card, AmountMinor = amount, Currency = "RUB", Mcc = 5541, MerchantId = merchant, OccurredAt = at,
                    });
                    await processing.CaptureAsync(new CaptureRequest { TransactionId = id + "-c", AuthorizationId = id, CardId = card, AmountMinor = amount, OccurredAt = at });
                    Interlocked.Add(ref acked, 2);
                    if (n % 3 == 2)
                    {
                        await processing.RefundAsync(new RefundRequest { TransactionId = id + "-f", OriginalTransactionId = id, CardId = card, AmountMinor = amount / 3, OccurredAt = at });
                        Interlocked.Increment(ref acked);
                    }
                    if (n % 4 == 3)
                    {
                        await balances.RedeemAsync(new RedeemRequest { TransactionId = id + "-r", MemberId = member, PartnerId = Partners[n / 4 % 2], AmountMinor = 150 });
                        Interlocked.Increment(ref acked);
                        if (n % 8 == 7)
                        {
                            await processing.RefundAsync(new RefundRequest { TransactionId = id + "-rr", OriginalTransactionId = id + "-r", CardId = card, AmountMinor = 50 });
                            Interlocked.Increment(ref acked);
                        }
                    }
                }
            }
            catch (RpcException)
            {
                Interlocked.Increment(ref sawKill); // the outcome is unknown to the processor, which would retry
            }
        })).ToArray();

        // Delivery lag under load, as the silo exports it.
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < duration)
        {
            await Task.Delay(250);
            var (lag, undelivered) = await LagAsync(http, metricsPort);
            maxLag = Math.Max(maxLag, lag);
            maxUndelivered = Math.Max(maxUndelivered, undelivered);
        }
        var waitingBeforeKill = 0L;
        for (var tries = 0; tries < 100; tries++)
        {
            waitingBeforeKill = await ScalarAsync(connectionString, "SELECT count(*) FROM loyalty.partner_outbox");
            if (waitingBeforeKill > 0) break;
            await Task.Delay(20);
        }
        var ackedAtKill = Interlocked.Read(ref acked);
        silo.KillHard();
        await stop.CancelAsync();
        await Task.WhenAll(load);
        var waiting = await ScalarAsync(connectionString, "SELECT count(*) FROM loyalty.partner_outbox");
        var applied = await ScalarAsync(connectionString, "SELECT coalesce(sum(events), 0)::bigint FROM loyalty.partner_payouts");
        return new LoadRun(ackedAtKill, maxLag, maxUndelivered, waitingBeforeKill, waiting, applied, sawKill);
    }

    private static async Task<(long Accrued, long ClawedBack, long Redeemed)> LedgerSumsAsync(string connectionString, string partner)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("""
            SELECT coalesce(sum(accrued_minor), 0)::bigint, coalesce(sum(clawed_back_minor), 0)::bigint, coalesce(sum(redeemed_minor), 0)::bigint
              FROM loyalty.partner_ledger_lines('-infinity', 'infinity') WHERE partner_id = $1
            """, connection);
        command.Parameters.Add(new NpgsqlParameter { Value = partner });
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
    }

    private static async Task<long> ScalarAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    /// <summary>Partner events the silo's partner grains applied from their stream (its Prometheus counter; -1 when unreadable).</summary>
    private static async Task<long> AppliedFromStreamAsync(HttpClient http, int metricsPort)
    {
        var text = await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics");
        var line = text.Split('\n').FirstOrDefault(l => l.StartsWith("loyalty_payouts_events_applied", StringComparison.Ordinal));
        if (line is null) return -1;
        var labelsEnd = line.LastIndexOf('}');
        var value = (labelsEnd >= 0 ? line[(labelsEnd + 1)..] : line[(line.IndexOf(' ', StringComparison.Ordinal) + 1)..]).Trim().Split(' ')[0];
        return (long)double.Parse(value, CultureInfo.InvariantCulture);
    }

    /// <summary>The silo's exported delivery lag (seconds) and undelivered events, from its Prometheus endpoint.</summary>
    private static async Task<(double Lag, long Undelivered)> LagAsync(HttpClient http, int metricsPort)
    {
        string text;
        try
        {
            text = await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics");
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return (-1, -1);
        }
        double lag = -1;
        long undelivered = -1;
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith("loyalty_payouts_lag", StringComparison.Ordinal)) lag = Value(line);
            else if (line.StartsWith("loyalty_payouts_undelivered", StringComparison.Ordinal)) undelivered = (long)Value(line);
        }
        return (lag, undelivered);

        static double Value(string line)
        {
            var labelsEnd = line.LastIndexOf('}');
            var rest = (labelsEnd >= 0 ? line[(labelsEnd + 1)..] : line[(line.IndexOf(' ', StringComparison.Ordinal) + 1)..]).Trim();
            return double.Parse(rest.Split(' ')[0], CultureInfo.InvariantCulture);
        }
    }

    /// <summary>Test output, and a line in $LOYALTY_TEST_SUMMARY when set (scripts/test.sh prints it, so CI's log has the counts).</summary>
    private void Record(string line)
    {
        output.WriteLine(line);
        if (Environment.GetEnvironmentVariable("LOYALTY_TEST_SUMMARY") is { Length: > 0 } summary) File.AppendAllText(summary, $"settlement test: {line}{Environment.NewLine}");
    }
}
