namespace LoyaltyGrains.Domain;

/// <summary>
/// The documented maxima of the engine (docs/RULES.md, "Limits"). Every amount, rate, list and string that crosses the
/// public contract is checked against one of these, with the field named, before anything changes. They are chosen so
/// that no sum the engine forms from bounded values can come near <see cref="long.MaxValue"/>: arithmetic on money is
/// then checked by construction, and a checked overflow anywhere is a bug, never a wrap.
/// </summary>
public static class Limits
{
    // ------------------------------------------------------------------ money (minor units) and rates

    /// <summary>One purchase: 10 billion roubles. Anything larger is a unit mistake, not a purchase.</summary>
    public const long PurchaseAmountMinorMax = 1_000_000_000_000;

    /// <summary>A fixed bonus, referral bonus, per-member cap or monthly cap: 100 million roubles.</summary>
    public const long BonusMinorMax = 10_000_000_000;

    /// <summary>A campaign's total budget, a tier's spend threshold: 1 trillion roubles.</summary>
    public const long BudgetMinorMax = 100_000_000_000_000;

    /// <summary>
    /// A member's available or pending balance, either sign: 10 trillion roubles. The limits above keep balances far
    /// below it (a million maximum purchases at 100%); past <see cref="long.MaxValue"/> the domain's checked arithmetic
    /// throws rather than wraps.
    /// </summary>
    public const long BalanceMinorMax = 1_000_000_000_000_000;

    /// <summary>Rates in basis points: 10 000 = 100%.</summary>
    public const int RateBpsMax = 10_000;

    /// <summary>A campaign's first-N members (max_members).</summary>
    public const int CampaignMembersCountMax = 100_000_000;

    /// <summary>A campaign's stacking_order, either sign: an ordering key, not a quantity.</summary>
    public const int StackingOrderMax = 1_000_000;

    // ------------------------------------------------------------------ strings

    /// <summary>Ids (transaction, card, member, merchant, partner, campaign, tier): 1–64 of [A-Za-z0-9_.-].</summary>
    public const int IdLengthMax = 64;

    /// <summary>Display names (campaign, partner).</summary>
    public const int NameLengthMax = 200;

    /// <summary>A category name (catalogue categories are far shorter).</summary>
    public const int CategoryLengthMax = 64;

    /// <summary>An ISO 4217 currency code: exactly three upper-case letters.</summary>
    public const int CurrencyLength = 3;

    /// <summary>Characters of a refused value quoted back in an error message.</summary>
    public const int EchoedValueLengthMax = 100;

    /// <summary>Characters of an error message: a refusal listing many problems lists the first ones and counts the rest.</summary>
    public const int ErrorMessageLengthMax = 512;

    // ------------------------------------------------------------------ lists (each also free of duplicates)

    public const int TiersCountMax = 16;

    /// <summary>Categories a member may choose for a month (tier allowance plus premium extra).</summary>
    public const int ChosenCategoriesCountMax = 10;

    /// <summary>The programme's offered categories and category rate overrides (the catalogue has fewer).</summary>
    public const int CategoriesCountMax = 64;

    /// <summary>The programme's own excluded MCCs, and a campaign's MCC filter.</summary>
    public const int MccsCountMax = 1_000;

    public const int CurrenciesCountMax = 16;

    /// <summary>A campaign's merchant filter.</summary>
    public const int MerchantIdsCountMax = 1_000;

    /// <summary>Reversals waiting for their authorization, per member; they also expire after the authorization hold.</summary>
    public const int ParkedReversalsMax = 256;

    // ------------------------------------------------------------------ programme settings

    public const int AuthorizationHoldDaysMax = 365;
    public const int ExpiryMonthsMax = 120;
    public const int UtcOffsetMinutesMin = -720;
    public const int UtcOffsetMinutesMax = 840;

    // ------------------------------------------------------------------ time

    /// <summary>No instant the engine keeps (campaign windows, programme versions) precedes this: the default programme starts here.</summary>
    public static readonly DateTimeOffset TimeMin = DateTimeOffset.UnixEpoch;

    /// <summary>Nor follows this: far enough for any real campaign, near enough that date arithmetic (expiry months) never overflows.</summary>
    public static readonly DateTimeOffset TimeMax = new(2100, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>A posting's occurred_at may be ahead of the engine's clock by at most this (processor clock skew).</summary>
    public static readonly TimeSpan PostingFutureSkewMax = TimeSpan.FromHours(24);

    /// <summary>Default oldest posting accepted (gateway setting Loyalty:Limits:PostingAgeMax): a year of late clearing and refunds.</summary>
    public static readonly TimeSpan PostingAgeMaxDefault = TimeSpan.FromDays(400);

    /// <summary>A programme version may be scheduled at most this far ahead: a later change must not be blocked for longer.</summary>
    public static readonly TimeSpan ProgramEffectiveAheadMax = TimeSpan.FromDays(366);

    /// <summary>A campaign may end at most this far ahead of its upsert.</summary>
    public static readonly TimeSpan CampaignEndsAheadMax = TimeSpan.FromDays(3 * 366);

    /// <summary>Whether a value is an id: 1–64 of [A-Za-z0-9_.-].</summary>
    public static bool IsId(string value)
    {
        if (value.Length is 0 or > IdLengthMax) return false;
        foreach (var ch in value)
        {
            if (!(char.IsAsciiLetterOrDigit(ch) || ch is '_' or '.' or '-')) return false;
        }
        return true;
    }

    /// <summary>Whether a value is an ISO 4217-shaped code: three ASCII upper-case letters.</summary>
    public static bool IsCurrency(string value) => value.Length == CurrencyLength && value.All(char.IsAsciiLetterUpper);
}
