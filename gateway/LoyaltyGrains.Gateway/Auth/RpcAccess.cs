using System.Collections.Frozen;
using System.Security.Claims;

namespace LoyaltyGrains.Gateway.Auth;

[Flags]
public enum Roles
{
    None = 0,
    Processor = 1,
    App = 2,
    Partner = 4,
    Admin = 8,
    /// <summary>Reads programme analytics (Analytics service) and nothing else.</summary>
    Analyst = 16,
}

/// <summary>Token claim names and role values.</summary>
public static class LoyaltyClaims
{
    public const string Subject = "sub";
    public const string Role = "role";
    public const string PartnerId = "partner_id";
    public const string TokenId = "jti";

    public const string Processor = "processor";
    public const string App = "app";
    public const string Partner = "partner";
    public const string Admin = "admin";
    public const string Analyst = "analyst";

    public static Roles Parse(string role) => role switch
    {
        Processor => Roles.Processor,
        App => Roles.App,
        Partner => Roles.Partner,
        Admin => Roles.Admin,
        Analyst => Roles.Analyst,
        _ => Roles.None,
    };

    public static string Format(Roles roles) => string.Join(',', Names(roles));

    public static IEnumerable<string> Names(Roles roles)
    {
        if (roles.HasFlag(Roles.Processor)) yield return Processor;
        if (roles.HasFlag(Roles.App)) yield return App;
        if (roles.HasFlag(Roles.Partner)) yield return Partner;
        if (roles.HasFlag(Roles.Admin)) yield return Admin;
        if (roles.HasFlag(Roles.Analyst)) yield return Analyst;
    }
}

/// <summary>Who is calling, from a validated token: the subject (an app's member), roles, and a partner's id.</summary>
public readonly record struct Caller(string Subject, Roles Roles, string PartnerId)
{
    public static readonly Caller Anonymous = new("", Roles.None, "");

    public bool Has(Roles role) => (Roles & role) != 0;

    /// <summary>An app token speaks for the member named by its subject.</summary>
    public string MemberId => Has(Roles.App) ? Subject : "";

    public static Caller From(ClaimsPrincipal? user)
    {
        if (user?.Identity?.IsAuthenticated != true) return Anonymous;
        var roles = Roles.None;
        var subject = "";
        var partner = "";
        foreach (var claim in user.Claims)
        {
            switch (claim.Type)
            {
                case LoyaltyClaims.Role:
                    roles |= LoyaltyClaims.Parse(claim.Value);
                    break;
                case LoyaltyClaims.Subject:
                    subject = claim.Value;
                    break;
                case LoyaltyClaims.PartnerId:
                    partner = claim.Value;
                    break;
            }
        }
        return new Caller(subject, roles, partner);
    }
}

/// <summary>Which rate-limit budget a call spends.</summary>
public enum RateClass
{
    Calls,
    Enrollment,
    Admin,
}

/// <summary>One RPC's rule: the roles that may call it, its budget, whether it is audited.</summary>
public sealed record RpcRule(string Method, Roles Roles, RateClass Rate, bool Audited);

/// <summary>
/// The role matrix, in one table: which roles may call each <c>loyalty.v1</c> RPC. The roles gate is enforced by ASP.NET
/// authorization before the call is read; which member or partner an app or partner token may touch is checked from the
/// request by <see cref="CallerAccessInterceptor"/> before any grain is called. A method missing here is admin-only.
/// </summary>
public static class RpcAccess
{
    public const string Package = "loyalty.v1";

    private const Roles Members = Roles.App | Roles.Admin;

    public static readonly FrozenDictionary<string, RpcRule> Rules = new RpcRule[]
    {
        new("/loyalty.v1.Processing/Authorize", Roles.Processor, RateClass.Calls, false),
        new("/loyalty.v1.Processing/Capture", Roles.Processor, RateClass.Calls, false),
        new("/loyalty.v1.Processing/Reverse", Roles.Processor, RateClass.Calls, false),
        new("/loyalty.v1.Processing/Refund", Roles.Processor, RateClass.Calls, false),
        new("/loyalty.v1.Processing/Post", Roles.Processor, RateClass.Calls, false),
        new("/loyalty.v1.Balances/GetBalance", Members, RateClass.Calls, false),
        new("/loyalty.v1.Balances/WatchBalance", Members, RateClass.Calls, false),
        new("/loyalty.v1.Balances/GetStatement", Members, RateClass.Calls, false),
        new("/loyalty.v1.Balances/ChooseCategories", Members, RateClass.Calls, false),
        new("/loyalty.v1.Balances/Redeem", Members | Roles.Partner, RateClass.Calls, true),
        new("/loyalty.v1.Offers/CheckEligibility", Members | Roles.Partner, RateClass.Calls, false),
        new("/loyalty.v1.Offers/ListOffers", Members, RateClass.Calls, false),
        new("/loyalty.v1.Offers/ActivateOffer", Members, RateClass.Calls, false),
        new("/loyalty.v1.Offers/GetPayouts", Roles.Partner | Roles.Admin, RateClass.Calls, false),
        new("/loyalty.v1.Admin/EnrollMember", Roles.Admin, RateClass.Enrollment, true),
        new("/loyalty.v1.Admin/IssueCard", Roles.Admin, RateClass.Enrollment, true),
        new("/loyalty.v1.Admin/BlockCard", Roles.Admin, RateClass.Admin, true),
        new("/loyalty.v1.Admin/GetProgram", Roles.Admin, RateClass.Admin, true),
        new("/loyalty.v1.Admin/SetProgram", Roles.Admin, RateClass.Admin, true),
        new("/loyalty.v1.Admin/UpsertCampaign", Roles.Admin, RateClass.Admin, true),
        new("/loyalty.v1.Admin/UpsertPartner", Roles.Admin, RateClass.Admin, true),
        new("/loyalty.v1.Analytics/GetProgramStats", Roles.Admin | Roles.Analyst, RateClass.Admin, true),
        new("/loyalty.v1.Analytics/ReplayProgram", Roles.Admin | Roles.Analyst, RateClass.Admin, true),
    }.ToFrozenDictionary(r => r.Method, StringComparer.Ordinal);

    /// <summary>
    /// The rule for a <c>loyalty.v1</c> method (one added to a proto but not to this table is admin-only and audited until
    /// someone decides); null for other services (health, reflection), which this table does not govern.
    /// </summary>
    public static RpcRule? Find(string method)
    {
        if (Rules.TryGetValue(method, out var rule)) return rule;
        return method.StartsWith("/" + Package + ".", StringComparison.Ordinal) ? new RpcRule(method, Roles.Admin, RateClass.Admin, true) : null;
    }

    public static RpcRule For(string method) => Find(method) ?? throw new ArgumentException($"{method} is not a {Package} method", nameof(method));

    /// <summary>"/loyalty.v1.Admin/BlockCard" → "Admin/BlockCard".</summary>
    public static string ShortName(string method) =>
        method.StartsWith("/" + Package + ".", StringComparison.Ordinal) ? method[(Package.Length + 2)..] : method.TrimStart('/');
}
