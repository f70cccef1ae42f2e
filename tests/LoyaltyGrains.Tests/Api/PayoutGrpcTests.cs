using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.Tests.Api;

/// <summary>Offers.GetPayouts in the embedded default: the in-memory outbox, delivered to the partner grain.</summary>
public sealed class PayoutGrpcTests(EngineFixture engine) : IClassFixture<EngineFixture>
{
    private Processing.ProcessingClient Processing => new(engine.Channel);
    private Balances.BalancesClient Balances => new(engine.Channel);
    private Admin.AdminClient Admin => new(engine.Channel);
    private Offers.OffersClient Offers => new(engine.Channel);
    private static readonly Timestamp Now = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-1));

    [Fact]
    public async Task Payouts_count_captured_campaign_lines_clawbacks_and_redemptions_once()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var partner = "fuel-" + run;
        var merchant = "station-" + run;
        await Admin.UpsertPartnerAsync(new Partner { PartnerId = partner, Name = "Fuel" });
        await Admin.UpsertCampaignAsync(new Campaign
        {
            CampaignId = "fuel5-" + run, Name = "Fuel 5%", PartnerId = partner, RateBps = 500, MerchantIds = { merchant },
            StartsAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(-1)), EndsAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(30)),
            BudgetMinor = 1_000_000,
        });
        var member = "pay-" + run;
        var card = "card-pay-" + run;
        await Admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = member });
        await Admin.IssueCardAsync(new IssueCardRequest { CardId = card, MemberId = member });

        var auth = await Processing.AuthorizeAsync(new AuthorizeRequest
        {
            TransactionId = "a-" + run, CardId = card, AmountMinor = 100_000, Currency = "RUB", Mcc = 5541, MerchantId = merchant, OccurredAt = Now,
        });
        Assert.Contains(auth.Breakdown, line => line.PartnerId == partner && line.AmountMinor == 5_000);
        var pendingOnly = await SettledAsync(partner);
        Assert.Equal(0, pendingOnly.Totals.AccruedMinor); // an authorization is not owed yet

        await Processing.CaptureAsync(new CaptureRequest { TransactionId = "c-" + run, AuthorizationId = "a-" + run, CardId = card, AmountMinor = 100_000, OccurredAt = Now });
        await Processing.RefundAsync(new RefundRequest { TransactionId = "f-" + run, OriginalTransactionId = "a-" + run, CardId = card, AmountMinor = 40_000, OccurredAt = Now });
        await Balances.RedeemAsync(new RedeemRequest { TransactionId = "r-" + run, MemberId = member, PartnerId = partner, AmountMinor = 700 });
        await Processing.RefundAsync(new RefundRequest { TransactionId = "rr-" + run, OriginalTransactionId = "r-" + run, CardId = card, AmountMinor = 200 });
        // Retries are DUPLICATE: they add no ledger entry, so no event.
        await Processing.CaptureAsync(new CaptureRequest { TransactionId = "c-" + run, AuthorizationId = "a-" + run, CardId = card, AmountMinor = 100_000, OccurredAt = Now });

        var statement = await SettledAsync(partner);
        var day = Assert.Single(statement.Lines);
        Assert.Equal(DateTime.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture), day.Day);
        Assert.Equal((5_000L, 2_000L, 500L, 2_500L), (day.AccruedMinor, day.ClawedBackMinor, day.RedeemedMinor, day.NetMinor));
        Assert.Equal(day.NetMinor, statement.Totals.NetMinor);
        Assert.Equal(0, statement.UndeliveredEvents);
        Assert.True(statement.CompleteThrough.ToDateTime() <= DateTime.UtcNow);

        var ex = await Assert.ThrowsAsync<RpcException>(() => Offers.GetPayoutsAsync(new GetPayoutsRequest { PartnerId = partner, To = Timestamp.FromDateTime(DateTime.UtcNow) }).ResponseAsync);
        Assert.Equal((StatusCode.InvalidArgument, true), (ex.StatusCode, ex.Status.Detail.Contains("from", StringComparison.Ordinal)));
    }

    /// <summary>The partner's statement for today once every committed event has been applied.</summary>
    private async Task<PayoutStatement> SettledAsync(string partner)
    {
        var request = new GetPayoutsRequest
        {
            PartnerId = partner, From = Timestamp.FromDateTime(DateTime.UtcNow.Date), To = Timestamp.FromDateTime(DateTime.UtcNow.Date.AddDays(1)),
        };
        for (var attempt = 0; ; attempt++)
        {
            var statement = await Offers.GetPayoutsAsync(request);
            if (statement.UndeliveredEvents == 0 || attempt == 100) return statement;
            await Task.Delay(50);
        }
    }
}
