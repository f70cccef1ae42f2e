using System.CommandLine;
using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Gateway.V1;

using Microsoft.Extensions.Configuration;

namespace LoyaltyGrains.Cli;

/// <summary>
/// `demo`: a short realistic day of card transactions against a running engine over gRPC, printing every reply and the
/// balances at the end, so a newcomer sees the whole lifecycle without another tool. An engine that refuses the token is a
/// usage error (2: start both with the same key, or pass --token); one that cannot be reached a runtime failure (1).
/// </summary>
public static class DemoDay
{
    /// <summary>The demo's regulars: seeded by the embedded engine, enrolled by the demo when a durable engine lacks them.</summary>
    public static readonly (string MemberId, bool Premium, string CardId, string[] Categories)[] Members =
    [
        ("anna", false, "card-anna-1", ["restaurants", "supermarkets", "fuel"]),
        ("boris", true, "card-boris-1", ["electronics", "taxi", "pharmacy", "clothes"]),
        ("vera", false, "card-vera-1", ["travel", "entertainment", "beauty"]),
    ];

    public static Command Create()
    {
        var target = new Option<string>("--target") { Description = "the engine's gRPC address", HelpName = "URL", DefaultValueFactory = _ => "http://127.0.0.1:5000" };
        target.Validators.Add(result =>
        {
            // Validators run for the default too (no tokens then): only an address the user gave is checked.
            if (result.Tokens.Count == 0) return;
            var text = result.Tokens[0].Value;
            if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            {
                result.AddError($"--target: '{text}' is not an http:// or https:// address like http://127.0.0.1:5000");
            }
        });
        var token = new Option<string>("--token") { Description = "an admin+processor token (default: one minted with this machine's key)", HelpName = "JWT" };
        var verbose = new Option<bool>("--verbose") { Description = "print every request and reply as JSON" };
        var command = new Command("demo",
            "A short realistic day of card transactions against a running engine (enroll, issue a card, authorize, capture, retry, reverse, refund, " +
            "an excluded MCC, a bad amount, a force post), then the balances.")
        {
            target, token, verbose,
        };
        command.SetAction((parsed, _) => RunAsync(parsed.GetRequiredValue(target), parsed.GetValue(token), parsed.GetValue(verbose)));
        return command;
    }

