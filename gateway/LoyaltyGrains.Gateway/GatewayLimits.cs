using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Gateway;

/// <summary>The gateway's configurable limits (section Loyalty:Limits); the fixed ones are <see cref="Limits"/>.</summary>
public sealed class GatewayLimits
{
    public const string Section = "Loyalty:Limits";

    /// <summary>
    /// The oldest occurred_at a posting may carry (default 400 days: a year of late clearing, refunds and chargebacks).
    /// Older is INVALID_ARGUMENT: a purchase from 1970 is a processor's bug, not a purchase to reward.
    /// </summary>
    public TimeSpan PostingAgeMax { get; set; } = Limits.PostingAgeMaxDefault;
}
