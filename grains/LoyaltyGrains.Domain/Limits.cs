namespace LoyaltyGrains.Domain;

/// <summary>
/// The documented maxima of the engine (docs/RULES.md, "Limits"). Every amount, rate, list and string that crosses the
/// public contract is checked against one of these, with the field named, before anything changes. They are chosen so
/// that no sum the engine forms from bounded values can come near <see cref="long.MaxValue"/>: arithmetic on money is
/// then checked by construction, and a checked overflow anywhere is a bug, never a wrap.
/// </summary>
public static class Limits
{
    /// <summary>Ids (transaction, card, member, merchant, partner, campaign, tier): 1–64 of [A-Za-z0-9_.-].</summary>
    public const int IdLengthMax = 64;

    /// <summary>One purchase: 10 billion roubles. Anything larger is a unit mistake, not a purchase.</summary>
    public const long PurchaseAmountMinorMax = 1_000_000_000_000;

    /// <summary>A fixed bonus, referral bonus, per-member cap or monthly cap: 100 million roubles.</summary>
    public const long BonusMinorMax = 10_000_000_000;

    /// <summary>A campaign's total budget, a tier's spend threshold: 1 trillion roubles.</summary>
    public const long BudgetMinorMax = 100_000_000_000_000;

    /// <summary>A member's available or pending balance, either sign: 10 trillion roubles; a posting past it is refused.</summary>
    public const long BalanceMinorMax = 1_000_000_000_000_000;

    /// <summary>Rates in basis points: 10 000 = 100%.</summary>
    public const int RateBpsMax = 10_000;

    /// <summary>Reversals waiting for their authorization, per member; they also expire after the authorization hold.</summary>
    public const int ParkedReversalsMax = 256;

    /// <summary>Characters of a refused value quoted back in an error message.</summary>
    public const int EchoedValueLengthMax = 100;
}
