using Orleans.Concurrency;

namespace LoyaltyGrains.Contracts;

/// <summary>
/// One loyalty member: balance, tier, categories, purchases. Keyed by member id. It holds money, so its decisions are
/// strictly serial: every call goes through one in-grain queue, decided one after another in arrival order. The grain
/// is reentrant only so that postings queued behind a ledger commit can be decided together and committed in one
/// append; no call ever sees another's uncommitted effects, and every reply waits for the commit of its change.
/// </summary>
[Alias("lg.IMemberGrain")]
public interface IMemberGrain : IGrainWithStringKey
{
    [Alias("Enroll")] Task<MemberInfo> Enroll(bool premium, string referredBy, string tier);
    [Alias("GetMember")] Task<MemberInfo> GetMember();
    [Alias("Capture")] Task<PostingResult> Capture(CaptureMessage message);
    [Alias("Reverse")] Task<PostingResult> Reverse(ReverseMessage message);
    [Alias("Refund")] Task<PostingResult> Refund(RefundMessage message);

    // An authorization is decided only with someone vouching for its card: the card grain that forwarded it, or the
    // member itself from what the card grains told this activation. (The wire aliases keep the methods' first names.)

    /// <summary>
    /// An authorization routed straight to the member (the gateway knows the card's member): the member vouches for the
    /// card from what its card grain told this activation; a card it was not told about throws
    /// <see cref="CardRouteRequiredException"/> (nothing recorded) and the gateway goes through the card grain.
    /// </summary>
    [Alias("AuthorizeOnCard")] Task<PostingResult> AuthorizeOnKnownCard(AuthorizeMessage message);

    /// <summary>
    /// An authorization forwarded by the card grain of <see cref="AuthorizeMessage.CardId"/>, which vouches the card is
    /// this member's and says whether it is blocked; the member remembers it for authorizations routed past the card grain.
    /// </summary>
    [Alias("AuthorizeFromCard")] Task<PostingResult> AuthorizeFromCardGrain(AuthorizeMessage message, bool cardBlocked);

    /// <summary>
    /// Several postings decided in order and committed in one ledger append; a result (or error) per item, in order,
    /// each what the unary call would have answered. Authorizations are vouched for as by <see cref="AuthorizeOnKnownCard"/>.
    /// </summary>
    [Alias("Post")] Task<PostingItemResult[]> Post(PostingItem[] items);

    /// <summary>
    /// The card grain tells the member one of its cards is blocked, before the block is acknowledged; returns once every
    /// authorization decided before it is written, so none can be acknowledged after the block.
    /// </summary>
    [Alias("CardBlocked")] Task CardBlocked(string cardId);
    [Alias("GetBalance")] Task<BalanceView> GetBalance();
    [Alias("ChooseCategories")] Task<BalanceView> ChooseCategories(string month, string[] categories);
    [Alias("GetStatement")] Task<StatementPage> GetStatement(int pageSize, long beforeSequence);
    [Alias("IsEnrolled")] Task<bool> IsEnrolled();
    [Alias("Redeem")] Task<PostingResult> Redeem(string transactionId, string partnerId, long amountMinor);
    [Alias("Quote")] Task<Eligibility> Quote(string merchantId, int mcc, long amountMinor);
    [Alias("ListOffers")] Task<OfferListing> ListOffers();
    [Alias("ActivateOffer")] Task<OfferListing> ActivateOffer(string campaignId);
    /// <summary>Registers (or renews, within <see cref="WatchLeaseSeconds"/>) a balance watcher; returns the current balance.</summary>
    [Alias("Watch")] Task<BalanceView> Watch(IBalanceObserver observer);
    [Alias("Unwatch"), OneWay] Task Unwatch(IBalanceObserver observer);

    /// <summary>A watcher not renewed within this many seconds is dropped (watchers are not durable).</summary>
    public const int WatchLeaseSeconds = 60;

    /// <summary>Credits the referral bonus for a referred member's first captured purchase; idempotent.</summary>
    [Alias("CreditReferral")] Task CreditReferral(string referredMemberId);
}

/// <summary>Told of every committed balance change of a watched member (mobile push, WatchBalance).</summary>
[Alias("lg.IBalanceObserver")]
public interface IBalanceObserver : IGrainObserver
{
    [Alias("BalanceChanged"), OneWay] Task BalanceChanged(BalanceView balance);
}

