using System.Diagnostics;
using System.Globalization;
using System.Text;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LoyaltyGrains.Gateway.V1;
using Xunit.Abstractions;

namespace LoyaltyGrains.Tests.Api;

/// <summary>
/// A property-based fuzz of every RPC of loyalty.v1 over real gRPC loopback: seeded random and boundary values for
/// every field, on top of valid-looking requests for existing members, cards, authorizations and campaigns so the deep
/// paths are reached. Properties: never INTERNAL or UNKNOWN; an error
/// message is short; a refused call (and any read) changes nothing but time-driven housekeeping; a purchase earns
/// between 0 and its amount and a balance stays within its documented maximum; the engine still serves afterwards. The seed is printed; LOYALTY_FUZZ_SEED replays a run, LOYALTY_FUZZ_REQUESTS changes its size.
/// </summary>
public sealed class RpcFuzzTests(EngineFixture engine, ITestOutputHelper output) : IClassFixture<EngineFixture>
{
    private const int RequestsDefault = 10_000;
    private const int DetailLengthMax = 512;
    private const string Partner = "fz-partner";
    private const string Month = "yyyy-MM";
    private static readonly TimeSpan CallDeadline = TimeSpan.FromSeconds(30);

    /// <summary>Every RPC of loyalty.v1; the run fails if one was never called.</summary>
    private static readonly string[] Rpcs =
    [
        "Processing.Authorize", "Processing.Capture", "Processing.Reverse", "Processing.Refund", "Processing.Post",
        "Balances.GetBalance", "Balances.GetStatement", "Balances.WatchBalance", "Balances.ChooseCategories", "Balances.Redeem",
        "Offers.CheckEligibility", "Offers.ListOffers", "Offers.ActivateOffer", "Offers.GetPayouts",
        "Admin.EnrollMember", "Admin.IssueCard", "Admin.BlockCard", "Admin.GetProgram", "Admin.SetProgram", "Admin.UpsertCampaign", "Admin.UpsertPartner",
    ];

    /// <summary>Ledger entries a read or a refused call may still cause: expiries that are due whoever touches the member.</summary>
    private static readonly HashSet<string> HousekeepingKinds = new(StringComparer.Ordinal) { "expire_pending", "expire_lots" };

    private static readonly StatusCode[] Allowed =
    [
        StatusCode.OK, StatusCode.InvalidArgument, StatusCode.NotFound, StatusCode.AlreadyExists, StatusCode.FailedPrecondition,
        // A request over the gateway's 1 MB message limit: refused by gRPC itself, precisely.
        StatusCode.ResourceExhausted,
    ];

    private Processing.ProcessingClient Processing => new(engine.Channel);
    private Balances.BalancesClient Balances => new(engine.Channel);
    private Admin.AdminClient Admin => new(engine.Channel);
    private Offers.OffersClient Offers => new(engine.Channel);

