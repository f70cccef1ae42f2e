using Orleans.Concurrency;

namespace LoyaltyGrains.Contracts;

/// <summary>One loyalty member: balance, tier, categories, purchases. Keyed by member id. Never reentrant: it holds money.</summary>
[Alias("lg.IMemberGrain")]
public interface IMemberGrain : IGrainWithStringKey
{
    [Alias("Enroll")] Task<MemberInfo> Enroll(bool premium, string referredBy, string tier);
    [Alias("GetMember")] Task<MemberInfo> GetMember();
    [Alias("Authorize")] Task<PostingResult> Authorize(AuthorizeMessage message);
    [Alias("Capture")] Task<PostingResult> Capture(CaptureMessage message);
    [Alias("Reverse")] Task<PostingResult> Reverse(ReverseMessage message);
    [Alias("Refund")] Task<PostingResult> Refund(RefundMessage message);
    [Alias("GetBalance")] Task<BalanceView> GetBalance();
    [Alias("ChooseCategories")] Task<BalanceView> ChooseCategories(string month, string[] categories);
    [Alias("GetStatement")] Task<StatementPage> GetStatement(int pageSize, long beforeSequence);
    [Alias("IsEnrolled")] Task<bool> IsEnrolled();
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

    public static string Member(string memberId) => MemberPrefix + memberId;

    public static string Card(string cardId) => CardPrefix + cardId;

    /// <summary>The business id inside a grain key.</summary>
    public static string IdOf(string grainKey) => grainKey.Length > 2 && grainKey[1] == '/' ? grainKey[2..] : grainKey;

    public static IMemberGrain MemberGrain(this IGrainFactory grains, string memberId) => grains.GetGrain<IMemberGrain>(Member(memberId));

    public static ICardGrain CardGrain(this IGrainFactory grains, string cardId) => grains.GetGrain<ICardGrain>(Card(cardId));
}