/// <summary>
/// A payment card: which member it earns for and whether it is blocked. Entry point for processor messages, which it
/// forwards to the member; forwarding is interleaved because the card holds no money and changes only on admin calls.
/// </summary>
[Alias("lg.ICardGrain")]
public interface ICardGrain : IGrainWithStringKey
{
    [Alias("Issue")] Task<CardInfo> Issue(string memberId);
    [Alias("Block")] Task<CardInfo> Block();
    [Alias("GetCard"), AlwaysInterleave] Task<CardInfo> GetCard();
    [Alias("Authorize"), AlwaysInterleave] Task<PostingResult> Authorize(AuthorizeMessage message);
    [Alias("Capture"), AlwaysInterleave] Task<PostingResult> Capture(CaptureMessage message);
    [Alias("Reverse"), AlwaysInterleave] Task<PostingResult> Reverse(ReverseMessage message);
    [Alias("Refund"), AlwaysInterleave] Task<PostingResult> Refund(RefundMessage message);
}

/// <summary>The program's versions (JSON of the domain ProgramConfig), singleton key "program".</summary>
[Alias("lg.IProgramGrain")]
public interface IProgramGrain : IGrainWithStringKey
{
    public const string Key = "program";

    /// <summary>All versions, oldest first, as JSON documents.</summary>
    [Alias("GetVersions"), ReadOnly] Task<string[]> GetVersions();

    /// <summary>Adds a version; returns it with its assigned version number and effective time.</summary>
    [Alias("SetProgram")] Task<string> SetProgram(string programJson);
}

/// <summary>
/// Grain keys carry a type prefix: ADO.NET storage can load the wrong row for all-digit string keys
/// (dotnet/orleans#9706), and card "42" and member "42" must never meet.
/// </summary>
public static class GrainKeys
{
    public const string MemberPrefix = "m/";
    public const string CardPrefix = "c/";
    public const string CampaignPrefix = "k/";
    public const string PartnerPrefix = "p/";

    public static string Member(string memberId) => MemberPrefix + memberId;

    public static string Card(string cardId) => CardPrefix + cardId;

    /// <summary>The business id inside a grain key.</summary>
    public static string IdOf(string grainKey) => grainKey.Length > 2 && grainKey[1] == '/' ? grainKey[2..] : grainKey;

    public static IMemberGrain MemberGrain(this IGrainFactory grains, string memberId) => Reference<IMemberGrain>(grains, Member(memberId));

    public static ICardGrain CardGrain(this IGrainFactory grains, string cardId) => Reference<ICardGrain>(grains, Card(cardId));

    public static ICampaignGrain CampaignGrain(this IGrainFactory grains, string campaignId) => Reference<ICampaignGrain>(grains, CampaignPrefix + campaignId);

    public static IPartnerGrain PartnerGrain(this IGrainFactory grains, string partnerId) => Reference<IPartnerGrain>(grains, PartnerPrefix + partnerId);

    /// <summary>
    /// A grain reference without Orleans' per-call interface lookup: <c>GetGrain&lt;T&gt;(string)</c> reads the
    /// interface's attributes by reflection on every call (measured: a few hundred bytes and microseconds per request on
    /// the authorize path). The grain and interface types are resolved once per interface and reused.
    /// </summary>
    private static T Reference<T>(IGrainFactory grains, string key) where T : class, IGrainWithStringKey
    {
        var types = ResolvedTypes<T>.Value;
        if (types is null)
        {
            var first = grains.GetGrain<T>(key);
            var reference = (GrainReference)(object)first;
            ResolvedTypes<T>.Value = new GrainTypes(reference.GrainId.Type, reference.InterfaceType);
            return first;
        }
        return (T)grains.GetGrain(GrainId.Create(types.Grain, key), types.Interface);
    }

    private sealed record GrainTypes(GrainType Grain, GrainInterfaceType Interface);

    private static class ResolvedTypes<T>
    {
        public static volatile GrainTypes? Value;
    }
}

/// <summary>A campaign's definition and its budget ledger of leases. Keyed by campaign id.</summary>
[Alias("lg.ICampaignGrain")]
public interface ICampaignGrain : IGrainWithStringKey
{
    /// <summary>Creates or replaces the definition (JSON of the domain CampaignRule); budget already leased stays leased.</summary>
    [Alias("Upsert")] Task<CampaignStatus> Upsert(string campaignJson);

