using System.Text;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Gateway.Auth;
using LoyaltyGrains.Gateway.V1;
using LoyaltyGrains.Tests.Api;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace LoyaltyGrains.Tests.Auth;

/// <summary>
/// Every loyalty.v1 RPC × every role × own/other member or partner, over a real loopback channel: the status each
/// caller gets, and for every refused call that nothing changed (the member, the card, the program, the new ids).
/// </summary>
public sealed class AuthMatrixTests(EngineFixture engine, ITestOutputHelper output) : IClassFixture<EngineFixture>
{
    private const string Ok = "ok";
    private const string Denied = "PERMISSION_DENIED";
    private const string Unauth = "UNAUTHENTICATED";

    private static readonly string[] Columns = ["processor", "app/own", "app/other", "partner/own", "partner/other", "admin", "none"];

    /// <summary>The matrix as specified: "ok" means the call got past access control (its own outcome is whatever the engine says).</summary>
    private static readonly (string Method, string[] Expected)[] Expected =
    [
        ("Processing/Authorize", [Ok, Denied, Denied, Denied, Denied, Denied, Unauth]),
        ("Processing/Capture", [Ok, Denied, Denied, Denied, Denied, Denied, Unauth]),
        ("Processing/Reverse", [Ok, Denied, Denied, Denied, Denied, Denied, Unauth]),
        ("Processing/Refund", [Ok, Denied, Denied, Denied, Denied, Denied, Unauth]),
        ("Processing/Post", [Ok, Denied, Denied, Denied, Denied, Denied, Unauth]),
        ("Balances/GetBalance", [Denied, Ok, Denied, Denied, Denied, Ok, Unauth]),
        ("Balances/WatchBalance", [Denied, Ok, Denied, Denied, Denied, Ok, Unauth]),
        ("Balances/GetStatement", [Denied, Ok, Denied, Denied, Denied, Ok, Unauth]),
        ("Balances/ChooseCategories", [Denied, Ok, Denied, Denied, Denied, Ok, Unauth]),
        ("Balances/Redeem", [Denied, Ok, Denied, Ok, Denied, Ok, Unauth]),
        ("Offers/CheckEligibility by member_id", [Denied, Ok, Denied, Denied, Denied, Ok, Unauth]),
        ("Offers/CheckEligibility by card_id", [Denied, Ok, Denied, Ok, Ok, Ok, Unauth]),
        ("Offers/ListOffers", [Denied, Ok, Denied, Denied, Denied, Ok, Unauth]),
        ("Offers/ActivateOffer", [Denied, Ok, Denied, Denied, Denied, Ok, Unauth]),
        ("Offers/GetPayouts", [Denied, Denied, Denied, Ok, Denied, Ok, Unauth]),
        ("Admin/EnrollMember", [Denied, Denied, Denied, Denied, Denied, Ok, Unauth]),
        ("Admin/IssueCard", [Denied, Denied, Denied, Denied, Denied, Ok, Unauth]),
        ("Admin/BlockCard", [Denied, Denied, Denied, Denied, Denied, Ok, Unauth]),
        ("Admin/GetProgram", [Denied, Denied, Denied, Denied, Denied, Ok, Unauth]),
        ("Admin/SetProgram", [Denied, Denied, Denied, Denied, Denied, Ok, Unauth]),
        ("Admin/UpsertCampaign", [Denied, Denied, Denied, Denied, Denied, Ok, Unauth]),
        ("Admin/UpsertPartner", [Denied, Denied, Denied, Denied, Denied, Ok, Unauth]),
    ];

    /// <summary>Whose ids a call names: the member and its card, a partner, and a suffix for ids the call creates.</summary>
    private sealed record Target(string Member, string Card, string Partner, string Suffix);