    [Fact]
    public async Task Every_rpc_keeps_its_properties_under_random_and_boundary_input()
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("LOYALTY_FUZZ_SEED"), CultureInfo.InvariantCulture, out var s) ? s : 20_261_120;
        var requests = int.TryParse(Environment.GetEnvironmentVariable("LOYALTY_FUZZ_REQUESTS"), CultureInfo.InvariantCulture, out var n) ? n : RequestsDefault;
        output.WriteLine($"fuzz seed {seed} (LOYALTY_FUZZ_SEED={seed} replays it), {requests} requests");
        var run = new Run(this, new Random(seed));
        var watch = Stopwatch.StartNew();
        await run.SetUpAsync();
        while (run.Sent < requests) await run.OneAsync();
        await run.EngineStillServesAsync();
        watch.Stop();

        var table = run.Counts.GroupBy(c => c.Key.Rpc).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => $"{g.Key} {string.Join(' ', g.OrderBy(c => c.Key.Status, StringComparer.Ordinal).Select(c => $"{c.Key.Status}={c.Value}"))}").ToArray();
        foreach (var line in table) output.WriteLine(line);
        var summary = $"seed {seed}, {run.Sent} requests in {watch.Elapsed.TotalSeconds:0.0} s, {run.Violations.Count} violations; {string.Join("; ", table)}";
        output.WriteLine(summary);
        if (Environment.GetEnvironmentVariable("LOYALTY_TEST_SUMMARY") is { Length: > 0 } file) File.AppendAllText(file, $"fuzz: {summary}{Environment.NewLine}");
        Assert.True(run.Violations.Count == 0, $"seed {seed}: {run.Violations.Count} violations, first: {string.Join(Environment.NewLine, run.Violations.Take(20))}");
        Assert.Empty(Rpcs.Except(run.Counts.Keys.Select(k => k.Rpc)));
    }

    private sealed record MemberSnap(long Available, long Pending, long Head);

    private readonly record struct Outcome(StatusCode Status, string Detail);

    /// <summary>One fuzz run: the pool of known entities, the generator, the properties.</summary>
    private sealed class Run(RpcFuzzTests test, Random random)
    {
        public Dictionary<(string Rpc, string Status), int> Counts { get; } = [];
        public List<string> Violations { get; } = [];
        public int Sent { get; private set; }

        private readonly List<string> _members = [];
        private readonly Dictionary<string, string> _cardOwner = new(StringComparer.Ordinal);
        /// <summary>Members who referred another (a referred member's first purchase credits its referrer too).</summary>
        private readonly Dictionary<string, string> _referrer = new(StringComparer.Ordinal) { ["fz-m2"] = "fz-m0" };
        /// <summary>
        /// Each member as last seen: the "before" of its next call. Only this run writes, so it holds until a call of
        /// the member is accepted (forgotten then, with its referrer's); time-driven expiries are allowed by the check.
        /// </summary>
        private readonly Dictionary<string, MemberSnap?> _seen = new(StringComparer.Ordinal);
        private readonly List<string> _cards = [];
        private readonly List<(string Id, string Card, long Amount)> _authorizations = [];
        private readonly List<(string Id, string Card, long Amount)> _captures = [];
        private readonly List<(string Id, string Member, long Amount)> _redemptions = [];
        private readonly List<string> _campaigns = [];
        private int _next;

        private string NewId(string prefix) => $"{prefix}{++_next}";

        private static DateTimeOffset Now => DateTimeOffset.UtcNow;

        private static Timestamp Ts(DateTimeOffset at) => Timestamp.FromDateTimeOffset(at);

        // ------------------------------------------------------------------ pool

        public async Task SetUpAsync()
        {
            await test.Admin.UpsertPartnerAsync(new Partner { PartnerId = Partner, Name = "Fuzz partner" });
            for (var i = 0; i < 10; i++)
            {
                var member = $"fz-m{i}";
                await test.Admin.EnrollMemberAsync(new EnrollMemberRequest
                {
                    MemberId = member, Premium = i == 1, ReferredBy = i == 2 ? "fz-m0" : "", Tier = i == 3 ? "silver" : "",
                });
                _members.Add(member);
                await IssueAsync($"fz-card-{i}", member);
            }
            await IssueAsync("fz-card-0b", "fz-m0");
            await IssueAsync("fz-card-block", "fz-m5");
            await test.Balances.ChooseCategoriesAsync(new ChooseCategoriesRequest
            {
                MemberId = "fz-m0", Month = ProgramMonth(0), Categories = { "supermarkets", "restaurants" },
            });
            var fixedBonus = ValidCampaign("fz-c1", rateBps: 0, fixedBonus: 10_000);
            fixedBonus.BudgetMinor = 1_000_000;
            fixedBonus.MaxMembers = 3;
            var club = ValidCampaign("fz-c2");
            club.PartnerId = Partner;
            club.RequiresActivation = true;
            club.MerchantIds.Add("fz-shop");
            var silver = ValidCampaign("fz-c3", rateBps: 10_000);
            silver.MinTier = "silver";
            silver.StackingOrder = 1;
            var groceries = ValidCampaign("fz-c0");
            groceries.Mccs.Add(5411);
            Campaign[] campaigns = [groceries, fixedBonus, club, silver];
            foreach (var campaign in campaigns)
            {
                await test.Admin.UpsertCampaignAsync(campaign);
                _campaigns.Add(campaign.CampaignId);
            }
        }

        private async Task IssueAsync(string card, string member)
        {
            await test.Admin.IssueCardAsync(new IssueCardRequest { CardId = card, MemberId = member });
            _cardOwner[card] = member;
            if (card != "fz-card-block") _cards.Add(card);
        }

        private static string ProgramMonth(int ahead) => Now.ToOffset(TimeSpan.FromHours(3)).AddMonths(ahead).ToString(Month, CultureInfo.InvariantCulture);

        // ------------------------------------------------------------------ values: valid-looking, random, boundary

        private bool Chance(double p) => random.NextDouble() < p;

        private T Pick<T>(IReadOnlyList<T> items) => items[random.Next(items.Count)];

        /// <summary>A field is replaced by a random or boundary value this often (lower for messages with many fields).</summary>
        private double _mutationRate = MutationRate;
        private const double MutationRate = 0.12;

        private bool Mutate() => Chance(_mutationRate);

        private string Huge(int length, char ch = 'x') => new(ch, length);

        private string WeirdString()
        {
            switch (random.Next(20))
            {
                case 0: return "";
                case 1: return " ";
                case 2: return new string('a', 64);
                case 3: return new string('a', 65);
                case 4: return Huge(random.Next(1_000, 120_000));
                case 5: return "кошка-ёж";
                case 6: return "😀💳";
                case 7: return "\0";
                case 8: return "line\nbreak\r\t";
                case 9: return "a:b/c";
                case 10: return "\uD800";
                case 11: return "RUB";
                case 12: return "fz-m0";
                case 13: return "fz-card-0";
                case 14: return "DROP TABLE ledger;--";
                case 15: return "%s%n{0}";
                case 16: return "\u202Eevil";
                case 17: return new string('9', 30);
                case 18:
                {
                    var builder = new StringBuilder();
                    for (var i = random.Next(1, 80); i > 0; i--) builder.Append((char)random.Next(0, 0x3000));
                    return builder.ToString();
                }
                default:
                {
                    var builder = new StringBuilder();
                    for (var i = random.Next(1, 70); i > 0; i--) builder.Append((char)random.Next(33, 127));
                    return builder.ToString();
                }
            }
        }

        private string Str(string valid) => Mutate() ? WeirdString() : valid;

        private static readonly long[] LongEdges =
        [
            0, -1, 1, 99, 100, 10_000, 1_000_000_000_000, 1_000_000_000_001, 10_000_000_000, 10_000_000_001, 100_000_000_000_000,
            100_000_000_000_001, 4_611_686_018_427_387_904, long.MinValue, long.MaxValue, long.MaxValue - 1, long.MinValue + 1,
            9_000_000_000_000_000_000,
        ];

        private long Long(long valid) => Mutate() ? (Chance(0.8) ? Pick(LongEdges) : random.NextInt64(long.MinValue, long.MaxValue)) : valid;

        private static readonly int[] IntEdges =
        [
            0, -1, 1, 2, 25, 31, 32, 99, 365, 366, 840, 841, -720, -721, 9_999, 10_000, 10_001, 16, 17, 64, 65, 1_000, 1_001,
            1_000_000, 1_000_001, 100_000_000, 100_000_001, int.MinValue, int.MaxValue,
        ];

        private int Int(int valid) => Mutate() ? (Chance(0.8) ? Pick(IntEdges) : random.Next(int.MinValue, int.MaxValue)) : valid;

        private Timestamp? Time(Timestamp? valid)
        {
            if (!Mutate()) return valid;
            var now = Now;
            return random.Next(18) switch
            {
                0 => null,
                1 => new Timestamp { Seconds = 253_402_300_800 },
                2 => new Timestamp { Seconds = 253_402_300_799, Nanos = 999_999_999 },
                3 => new Timestamp { Seconds = -62_135_596_800 },
                4 => new Timestamp { Seconds = -62_135_596_801 },
                5 => new Timestamp { Seconds = long.MinValue },
                6 => new Timestamp { Seconds = long.MaxValue },
                7 => new Timestamp { Seconds = 1 },
                8 => new Timestamp { Seconds = 0 },
                9 => new Timestamp { Seconds = now.ToUnixTimeSeconds(), Nanos = -1 },
                10 => new Timestamp { Seconds = now.ToUnixTimeSeconds(), Nanos = 1_000_000_000 },
                11 => new Timestamp { Seconds = now.ToUnixTimeSeconds(), Nanos = int.MaxValue },
                12 => Ts(now.AddHours(23)),
                13 => Ts(now.AddHours(25)),
                14 => Ts(now.AddDays(-399)),
                15 => Ts(now.AddDays(-401)),
                16 => Ts(new DateTimeOffset(9999, 12, 31, 0, 0, 0, TimeSpan.Zero)),
                _ => Ts(now.AddSeconds(random.NextInt64(-40L * 86_400 * 365, 40L * 86_400 * 365))),
            };
        }

        /// <summary>A list field: kept, emptied, given duplicates, or grown huge.</summary>
        private void List<T>(Google.Protobuf.Collections.RepeatedField<T> field, Func<T> weird)
        {
            if (!Mutate()) return;
            switch (random.Next(5))
            {
                case 0: field.Clear(); break;
                case 1: if (field.Count > 0) field.Add(field[0]); break;
                case 2: for (var i = random.Next(1, 5); i > 0; i--) field.Add(weird()); break;
                case 3:
                {
                    // Many short items (a huge list, not a huge message): the first item again, or one weird value repeated.
                    var item = field.Count > 0 && Chance(0.5) ? field[0] : weird();
                    if (item is string { Length: > 16 }) item = (T)(object)"dup";
                    for (var i = random.Next(1_000, 200_000); i > 0; i--) field.Add(item);
                    break;
                }
                default: field.Add(weird()); break;
            }
        }

        private string ValidCard() => Pick(_cards);
        private string ValidMember() => Pick(_members);
        private Timestamp RecentTime() => Chance(0.9) ? Ts(Now.AddMinutes(-random.Next(1, 120))) : Ts(Now.AddDays(-random.Next(1, 60)));

        private long PurchaseAmount() => Chance(0.05) ? 1_000_000_000_000 : random.NextInt64(1, 2_000_000);

        private int ValidMcc() => Pick(new[] { 5411, 5411, 5812, 5541, 5912, 6011, 4829, 1, 9999 });

        private string Merchant() => Chance(0.2) ? "fz-shop" : "shop-" + random.Next(5);

        private static Campaign ValidCampaign(string id, int rateBps = 500, long fixedBonus = 0) => new()
        {
            CampaignId = id, Name = "fuzz " + id, RateBps = rateBps, FixedBonusMinor = fixedBonus,
            StartsAt = Ts(Now.AddDays(-1)), EndsAt = Ts(Now.AddDays(30)),
        };

        // ------------------------------------------------------------------ one request

        public async Task OneAsync()
        {
            switch (random.Next(100))
            {
                case < 14: await AuthorizeAsync(); break;
                case < 22: await CaptureAsync(); break;
                case < 27: await ReverseAsync(); break;
                case < 32: await RefundAsync(); break;
                case < 37: await PostAsync(); break;
                case < 41: await GetBalanceAsync(); break;
                case < 45: await GetStatementAsync(); break;
                case < 47: await WatchBalanceAsync(); break;
                case < 51: await ChooseCategoriesAsync(); break;
                case < 55: await RedeemAsync(); break;
                case < 59: await CheckEligibilityAsync(); break;
                case < 61: await ListOffersAsync(); break;
                case < 64: await ActivateOfferAsync(); break;
                case < 65: await GetPayoutsAsync(); break;
                case < 68: await EnrollMemberAsync(); break;
                case < 71: await IssueCardAsync(); break;
                case < 72: await BlockCardAsync(); break;
                case < 73: await GetProgramAsync(); break;
                case < 85: await SetProgramAsync(); break;
                case < 97: await UpsertCampaignAsync(); break;
                default: await UpsertPartnerAsync(); break;
            }
        }

        private AuthorizeRequest AuthorizeRequest() => new()
        {
            TransactionId = Str(NewId("fz-a")), CardId = Str(ValidCard()), AmountMinor = Long(PurchaseAmount()), Currency = Str(Chance(0.95) ? "RUB" : "USD"),
            Mcc = Int(ValidMcc()), MerchantId = Str(Merchant()), OccurredAt = Time(RecentTime()),
        };

        private async Task AuthorizeAsync()
        {
            var request = Chance(0.05) && _authorizations.Count > 0 ? Retry() : AuthorizeRequest();
            var outcome = await CallAsync("Processing.Authorize", Members(request.CardId),
                async () => Accrued("Processing.Authorize", request.AmountMinor, await test.Processing.AuthorizeAsync(request, deadline: Deadline())), request: request);
            if (outcome.Status == StatusCode.OK) _authorizations.Add((request.TransactionId, request.CardId, request.AmountMinor));

            AuthorizeRequest Retry()
            {
                // The same id again: the same payload (DUPLICATE) or another one (ALREADY_EXISTS).
                var (id, card, amount) = Pick(_authorizations);
                return new AuthorizeRequest
                {
                    TransactionId = id, CardId = card, AmountMinor = Chance(0.5) ? amount : amount + 1, Currency = "RUB", Mcc = 5411, MerchantId = "shop-0",
                    OccurredAt = RecentTime(),
                };
            }
        }

        private CaptureRequest CaptureRequest()
        {
            var forcePost = _authorizations.Count == 0 || Chance(0.25);
            var (authorization, card, amount) = forcePost ? ("", ValidCard(), PurchaseAmount()) : Pick(_authorizations);
            return new CaptureRequest
            {
                TransactionId = Str(NewId("fz-c")), AuthorizationId = Str(authorization), CardId = Str(card),
                AmountMinor = Long(Chance(0.7) ? amount : amount * random.Next(1, 14) / 10 + 1), OccurredAt = Time(Chance(0.5) ? null : RecentTime()),
                Mcc = forcePost || Chance(0.1) ? Int(ValidMcc()) : Int(0), MerchantId = forcePost ? Str(Merchant()) : Str(""),
                Currency = Str(Chance(0.7) ? "" : "RUB"),
            };
        }

        private async Task CaptureAsync()
        {
            var request = CaptureRequest();
            var outcome = await CallAsync("Processing.Capture", Members(request.CardId),
                async () => Accrued("Processing.Capture", request.AmountMinor, await test.Processing.CaptureAsync(request, deadline: Deadline())), request: request);
            if (outcome.Status == StatusCode.OK)
            {
                _captures.Add((request.TransactionId, request.CardId, request.AmountMinor));
                if (request.AuthorizationId.Length > 0) _captures.Add((request.AuthorizationId, request.CardId, request.AmountMinor));
            }
        }

        private ReverseRequest ReverseRequest()
        {
            var (authorization, card, amount) = _authorizations.Count == 0 || Chance(0.1) ? (NewId("fz-early"), ValidCard(), 0L) : Pick(_authorizations);
            return new ReverseRequest
            {
                TransactionId = Str(NewId("fz-v")), AuthorizationId = Str(authorization), CardId = Str(card),
                AmountMinor = Long(Chance(0.5) ? 0 : random.NextInt64(1, Math.Max(2, amount + 2))), OccurredAt = Time(Chance(0.5) ? null : RecentTime()),
            };
        }

        private async Task ReverseAsync()
        {
            var request = ReverseRequest();
            await CallAsync("Processing.Reverse", Members(request.CardId), () => test.Processing.ReverseAsync(request, deadline: Deadline()).ResponseAsync, request: request);
        }

        private RefundRequest RefundRequest()
        {
            string original, card;
            long amount;
            if (_redemptions.Count > 0 && Chance(0.15))
            {
                var redemption = Pick(_redemptions);
                var owned = _cardOwner.FirstOrDefault(c => c.Value == redemption.Member).Key;
                (original, card, amount) = (redemption.Id, owned ?? ValidCard(), redemption.Amount);
            }
            else if (_captures.Count > 0) (original, card, amount) = Pick(_captures);
            else (original, card, amount) = ("fz-none", ValidCard(), 100);
            return new RefundRequest
            {
                TransactionId = Str(NewId("fz-r")), OriginalTransactionId = Str(original), CardId = Str(card),
                AmountMinor = Long(random.NextInt64(1, Math.Max(2, amount + 2))), OccurredAt = Time(Chance(0.5) ? null : RecentTime()),
            };
        }

        private async Task RefundAsync()
        {
            var request = RefundRequest();
            await CallAsync("Processing.Refund", Members(request.CardId), () => test.Processing.RefundAsync(request, deadline: Deadline()).ResponseAsync, request: request);
        }

        private async Task PostAsync()
        {
            var items = new List<PostingRequest>();
            for (var i = random.Next(1, 9); i > 0; i--)
            {
                items.Add(random.Next(9) switch
                {
                    < 3 => new PostingRequest { Authorize = AuthorizeRequest() },
                    < 5 => new PostingRequest { Capture = CaptureRequest() },
                    < 6 => new PostingRequest { Reverse = ReverseRequest() },
                    < 8 => new PostingRequest { Refund = RefundRequest() },
                    _ => new PostingRequest(),
                });
            }
            var cards = items.Select(i => i.KindCase switch
            {
                PostingRequest.KindOneofCase.Authorize => i.Authorize.CardId,
                PostingRequest.KindOneofCase.Capture => i.Capture.CardId,
                PostingRequest.KindOneofCase.Reverse => i.Reverse.CardId,
                PostingRequest.KindOneofCase.Refund => i.Refund.CardId,
                _ => "",
            }).ToArray();
            var members = cards.SelectMany(Members).Distinct().ToArray();
            var before = await SnapAllAsync(members);
            // One call, however many items: the run's size counts calls.
            Sent++;
            var replies = new List<PostingReply>();
            try
            {
                using var call = test.Processing.Post(deadline: Deadline());
                foreach (var item in items) await call.RequestStream.WriteAsync(item);
                await call.RequestStream.CompleteAsync();
                await foreach (var reply in call.ResponseStream.ReadAllAsync()) replies.Add(reply);
            }
            catch (RpcException ex)
            {
                Count("Processing.Post(stream)", ex.StatusCode.ToString());
                Violation($"Processing.Post: the stream itself failed with {ex.StatusCode}: {Head(ex.Status.Detail)}");
                return;
            }
            if (replies.Count != items.Count) Violation($"Processing.Post: {items.Count} items, {replies.Count} replies");
            foreach (var reply in replies)
            {
                var code = reply.Error?.Code ?? "OK";
                Count("Processing.Post", code);
                if (code is "INTERNAL" or "UNKNOWN" or "UNAVAILABLE" or "DEADLINE_EXCEEDED" or "ABORTED" or "UNIMPLEMENTED")
                {
                    Violation($"Processing.Post item {Head(reply.TransactionId)}: {code} {Head(reply.Error?.Message ?? "")}");
                }
                if (reply.Error is { } error && error.Message.Length > DetailLengthMax) Violation($"Processing.Post item: a message of {error.Message.Length} characters");
            }
            foreach (var (item, reply) in items.Zip(replies))
            {
                if (reply.Error is not null) continue;
                if (item.KindCase == PostingRequest.KindOneofCase.Authorize) _authorizations.Add((item.Authorize.TransactionId, item.Authorize.CardId, item.Authorize.AmountMinor));
                if (item.KindCase == PostingRequest.KindOneofCase.Capture) _captures.Add((item.Capture.TransactionId, item.Capture.CardId, item.Capture.AmountMinor));
            }
            if (replies.All(r => r.Error is not null)) await UnchangedAsync("Processing.Post", before);
            else Forget(members);
        }

        private async Task GetBalanceAsync()
        {
            var request = new GetBalanceRequest { MemberId = Str(ValidMember()) };
            await CallAsync("Balances.GetBalance", Members(request.MemberId), () => test.Balances.GetBalanceAsync(request, deadline: Deadline()).ResponseAsync, read: true, request: request);
        }

        private async Task GetStatementAsync()
        {
            var request = new GetStatementRequest
            {
                MemberId = Str(ValidMember()), PageSize = Int(random.Next(0, 50)), PageToken = Str(Chance(0.5) ? "" : "s" + random.Next(1, 100)),
            };
            await CallAsync("Balances.GetStatement", Members(request.MemberId), () => test.Balances.GetStatementAsync(request, deadline: Deadline()).ResponseAsync, read: true, request: request);
        }

        private async Task WatchBalanceAsync()
        {
            var request = new GetBalanceRequest { MemberId = Str(ValidMember()) };
            await CallAsync("Balances.WatchBalance", Members(request.MemberId), async () =>
            {
                using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                using var call = test.Balances.WatchBalance(request, cancellationToken: cancel.Token);
                if (!await call.ResponseStream.MoveNext(cancel.Token)) throw new InvalidOperationException("the watch ended without a balance");
                return call.ResponseStream.Current;
            }, read: true);
        }

        private async Task ChooseCategoriesAsync()
        {
            var request = new ChooseCategoriesRequest { MemberId = Str(ValidMember()), Month = Str(ProgramMonth(random.Next(-1, 3))) };
            request.Categories.AddRange(Enumerable.Range(0, random.Next(0, 5)).Select(_ => Pick(new[] { "supermarkets", "fuel", "taxi", "restaurants", "pharmacy", "other" })).Distinct());
            List(request.Categories, WeirdString);
            await CallAsync("Balances.ChooseCategories", Members(request.MemberId), () => test.Balances.ChooseCategoriesAsync(request, deadline: Deadline()).ResponseAsync, request: request);
        }

        private async Task RedeemAsync()
        {
            var request = new RedeemRequest
            {
                TransactionId = Str(NewId("fz-d")), MemberId = Str(ValidMember()), PartnerId = Str(Partner), AmountMinor = Long(random.NextInt64(1, 5_000)),
            };
            var outcome = await CallAsync("Balances.Redeem", Members(request.MemberId), () => test.Balances.RedeemAsync(request, deadline: Deadline()).ResponseAsync, request: request);
            if (outcome.Status == StatusCode.OK) _redemptions.Add((request.TransactionId, request.MemberId, request.AmountMinor));
        }

        private async Task CheckEligibilityAsync()
        {
            var byCard = Chance(0.5);
            var request = new CheckEligibilityRequest
            {
                CardId = Str(byCard ? ValidCard() : ""), MemberId = Str(byCard ? "" : ValidMember()), MerchantId = Str(Merchant()), Mcc = Int(ValidMcc()),
                AmountMinor = Long(PurchaseAmount()),
            };
            var members = Members(request.CardId).Concat(Members(request.MemberId)).Distinct().ToArray();
            await CallAsync("Offers.CheckEligibility", members, () => test.Offers.CheckEligibilityAsync(request, deadline: Deadline()).ResponseAsync, read: true, request: request);
        }

        private async Task ListOffersAsync()
        {
            var request = new ListOffersRequest { MemberId = Str(ValidMember()) };
            await CallAsync("Offers.ListOffers", Members(request.MemberId), () => test.Offers.ListOffersAsync(request, deadline: Deadline()).ResponseAsync, read: true, request: request);
        }

        private async Task ActivateOfferAsync()
        {
            var request = new ActivateOfferRequest { MemberId = Str(ValidMember()), CampaignId = Str(Chance(0.8) ? Pick(_campaigns) : "fz-nothing") };
            await CallAsync("Offers.ActivateOffer", Members(request.MemberId), () => test.Offers.ActivateOfferAsync(request, deadline: Deadline()).ResponseAsync, request: request);
        }

        private async Task GetPayoutsAsync()
        {
            var request = new GetPayoutsRequest { PartnerId = Str(Partner), From = Time(Ts(Now.AddDays(-30))), To = Time(Ts(Now)) };
            await CallAsync("Offers.GetPayouts", [], () => test.Offers.GetPayoutsAsync(request, deadline: Deadline()).ResponseAsync, read: true,
                request: request);
        }

        private async Task EnrollMemberAsync()
        {
            var request = new EnrollMemberRequest
            {
                MemberId = Str(Chance(0.3) ? ValidMember() : NewId("fz-new")), Premium = Chance(0.3), ReferredBy = Str(Chance(0.3) ? ValidMember() : ""),
                Tier = Str(Pick(new[] { "", "", "standard", "silver", "gold", "platinum" })),
            };
            var members = Fuzzing.IsId(request.MemberId) ? new[] { request.MemberId } : [];
            var outcome = await CallAsync("Admin.EnrollMember", members, () => test.Admin.EnrollMemberAsync(request, deadline: Deadline()).ResponseAsync, snapUnknown: true, request: request);
            if (outcome.Status == StatusCode.OK && !_members.Contains(request.MemberId) && _members.Count < 40)
            {
                _members.Add(request.MemberId);
                if (request.ReferredBy.Length > 0) _referrer[request.MemberId] = request.ReferredBy;
            }
        }

        private async Task IssueCardAsync()
        {
            var request = new IssueCardRequest { CardId = Str(Chance(0.3) ? ValidCard() : NewId("fz-newcard")), MemberId = Str(ValidMember()) };
            var before = await CardOwnerAsync(request.CardId);
            var outcome = await CallAsync("Admin.IssueCard", Members(request.MemberId), () => test.Admin.IssueCardAsync(request, deadline: Deadline()).ResponseAsync, request: request);
            if (outcome.Status == StatusCode.OK)
            {
                if (!_cardOwner.ContainsKey(request.CardId) && _cards.Count < 60) _cards.Add(request.CardId);
                _cardOwner[request.CardId] = request.MemberId;
            }
            else if (await CardOwnerAsync(request.CardId) != before) Violation($"Admin.IssueCard: refused ({outcome.Status}) but card {Head(request.CardId)} changed owner");
        }

        private async Task BlockCardAsync()
        {
            // Pool cards stay unblocked, so authorizations keep reaching the deep paths; one card is there to be blocked.
            var request = new BlockCardRequest { CardId = Str(Chance(0.5) ? "fz-card-block" : NewId("fz-nocard")) };
            var outcome = await CallAsync("Admin.BlockCard", Members(request.CardId), () => test.Admin.BlockCardAsync(request, deadline: Deadline()).ResponseAsync, request: request);
            // A mutation may name a pool card: it is blocked now, so authorizations use the others.
            if (outcome.Status == StatusCode.OK && _cards.Count > 1) _cards.Remove(request.CardId);
        }

        private async Task GetProgramAsync() =>
            await CallAsync("Admin.GetProgram", [], () => test.Admin.GetProgramAsync(new GetProgramRequest(), deadline: Deadline()).ResponseAsync, read: true);

        private LoyaltyGrains.Gateway.V1.Program? _program;

        private async Task SetProgramAsync()
        {
            // Only this run sets programmes, so the newest version is known until one is accepted.
            var current = _program ??= await ProgramAsync();
            var program = current.Clone();
            program.EffectiveFrom = Chance(0.7) ? null : Ts(Now.AddDays(random.Next(-10, 400)));
            // A programme has some forty fields: a few mutated at a time, so some requests are accepted.
            _mutationRate = 0.03;
            program.EffectiveFrom = Time(program.EffectiveFrom);
            // Valid-looking changes keep RUB and the pool's tiers, so the engine's own members stay usable.
            foreach (var tier in program.Tiers)
            {
                tier.MinMonthlySpendMinor = Long(tier.MinMonthlySpendMinor);
                tier.BaseRateBps = Int(tier.BaseRateBps);
                tier.CategoryRateBps = Int(tier.CategoryRateBps);
                tier.CategoriesToChoose = Int(tier.CategoriesToChoose);
                tier.MonthlyCategoryCapMinor = Long(tier.MonthlyCategoryCapMinor);
                tier.MinPurchaseMinor = Long(tier.MinPurchaseMinor);
                tier.PremiumExtraCategories = Int(tier.PremiumExtraCategories);
                tier.PremiumMonthlyCategoryCapMinor = Long(tier.PremiumMonthlyCategoryCapMinor);
                tier.TierId = Str(tier.TierId);
            }
            if (Mutate()) program.Tiers.Add(Chance(0.5) ? program.Tiers[0].Clone() : new Tier { TierId = WeirdString() });
            List(program.OfferedCategories, WeirdString);
            List(program.ExcludedMccs, () => Int(random.Next(0, 10_000)));
            List(program.Currencies, () => Chance(0.5) ? "USD" : WeirdString());
            if (!program.Currencies.Contains("RUB")) program.Currencies.Add("RUB");
            program.Rounding = (LoyaltyGrains.Gateway.V1.RoundingMode)Int((int)program.Rounding);
            program.AuthorizationHoldDays = Int(program.AuthorizationHoldDays);
            program.CaptureMarginBps = Int(program.CaptureMarginBps);
            program.ExpiryMonths = Int(program.ExpiryMonths);
            program.ReferralBonusMinor = Long(program.ReferralBonusMinor);
            program.Version = Long(program.Version);
            program.UtcOffsetMinutes = Int(program.UtcOffsetMinutes);
            program.PremiumMinimumTierId = Str(program.PremiumMinimumTierId);
            program.ChooseNextMonthByDay = Int(program.ChooseNextMonthByDay);
            program.MaxAccrualRateBps = Int(program.MaxAccrualRateBps);
            if (Mutate()) program.CategoryRateOverridesBps[Chance(0.5) ? "fuel" : WeirdString()] = Int(300);
            if (program.Tiers.Count > 0 && program.Tiers[0].TierId != "standard") program.Tiers[0].TierId = "standard";
            _mutationRate = MutationRate;
            var outcome = await CallAsync("Admin.SetProgram", [], () => test.Admin.SetProgramAsync(program, deadline: Deadline()).ResponseAsync, request: program);
            if (outcome.Status == StatusCode.OK) _program = null;
            else if (!(await ProgramAsync()).Equals(current)) Violation($"Admin.SetProgram: refused ({outcome.Status}) but the programme changed");
        }

        private async Task UpsertCampaignAsync()
        {
            var id = Chance(0.6) ? Pick(_campaigns) : NewId("fz-cx");
            var campaign = ValidCampaign(Str(id), rateBps: Int(random.Next(0, 3) * 500), fixedBonus: Long(Chance(0.3) ? random.Next(1, 50_000) : 0));
            if (campaign.RateBps == 0 && campaign.FixedBonusMinor == 0) campaign.RateBps = 100;
            campaign.Name = Str(campaign.Name);
            campaign.PartnerId = Str(Chance(0.3) ? Partner : "");
            campaign.Mccs.AddRange(Chance(0.3) ? [5411] : []);
            List(campaign.Mccs, () => Int(random.Next(0, 10_000)));
            campaign.Categories.AddRange(Chance(0.2) ? ["pharmacy"] : []);
            List(campaign.Categories, WeirdString);
            campaign.MerchantIds.AddRange(Chance(0.3) ? ["fz-shop"] : []);
            List(campaign.MerchantIds, WeirdString);
            campaign.MinAmountMinor = Long(0);
            campaign.StartsAt = Time(campaign.StartsAt);
            campaign.EndsAt = Time(campaign.EndsAt);
            campaign.BudgetMinor = Long(Chance(0.3) ? 1_000_000 : 0);
            campaign.MaxMembers = Int(Chance(0.2) ? 5 : 0);
            campaign.PerMemberCapMinor = Long(Chance(0.2) ? 50_000 : 0);
            campaign.MinTier = Str(Pick(new[] { "", "", "", "silver", "gold", "platinum" }));
            campaign.RequiresActivation = Chance(0.2);
            campaign.StackingOrder = Int(random.Next(-3, 4));
            campaign.BudgetSpentMinor = Long(0);
            campaign.MembersJoined = Int(0);
            var before = await CampaignAsync(campaign.CampaignId);
            var outcome = await CallAsync("Admin.UpsertCampaign", [], () => test.Admin.UpsertCampaignAsync(campaign, deadline: Deadline()).ResponseAsync, request: campaign);
            if (outcome.Status == StatusCode.OK)
            {
                if (!_campaigns.Contains(campaign.CampaignId) && _campaigns.Count < 30) _campaigns.Add(campaign.CampaignId);
            }
            else if (await CampaignAsync(campaign.CampaignId) != before)
            {
                Violation($"Admin.UpsertCampaign: refused ({outcome.Status}) but campaign {Head(campaign.CampaignId)} changed");
            }
        }

        private async Task UpsertPartnerAsync()
        {
            var request = new Partner { PartnerId = Str(Chance(0.5) ? Partner : NewId("fz-p")), Name = Str("Partner " + random.Next(3)) };
            await CallAsync("Admin.UpsertPartner", [], () => test.Admin.UpsertPartnerAsync(request, deadline: Deadline()).ResponseAsync, request: request);
        }

        // ------------------------------------------------------------------ properties

        private static DateTime Deadline() => DateTime.UtcNow.Add(CallDeadline);

        private string[] Members(string cardOrMember)
        {
            if (_cardOwner.TryGetValue(cardOrMember, out var member)) return [member];
            // A member the run has a snapshot of counts too (enrolled past the pool's size): a call that changes it must drop that snapshot.
            return _members.Contains(cardOrMember) || _seen.ContainsKey(cardOrMember) ? [cardOrMember] : [];
        }

        /// <summary>
        /// Calls one RPC and checks the properties: an allowed status, a short message, and for a refusal (or any read)
        /// the affected members, unchanged but for housekeeping.
        /// </summary>
        private async Task<Outcome> CallAsync<T>(string rpc, IReadOnlyList<string> members, Func<Task<T>> call, bool read = false,
            bool unimplementedAllowed = false, bool snapUnknown = false, Google.Protobuf.IMessage? request = null)
        {
            var before = await SnapAllAsync(members, snapUnknown);
            Sent++;
            Outcome outcome;
            try
            {
                await call();
                outcome = new Outcome(StatusCode.OK, "");
            }
            catch (RpcException ex)
            {
                outcome = new Outcome(ex.StatusCode, ex.Status.Detail);
            }
            catch (InvalidOperationException ex)
            {
                outcome = new Outcome(StatusCode.Unknown, ex.Message);
            }
            Count(rpc, Name(outcome.Status));
            var allowed = Allowed.Contains(outcome.Status) || (unimplementedAllowed && outcome.Status == StatusCode.Unimplemented);
            if (!allowed) Violation($"{rpc}: {outcome.Status} {Head(outcome.Detail)} for {Describe(request)}");
            if (outcome.Detail.Length > DetailLengthMax) Violation($"{rpc}: a message of {outcome.Detail.Length} characters: {Head(outcome.Detail)}");
            if (outcome.Status != StatusCode.OK || read) await UnchangedAsync(rpc, before);
            else Forget(members);
            return outcome;
        }

        private async Task<Dictionary<string, MemberSnap?>> SnapAllAsync(IReadOnlyList<string> members, bool snapUnknown = false)
        {
            var snaps = new Dictionary<string, MemberSnap?>(StringComparer.Ordinal);
            foreach (var member in members)
            {
                if (!snapUnknown && !_members.Contains(member)) continue;
                if (!_seen.TryGetValue(member, out var seen)) _seen[member] = seen = await SnapAsync(member);
                snaps[member] = seen;
            }
            return snaps;
        }

        private async Task<MemberSnap?> SnapAsync(string member)
        {
            try
            {
                var balanceCall = test.Balances.GetBalanceAsync(new GetBalanceRequest { MemberId = member }, deadline: Deadline()).ResponseAsync;
                var headCall = test.Balances.GetStatementAsync(new GetStatementRequest { MemberId = member, PageSize = 1 }, deadline: Deadline()).ResponseAsync;
                await Task.WhenAll(balanceCall, headCall);
                var (balance, head) = (balanceCall.Result, headCall.Result);
                const long max = LoyaltyGrains.Domain.Limits.BalanceMinorMax;
                if (balance.AvailableMinor is > max or < -max || balance.PendingMinor is > max or < -max)
                {
                    Violation($"member {member}: balance {balance.AvailableMinor} / pending {balance.PendingMinor} past the documented maximum");
                }
                return new MemberSnap(balance.AvailableMinor, balance.PendingMinor, head.Entries.Count == 0 ? 0 : head.Entries[0].Sequence);
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
            {
                return null;
            }
        }

        /// <summary>Each member as it was, or changed only by housekeeping entries whose deltas explain the difference.</summary>
        private async Task UnchangedAsync(string rpc, Dictionary<string, MemberSnap?> before)
        {
            foreach (var (member, was) in before)
            {
                var now = _seen[member] = await SnapAsync(member);
                if (now == was) continue;
                if (was is null || now is null)
                {
                    Violation($"{rpc}: refused or read, but member {member} went from {was?.ToString() ?? "absent"} to {now?.ToString() ?? "absent"}");
                    continue;
                }
                var page = await test.Balances.GetStatementAsync(new GetStatementRequest { MemberId = member, PageSize = 200 }, deadline: Deadline());
                var newer = page.Entries.Where(e => e.Sequence > was.Head).ToArray();
                var onlyHousekeeping = newer.All(e => HousekeepingKinds.Contains(e.Kind));
                var explained = was.Available + newer.Sum(e => e.AvailableDeltaMinor) == now.Available && was.Pending + newer.Sum(e => e.PendingDeltaMinor) == now.Pending;
                if (!onlyHousekeeping || !explained)
                {
                    Violation($"{rpc}: refused or read, but member {member} changed {was} -> {now} by [{string.Join(", ", newer.Select(e => $"{e.Kind} {Head(e.TransactionId)}"))}]");
                }
            }
        }

        /// <summary>
        /// After a call that changed something, every kept snapshot is dropped, not just those of the members it names:
        /// a call can reach members the run cannot name (an id it mangled, a referrer, a card's owner it never learnt),
        /// and a stale snapshot would make the next refusal look like a change. Snapshots are read again when needed.
        /// </summary>
        private void Forget(IEnumerable<string> members) => _seen.Clear();

        private async Task<LoyaltyGrains.Gateway.V1.Program> ProgramAsync() => await test.Admin.GetProgramAsync(new GetProgramRequest(), deadline: Deadline());

        private async Task<string?> CampaignAsync(string campaignId)
        {
            if (!Fuzzing.IsId(campaignId)) return null;
            // fz-m4: a standard-tier member nobody else touches for offers, so its listing shows every open campaign it qualifies for.
            var offers = await test.Offers.ListOffersAsync(new ListOffersRequest { MemberId = "fz-m4" }, deadline: Deadline());
            if (offers.Offers.FirstOrDefault(o => o.CampaignId == campaignId) is not { } offer) return null;
            // The definition only: spend and members joined move with other members' postings and lease returns.
            var definition = offer.Clone();
            definition.BudgetSpentMinor = 0;
            definition.MembersJoined = 0;
            return definition.ToString();
        }

        private async Task<string?> CardOwnerAsync(string cardId)
        {
            if (!Fuzzing.IsId(cardId)) return null;
            try
            {
                return (await test.Offers.CheckEligibilityAsync(new CheckEligibilityRequest { CardId = cardId, MerchantId = "m", Mcc = 5411, AmountMinor = 100 }, deadline: Deadline())).MemberId;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
            {
                return null;
            }
        }

        public async Task EngineStillServesAsync()
        {
            var member = NewId("fz-final");
            await test.Admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = member });
            await test.Admin.IssueCardAsync(new IssueCardRequest { CardId = member + "-card", MemberId = member });
            var reply = await test.Processing.AuthorizeAsync(new AuthorizeRequest
            {
                TransactionId = member + "-a", CardId = member + "-card", AmountMinor = 100_000, Currency = "RUB", Mcc = 5411, MerchantId = "shop",
                OccurredAt = Ts(Now.AddMinutes(-1)),
            });
            if (reply.Status != PostingStatus.Accepted) Violation($"after the run a normal authorization answered {reply.Status}");
            var pool = await test.Processing.AuthorizeAsync(new AuthorizeRequest
            {
                TransactionId = NewId("fz-final-a"), CardId = _cards[0], AmountMinor = 100_000, Currency = "RUB", Mcc = 5411, MerchantId = "shop",
                OccurredAt = Ts(Now.AddMinutes(-1)),
            });
            if (pool.Status != PostingStatus.Accepted) Violation($"after the run a pool member's authorization answered {pool.Status}");
        }

        /// <summary>The request as JSON, cut short.</summary>
        private static string Describe(Google.Protobuf.IMessage? request)
        {
            if (request is null) return "(see the RPC)";
            try
            {
                var json = Google.Protobuf.JsonFormatter.Default.Format(request);
                return json.Length <= 2_000 ? json : json[..2_000] + $"… ({json.Length} characters)";
            }
            catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
            {
                // A timestamp protobuf cannot hold, or a lone surrogate: JSON cannot show them.
                return "(a request JSON cannot show)";
            }
        }

        /// <summary>Whatever stacks, a purchase earns between 0 and its amount (max_accrual_rate_bps is at most 100%).</summary>
        private PostingReply Accrued(string rpc, long amountMinor, PostingReply reply)
        {
            if (reply.Status == PostingStatus.Accepted && (reply.AccruedMinor < 0 || reply.AccruedMinor > amountMinor))
            {
                Violation($"{rpc}: {Head(reply.TransactionId)} accrued {reply.AccruedMinor} on {amountMinor}");
            }
            return reply;
        }

        private void Count(string rpc, string status) => Counts[(rpc, status)] = Counts.GetValueOrDefault((rpc, status)) + 1;

        private void Violation(string text)
        {
            if (Violations.Count < 200) Violations.Add(text);
        }

        private static string Name(StatusCode code) => code switch
        {
            StatusCode.OK => "OK",
            StatusCode.InvalidArgument => "INVALID_ARGUMENT",
            StatusCode.NotFound => "NOT_FOUND",
            StatusCode.AlreadyExists => "ALREADY_EXISTS",
            StatusCode.FailedPrecondition => "FAILED_PRECONDITION",
            StatusCode.ResourceExhausted => "RESOURCE_EXHAUSTED",
            StatusCode.Unimplemented => "UNIMPLEMENTED",
            _ => code.ToString().ToUpperInvariant(),
        };

        private static string Head(string text) => text.Length <= 160 ? text : text[..160] + $"… ({text.Length} characters)";
    }
}

/// <summary>Small helpers the fuzz shares with nobody: the gateway's id rule.</summary>
internal static class Fuzzing
{
    public static bool IsId(string value) => LoyaltyGrains.Domain.Limits.IsId(value);
}