    [Alias("GetStatus"), ReadOnly] Task<CampaignStatus> GetStatus();

    /// <summary>
    /// Leases up to the wanted budget and first-N member slots to one silo. Never grants beyond the budget: the sum
    /// of outstanding leases and spend is at most the campaign's budget.
    /// </summary>
    [Alias("AcquireLease")] Task<CampaignLease> AcquireLease(long budgetWantedMinor, int slotsWanted, ILeaseHolder holder);

    /// <summary>Gives back a lease's unspent budget and slots (lease end, or budget returned by reversals and refunds).</summary>
    [Alias("ReturnLease")] Task ReturnLease(long budgetMinor, int slots);

    /// <summary>
    /// What a lease request from <paramref name="asking"/> could get now, taking nothing: the unleased budget and slots
    /// plus what other silos' leases hold unspent (a request would recall it). How a quote prices without reserving.
    /// </summary>
    [Alias("Remaining")] Task<CampaignLease> Remaining(ILeaseHolder asking);
}

/// <summary>
/// A silo's lease holder. When a campaign runs short, its grain recalls the unspent part of other silos' leases, so the
/// whole budget reaches purchases instead of sitting in an idle silo's lease.
/// </summary>
[Alias("lg.ILeaseHolder")]
public interface ILeaseHolder : IGrainObserver
{
    /// <summary>Empties this silo's lease of the campaign and returns what was in it.</summary>
    [Alias("Recall")] Task<CampaignLease> Recall(string campaignId);

    /// <summary>What this silo's lease of the campaign holds unspent; takes nothing.</summary>
    [Alias("Held")] Task<CampaignLease> Held(string campaignId);
}

/// <summary>All campaign definitions, for every silo's rules replica and for listing offers. Singleton key "campaigns".</summary>
[Alias("lg.ICampaignRegistryGrain")]
public interface ICampaignRegistryGrain : IGrainWithStringKey
{
    public const string Key = "campaigns";

    [Alias("Put")] Task Put(string campaignId, string campaignJson);

    [Alias("GetAll"), ReadOnly] Task<string[]> GetAll();
}

/// <summary>A funding partner. Keyed by partner id.</summary>
[Alias("lg.IPartnerGrain")]
public interface IPartnerGrain : IGrainWithStringKey
{
    [Alias("Upsert")] Task<PartnerInfo> Upsert(string name);

    [Alias("GetPartner"), ReadOnly] Task<PartnerInfo?> GetPartner();
}

[GenerateSerializer, Immutable, Alias("lg.CampaignLease")]
public sealed record CampaignLease(
    [property: Id(0)] long BudgetMinor,
    [property: Id(1)] int Slots,
    /// <summary>The campaign could not give all that was asked: its budget or slots are (for now) used up.</summary>
    [property: Id(2)] bool Exhausted);

[GenerateSerializer, Immutable, Alias("lg.CampaignStatus")]
public sealed record CampaignStatus(
    [property: Id(0)] string CampaignJson,
    /// <summary>Budget handed to silos and not returned: an upper bound of what members were granted.</summary>
    [property: Id(1)] long BudgetLeasedMinor,
    [property: Id(2)] int SlotsLeased,
    [property: Id(3)] long LeaseCalls);

[GenerateSerializer, Immutable, Alias("lg.PartnerInfo")]
public sealed record PartnerInfo([property: Id(0)] string PartnerId, [property: Id(1)] string Name);

[GenerateSerializer, Immutable, Alias("lg.Eligibility")]
public sealed record Eligibility(
    [property: Id(0)] string MemberId,
    [property: Id(1)] string[] CampaignIds,
    [property: Id(2)] long ExpectedAccrualMinor,
    [property: Id(3)] BreakdownItem[] Breakdown);

[GenerateSerializer, Immutable, Alias("lg.OfferListing")]
public sealed record OfferListing([property: Id(0)] string[] CampaignsJson, [property: Id(1)] string[] ActivatedCampaignIds,
    /// <summary>Per offer, in the same order: budget spent and members joined, as the campaign counted them lately.</summary>
    [property: Id(2)] OfferUsage[] Usage);

/// <summary>A campaign's spend and first-N members joined: eventually consistent (docs/RULES.md, campaigns).</summary>
[GenerateSerializer, Immutable, Alias("lg.OfferUsage")]
public sealed record OfferUsage([property: Id(0)] long BudgetSpentMinor, [property: Id(1)] int MembersJoined);