    private static readonly Timestamp At = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-1));

    private IGrainFactory Grains => engine.Services.GetRequiredService<IGrainFactory>();

    [Fact]
    public async Task Every_rpc_by_every_role_for_own_and_other_gets_its_status_and_a_refusal_changes_nothing()
    {
        var admin = new Admin.AdminClient(engine.Channel);
        var run = Guid.NewGuid().ToString("N")[..6];
        var (ownPartner, otherPartner) = ("po-" + run, "px-" + run);
        await admin.UpsertPartnerAsync(new Partner { PartnerId = ownPartner, Name = "Own partner" });
        await admin.UpsertPartnerAsync(new Partner { PartnerId = otherPartner, Name = "Other partner" });
        var program = await admin.GetProgramAsync(new GetProgramRequest());

        var calls = Calls(program);
        Assert.Equal(Expected.Select(e => e.Method), calls.Select(c => c.Method));
        // Every method of every service is in the matrix (a new RPC must be added here and to RpcAccess).
        var served = new[] { Processing.Descriptor, Balances.Descriptor, Offers.Descriptor, Admin.Descriptor }
            .SelectMany(s => s.Methods.Select(m => $"{s.Name}/{m.Name}")).ToHashSet();
        Assert.Equal(served.Order(), Expected.Select(e => e.Method.Split(' ')[0]).Distinct().Order());

        var actual = new List<string[]>();
        var mismatches = new List<string>();
        var cell = 0;
        foreach (var (method, call, probe) in calls)
        {
            var expected = Expected.Single(e => e.Method == method).Expected;
            var row = new string[Columns.Length];
            for (var c = 0; c < Columns.Length; c++)
            {
                var suffix = $"{run}-{cell++}";
                var (own, other) = ($"mo-{suffix}", $"mx-{suffix}");
                foreach (var member in new[] { own, other })
                {
                    await admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = member });
                    await admin.IssueCardAsync(new IssueCardRequest { CardId = "card-" + member, MemberId = member });
                }
                var (token, target) = Columns[c] switch
                {
                    "processor" => (engine.Token("proc-1", [LoyaltyClaims.Processor]), new Target(own, "card-" + own, ownPartner, suffix)),
                    "app/own" => (engine.Token(own, [LoyaltyClaims.App]), new Target(own, "card-" + own, ownPartner, suffix)),
                    "app/other" => (engine.Token(own, [LoyaltyClaims.App]), new Target(other, "card-" + other, ownPartner, suffix)),
                    "partner/own" => (engine.Token("till-1", [LoyaltyClaims.Partner], ownPartner), new Target(other, "card-" + other, ownPartner, suffix)),
                    "partner/other" => (engine.Token("till-1", [LoyaltyClaims.Partner], ownPartner), new Target(other, "card-" + other, otherPartner, suffix)),
                    "admin" => (engine.Token("ops-1", [LoyaltyClaims.Admin]), new Target(own, "card-" + own, ownPartner, suffix)),
                    _ => ((string?)null, new Target(own, "card-" + own, ownPartner, suffix)),
                };
                var before = await StateAsync(target, probe);
                var status = await OutcomeAsync(() => call(engine.ChannelFor(token), target));
                // A stream the server refuses at once can race its own request body on HTTP/2: the client then reports
                // CANCELLED (it cancelled nothing) instead of the server's status. No cell expects CANCELLED; ask again.
                for (var again = 0; status == StatusCode.Cancelled && again < 3; again++) status = await OutcomeAsync(() => call(engine.ChannelFor(token), target));
                var got = status is StatusCode.PermissionDenied or StatusCode.Unauthenticated ? Outcome(status) : Ok;
                row[c] = got == Ok ? Outcome(status) : got;
                if (got != expected[c]) mismatches.Add($"{method} as {Columns[c]}: expected {expected[c]}, got {Outcome(status)}");
                if (got != Ok)
                {
                    var after = await StateAsync(target, probe);
                    if (after != before) mismatches.Add($"{method} as {Columns[c]} was refused but changed state: {before} -> {after}");
                }
            }
            actual.Add(row);
        }
        output.WriteLine(Table(calls.Select(c => c.Method).ToArray(), actual));
        Assert.Empty(mismatches);
    }

    private static string Outcome(StatusCode code) => AuditRecord.StatusName(code);

    private static async Task<StatusCode> OutcomeAsync(Func<Task> call)
    {
        try
        {
            await call();
            return StatusCode.OK;
        }
        catch (RpcException ex)
        {
            return ex.StatusCode;
        }
    }

    /// <summary>The target member's balance, sequence, categories and offers, the cards, and what the row's call would create or change.</summary>
    private async Task<string> StateAsync(Target t, Func<Target, Task<string>> probe)
    {
        var balance = await Grains.MemberGrain(t.Member).GetBalance();
        var offers = await Grains.MemberGrain(t.Member).ListOffers();
        var card = await Grains.CardGrain(t.Card).GetCard();
        return $"{balance.AvailableMinor}/{balance.PendingMinor}/{balance.Sequence}/[{string.Join(',', balance.ChosenCategories)}]/" +
            $"[{string.Join(',', offers.ActivatedCampaignIds)}]/blocked={card.Blocked}/{await probe(t)}";
    }

    private async Task<string> Absent(Func<Task<string>> read)
    {
        try
        {
            return await read();
        }
        catch (LoyaltyRejectedException)
        {
            return "absent";
        }
    }

    private List<(string Method, Func<GrpcChannel, Target, Task> Call, Func<Target, Task<string>> Probe)> Calls(LoyaltyGrains.Gateway.V1.Program program)
    {
        var month = MonthKey.Of(DateTimeOffset.UtcNow, program.UtcOffsetMinutes).ToString();
        Task<string> Nothing(Target _) => Task.FromResult("");
        async Task<string> ProgramVersion(Target _) => (await Grains.GetGrain<IProgramGrain>(IProgramGrain.Key).GetVersions()).Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return
        [
            ("Processing/Authorize", (ch, t) => new Processing.ProcessingClient(ch).AuthorizeAsync(Authorize(t)).ResponseAsync, Nothing),
            ("Processing/Capture", (ch, t) => new Processing.ProcessingClient(ch).CaptureAsync(new CaptureRequest
            {
                TransactionId = "fp-" + t.Suffix, CardId = t.Card, AmountMinor = 1_000_000_000_000, Mcc = 5411, MerchantId = "shop-1", OccurredAt = At,
            }).ResponseAsync, Nothing),
            ("Processing/Reverse", (ch, t) => new Processing.ProcessingClient(ch).ReverseAsync(new ReverseRequest
            {
                TransactionId = "rv-" + t.Suffix, AuthorizationId = "au-" + t.Suffix, CardId = t.Card,
            }).ResponseAsync, Nothing),
            ("Processing/Refund", (ch, t) => new Processing.ProcessingClient(ch).RefundAsync(new RefundRequest
            {
                TransactionId = "rf-" + t.Suffix, OriginalTransactionId = "au-" + t.Suffix, CardId = t.Card, AmountMinor = 100,
            }).ResponseAsync, Nothing),
            ("Processing/Post", async (ch, t) =>
            {
                using var post = new Processing.ProcessingClient(ch).Post();
                await post.RequestStream.WriteAsync(new PostingRequest { Authorize = Authorize(t) });
                await post.RequestStream.CompleteAsync();
                await foreach (var reply in post.ResponseStream.ReadAllAsync()) Assert.Null(reply.Error);
            }, Nothing),
            ("Balances/GetBalance", (ch, t) => new Balances.BalancesClient(ch).GetBalanceAsync(new GetBalanceRequest { MemberId = t.Member }).ResponseAsync, Nothing),
            ("Balances/WatchBalance", async (ch, t) =>
            {
                using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                using var watch = new Balances.BalancesClient(ch).WatchBalance(new GetBalanceRequest { MemberId = t.Member }, cancellationToken: cancel.Token);
                Assert.True(await watch.ResponseStream.MoveNext(cancel.Token));
            }, Nothing),
            ("Balances/GetStatement", (ch, t) => new Balances.BalancesClient(ch).GetStatementAsync(new GetStatementRequest { MemberId = t.Member }).ResponseAsync, Nothing),
            ("Balances/ChooseCategories", (ch, t) => new Balances.BalancesClient(ch).ChooseCategoriesAsync(new ChooseCategoriesRequest
            {
                MemberId = t.Member, Month = month, Categories = { program.OfferedCategories.Take(program.Tiers[0].CategoriesToChoose) },
            }).ResponseAsync, Nothing),
            ("Balances/Redeem", (ch, t) => new Balances.BalancesClient(ch).RedeemAsync(new RedeemRequest
            {
                TransactionId = "rd-" + t.Suffix, MemberId = t.Member, PartnerId = t.Partner, AmountMinor = 100,
            }).ResponseAsync, Nothing),
            ("Offers/CheckEligibility by member_id", (ch, t) => new Offers.OffersClient(ch).CheckEligibilityAsync(new CheckEligibilityRequest
            {
                MemberId = t.Member, MerchantId = "shop-1", Mcc = 5411, AmountMinor = 100_000,
            }).ResponseAsync, Nothing),
            ("Offers/CheckEligibility by card_id", (ch, t) => new Offers.OffersClient(ch).CheckEligibilityAsync(new CheckEligibilityRequest
            {
                CardId = t.Card, MerchantId = "shop-1", Mcc = 5411, AmountMinor = 100_000,
            }).ResponseAsync, Nothing),
            ("Offers/ListOffers", (ch, t) => new Offers.OffersClient(ch).ListOffersAsync(new ListOffersRequest { MemberId = t.Member }).ResponseAsync, Nothing),
            ("Offers/ActivateOffer", (ch, t) => new Offers.OffersClient(ch).ActivateOfferAsync(new ActivateOfferRequest
            {
                MemberId = t.Member, CampaignId = "no-campaign-" + t.Suffix,
            }).ResponseAsync, Nothing),
            ("Offers/GetPayouts", (ch, t) => new Offers.OffersClient(ch).GetPayoutsAsync(new GetPayoutsRequest { PartnerId = t.Partner }).ResponseAsync, Nothing),
            ("Admin/EnrollMember", (ch, t) => new Admin.AdminClient(ch).EnrollMemberAsync(new EnrollMemberRequest { MemberId = "new-" + t.Suffix }).ResponseAsync,
                async t => (await Grains.MemberGrain("new-" + t.Suffix).IsEnrolled()).ToString()),
            ("Admin/IssueCard", (ch, t) => new Admin.AdminClient(ch).IssueCardAsync(new IssueCardRequest { CardId = "newcard-" + t.Suffix, MemberId = t.Member }).ResponseAsync,
                t => Absent(async () => (await Grains.CardGrain("newcard-" + t.Suffix).GetCard()).MemberId)),
            ("Admin/BlockCard", (ch, t) => new Admin.AdminClient(ch).BlockCardAsync(new BlockCardRequest { CardId = t.Card }).ResponseAsync, Nothing),
            ("Admin/GetProgram", (ch, _) => new Admin.AdminClient(ch).GetProgramAsync(new GetProgramRequest()).ResponseAsync, Nothing),
            ("Admin/SetProgram", (ch, _) =>
            {
                // The attack: 100% cashback for everyone.
                var greedy = program.Clone();
                foreach (var tier in greedy.Tiers) tier.BaseRateBps = 10_000;
                return new Admin.AdminClient(ch).SetProgramAsync(greedy).ResponseAsync;
            }, ProgramVersion),
            ("Admin/UpsertCampaign", (ch, t) => new Admin.AdminClient(ch).UpsertCampaignAsync(new Campaign
            {
                CampaignId = "camp-" + t.Suffix, Name = "Everything free", RateBps = 10_000, Mccs = { 5411 }, BudgetMinor = 1_000_000,
                StartsAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(-1)), EndsAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(1)),
            }).ResponseAsync, t => Absent(async () => (await Grains.CampaignGrain("camp-" + t.Suffix).GetStatus()).CampaignJson)),
            ("Admin/UpsertPartner", (ch, t) => new Admin.AdminClient(ch).UpsertPartnerAsync(new Partner { PartnerId = "newp-" + t.Suffix, Name = "Shell" }).ResponseAsync,
                async t => (await Grains.PartnerGrain("newp-" + t.Suffix).GetPartner())?.Name ?? "absent"),
        ];
    }

    private static AuthorizeRequest Authorize(Target t) => new()
    {
        TransactionId = "au-" + t.Suffix, CardId = t.Card, AmountMinor = 100_000, Currency = "RUB", Mcc = 5411, MerchantId = "shop-1", OccurredAt = At,
    };

    private static string Table(string[] methods, List<string[]> rows)
    {
        var text = new StringBuilder();
        text.AppendLine($"| RPC | {string.Join(" | ", Columns)} |");
        text.AppendLine($"|---|{string.Concat(Enumerable.Repeat("---|", Columns.Length))}");
        for (var i = 0; i < methods.Length; i++) text.AppendLine($"| {methods[i]} | {string.Join(" | ", rows[i])} |");
        return text.ToString();
    }
}