    public static async Task<int> RunAsync(string target, string? givenToken, bool verbose)
    {
        Verbose = verbose;
        if ((givenToken ?? DemoToken()) is not { } token) return LoyaltyCommandLine.UsageError;
        using var channel = LoyaltyGrains.Gateway.Auth.BearerTokenHandler.Channel(target, token);
        var processing = new Processing.ProcessingClient(channel);
        Balances = new Balances.BalancesClient(channel);
        var balances = Balances;
        var admin = new Admin.AdminClient(channel);
        var run = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        var day = DateTimeOffset.UtcNow.Date;
        string Id(string name) => $"demo-{run}-{name}";
        Timestamp At(int hour, int minute) => Timestamp.FromDateTimeOffset(new DateTimeOffset(day, TimeSpan.Zero).AddHours(hour).AddMinutes(minute).AddHours(-3));

        Console.WriteLine($"Demo day against {target} (run {run}); amounts in RUB; anna (card card-anna-1) and boris (card-boris-1) are seeded, dasha is enrolled now\n");
        try
        {
            await EnsureCastAsync(admin, balances);
            var dasha = "dasha-" + run;
            var enroll = new EnrollMemberRequest { MemberId = dasha };
            Print("enroll dasha", enroll, await admin.EnrollMemberAsync(enroll));
            var issue = new IssueCardRequest { CardId = "card-" + dasha, MemberId = dasha };
            Print("issue her card", issue, await admin.IssueCardAsync(issue));
            await Show("dasha: 1 000.00 at MCC 5411", processing.AuthorizeAsync(Auth(Id("d1"), "card-" + dasha, 100_000, 5411, "magnit", At(7, 30))), dasha);
            await Show("       capture", processing.CaptureAsync(new CaptureRequest { TransactionId = Id("d1-c"), AuthorizationId = Id("d1"), CardId = "card-" + dasha, AmountMinor = 100_000, OccurredAt = At(7, 31) }), dasha);
            await Show("       the same authorization again (processor retry)", processing.AuthorizeAsync(Auth(Id("d1"), "card-" + dasha, 100_000, 5411, "magnit", At(7, 30))), dasha);
            await Show("dasha: 2 500.00 at MCC 5732, then cancelled", processing.AuthorizeAsync(Auth(Id("d2"), "card-" + dasha, 250_000, 5732, "dns", At(7, 45))), dasha);
            await Show("       reversal", processing.ReverseAsync(new ReverseRequest { TransactionId = Id("d2-v"), AuthorizationId = Id("d2"), CardId = "card-" + dasha }), dasha);
            await Show("       refund of 400.00 of the 1 000.00 purchase", processing.RefundAsync(new RefundRequest { TransactionId = Id("d1-r"), OriginalTransactionId = Id("d1-c"), CardId = "card-" + dasha, AmountMinor = 40_000 }), dasha);
            await Show("       transfer 3 000.00 at MCC 4829 (excluded)", processing.AuthorizeAsync(Auth(Id("d3"), "card-" + dasha, 300_000, 4829, "p2p", At(7, 50))), dasha);
            await Show("       a bad amount (0)", processing.AuthorizeAsync(Auth(Id("d4"), "card-" + dasha, 0, 5411, "magnit", At(7, 55))), dasha);
            Console.WriteLine();
            await Show("08:10 coffee 250.00 at MCC 5814", processing.AuthorizeAsync(Auth(Id("coffee"), "card-anna-1", 25_000, 5814, "coffee-house", At(8, 10))));
            await Show("       capture coffee", processing.CaptureAsync(new CaptureRequest { TransactionId = Id("coffee-c"), AuthorizationId = Id("coffee"), CardId = "card-anna-1", AmountMinor = 25_000, OccurredAt = At(8, 11) }));
            await Show("09:00 metro 60.00 at MCC 4111 (below the 100.00 minimum)", processing.AuthorizeAsync(Auth(Id("metro"), "card-anna-1", 6_000, 4111, "metro", At(9, 0))));
            await Show("13:00 lunch 1 200.00 at MCC 5812 (chosen: restaurants)", processing.AuthorizeAsync(Auth(Id("lunch"), "card-anna-1", 120_000, 5812, "cafe-pushkin", At(13, 0))));
            await Show("       capture lunch with a 180.00 tip", processing.CaptureAsync(new CaptureRequest { TransactionId = Id("lunch-c"), AuthorizationId = Id("lunch"), CardId = "card-anna-1", AmountMinor = 138_000, OccurredAt = At(13, 40) }));
            await Show("18:30 groceries 3 450.90 at MCC 5411 (chosen: supermarkets)", processing.AuthorizeAsync(Auth(Id("groceries"), "card-anna-1", 345_090, 5411, "perekrestok", At(18, 30))));
            await Show("       retry of the same authorization", processing.AuthorizeAsync(Auth(Id("groceries"), "card-anna-1", 345_090, 5411, "perekrestok", At(18, 30))));
            await Show("       capture groceries", processing.CaptureAsync(new CaptureRequest { TransactionId = Id("groceries-c"), AuthorizationId = Id("groceries"), CardId = "card-anna-1", AmountMinor = 345_090, OccurredAt = At(18, 31) }));
            await Show("       refund of 1 000.00 (returned items)", processing.RefundAsync(new RefundRequest { TransactionId = Id("groceries-r"), OriginalTransactionId = Id("groceries-c"), CardId = "card-anna-1", AmountMinor = 100_000 }));
            await Show("20:00 ATM cash 5 000.00 at MCC 6011 (excluded)", processing.AuthorizeAsync(Auth(Id("atm"), "card-anna-1", 500_000, 6011, "atm-0042", At(20, 0))));
            await Show("20:30 transfer 10 000.00 at MCC 4829 (excluded)", processing.AuthorizeAsync(Auth(Id("transfer"), "card-anna-1", 1_000_000, 4829, "p2p", At(20, 30))));
            await Show("21:00 boris: laptop 89 990.00 at MCC 5732 (chosen: electronics)", processing.AuthorizeAsync(Auth(Id("laptop"), "card-boris-1", 8_999_000, 5732, "mvideo", At(21, 0))));
            await Show("       order cancelled: full reversal", processing.ReverseAsync(new ReverseRequest { TransactionId = Id("laptop-v"), AuthorizationId = Id("laptop"), CardId = "card-boris-1" }));
            await Show("21:30 boris: taxi 740.00 at MCC 4121, force post (no authorization)", processing.CaptureAsync(new CaptureRequest { TransactionId = Id("taxi"), CardId = "card-boris-1", AmountMinor = 74_000, Mcc = 4121, MerchantId = "yandex-go", OccurredAt = At(21, 30) }));
            await Show("22:00 a bad amount (-5.00)", processing.AuthorizeAsync(Auth(Id("bad"), "card-anna-1", -500, 5411, "perekrestok", At(22, 0))));
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Unauthenticated)
        {
            Console.Error.WriteLine($"The engine at {target} refused the demo's token ({ex.Status.Detail}): start both with the same key, or pass --token.");
            return LoyaltyCommandLine.UsageError;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
        {
            Console.Error.WriteLine($"The engine at {target} is not reachable: start it first with `dotnet run --project silo -c Release` ({ex.Status.Detail}).");
            return LoyaltyCommandLine.RuntimeFailure;
        }

        Console.WriteLine("\nBalances:");
        foreach (var member in new[] { "anna", "boris" })
        {
            var balance = await balances.GetBalanceAsync(new GetBalanceRequest { MemberId = member });
            Console.WriteLine($"  {member,-6} available {Money.Format(balance.AvailableMinor),10}  pending {Money.Format(balance.PendingMinor),10}  tier {balance.Tier}  " +
                $"categories [{string.Join(", ", balance.ChosenCategories)}]  category cap left {Money.Format(balance.CategoryCapLeftMinor)}");
        }
        return 0;
    }

    /// <summary>
    /// --token, else a short-lived operator+processor token signed with this machine's key (the one the engine started
    /// with: LOYALTY_AUTH_SIGNING_KEY, Loyalty:Auth:SigningKey or the development key).
    /// </summary>
    private static string? DemoToken()
    {
        var configuration = new ConfigurationBuilder().SetBasePath(AppContext.BaseDirectory).AddJsonFile("appsettings.json", optional: true).AddEnvironmentVariables().Build();
        var key = SigningKeySource.Resolve(configuration);
        if (key.Key is null)
        {
            Console.Error.WriteLine($"The engine trusts {key.Description}: pass an admin+processor token with --token.");
            return null;
        }
        return LoyaltyGrains.Gateway.Auth.LoyaltyTokens.Mint(key.Options(configuration),
            new LoyaltyGrains.Gateway.Auth.TokenRequest("demo", ["admin", "processor"], null, TimeSpan.FromMinutes(15)));
    }

    /// <summary>The demo's regulars (seeded in the embedded default; enrolled here when a durable engine lacks them).</summary>
    private static async Task EnsureCastAsync(Admin.AdminClient admin, Balances.BalancesClient balances)
    {
        var month = MonthKey.Of(DateTimeOffset.UtcNow, ProgramConfig.Default.UtcOffsetMinutes).ToString();
        foreach (var (memberId, premium, cardId, categories) in Members)
        {
            await admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = memberId, Premium = premium });
            await admin.IssueCardAsync(new IssueCardRequest { CardId = cardId, MemberId = memberId });
            try
            {
                await balances.ChooseCategoriesAsync(new ChooseCategoriesRequest { MemberId = memberId, Month = month, Categories = { categories } });
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.FailedPrecondition)
            {
                // Already chosen and locked by an earlier demo this month: keep that choice.
            }
        }
    }

    private static AuthorizeRequest Auth(string id, string card, long amountMinor, int mcc, string merchant, Timestamp at) => new()
    {
        TransactionId = id, CardId = card, AmountMinor = amountMinor, Currency = "RUB", Mcc = mcc, MerchantId = merchant, OccurredAt = at,
    };

    private static bool Verbose { get; set; }

    private static Balances.BalancesClient Balances { get; set; } = null!;

    private static void Print(string what, Google.Protobuf.IMessage request, Google.Protobuf.IMessage reply)
    {
        if (!Verbose) return;
        Console.WriteLine($"{what}\n  request: {Google.Protobuf.JsonFormatter.Default.Format(request)}\n  reply:   {Google.Protobuf.JsonFormatter.Default.Format(reply)}");
    }

    private static async Task Show(string what, AsyncUnaryCall<PostingReply> call, string? member = null)
    {
        try
        {
            var reply = await call;
            var lines = string.Join(", ", reply.Breakdown.Select(b => $"{b.Rule} {Money.Format(b.AmountMinor)}"));
            Console.WriteLine($"{what,-66} {reply.Status,-9} accrued {Money.Format(reply.AccruedMinor),8}  pending {Money.Format(reply.PendingMinor),8}  available {Money.Format(reply.AvailableMinor),8}  {(lines.Length > 0 ? "[" + lines + "]" : "")}");
            if (Verbose) Console.WriteLine($"  reply:   {Google.Protobuf.JsonFormatter.Default.Format(reply)}");
        }
        catch (RpcException ex) when (ex.StatusCode != StatusCode.Unavailable)
        {
            Console.WriteLine($"{what,-66} {ex.StatusCode}: {ex.Status.Detail}");
        }
        if (Verbose && member is not null)
        {
            var balance = await Balances.GetBalanceAsync(new GetBalanceRequest { MemberId = member });
            Console.WriteLine($"  balance: {Google.Protobuf.JsonFormatter.Default.Format(balance)}");
        }
    }
}
