using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.LoadTests;

/// <summary>
/// Every member buying at one merchant at once, where a partner campaign grants a fixed bonus to the first quarter
/// of them within a budget. The check adds up the campaign lines of the authorizations: more than the budget fails
/// the run. If the engine cannot take the campaign, the scenario still runs as plain purchases and says so.
/// </summary>
public sealed class CampaignRush(Engine engine) : EngineScenario(engine)
{
    private const long BonusMinor = 10_000;
    private long _grantedMinor;
    private bool _campaign;

    private string Merchant => $"lt-{Engine.RunId}-rush";
    private string CampaignId => $"lt-{Engine.RunId}-rush";
    private int FirstMembers => Math.Max(1, Engine.Members / 4);
    private long BudgetMinor => FirstMembers * BonusMinor;

    public long GrantedMinor => Interlocked.Read(ref _grantedMinor);

    public override async Task SetupAsync(Action<string> progress)
    {
        await base.SetupAsync(progress);
        try
        {
            await Engine.Admin.UpsertPartnerAsync(new Partner { PartnerId = $"lt-{Engine.RunId}-partner", Name = "Load test partner" }, deadline: DateTime.UtcNow.AddSeconds(30));
            await Engine.Admin.UpsertCampaignAsync(new Campaign
            {
                CampaignId = CampaignId, Name = "Campaign rush", PartnerId = $"lt-{Engine.RunId}-partner", FixedBonusMinor = BonusMinor, MerchantIds = { Merchant },
                MinAmountMinor = 10_000, MaxMembers = FirstMembers, BudgetMinor = BudgetMinor, PerMemberCapMinor = BonusMinor,
                StartsAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(-1)), EndsAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(1)),
            }, deadline: DateTime.UtcNow.AddSeconds(30));
            _campaign = true;
            Note($"campaign {CampaignId}: first {FirstMembers:N0} members get {BonusMinor} minor, budget {BudgetMinor:N0} minor");
            progress($"campaign {CampaignId} upserted; waiting 2.5 s for it to reach every silo");
            await Task.Delay(TimeSpan.FromSeconds(2.5));
        }
        catch (RpcException ex)
        {
            Note($"campaigns not available ({Arrival.StatusName(ex.StatusCode)}: {ex.Status.Detail}); ran as plain purchases at one merchant");
            progress($"campaign could not be created ({Arrival.StatusName(ex.StatusCode)}); running as plain purchases");
        }
    }

    public override Task<OpOutcome> ArrivalAsync(Arrival arrival)
    {
        var dice = new Dice(Options.Seed, arrival.Index);
        var member = dice.Below(0, Engine.Members);
        var shape = Engine.Purchases.Pick(dice, 1) with { Mcc = 5411, MerchantId = Merchant };
        if (shape.AuthorizeMinor < 10_000) shape = shape with { AuthorizeMinor = shape.AuthorizeMinor + 10_000, CaptureMinor = shape.CaptureMinor + 10_000 };
        shape = shape with { CaptureMinor = shape.AuthorizeMinor };
        return PurchaseAsync(arrival, member, dice, retryPercent: 2, shape, (_, reply) =>
        {
            if (!_campaign) return;
            var granted = 0L;
            foreach (var line in reply.Breakdown)
            {
                if (line.Rule == "campaign:" + CampaignId) granted += line.AmountMinor;
            }
            if (granted != 0 && Interlocked.Add(ref _grantedMinor, granted) > BudgetMinor) Engine.Expect.Problem($"campaign {CampaignId} granted {GrantedMinor} minor > budget {BudgetMinor}");
        });
    }
}
