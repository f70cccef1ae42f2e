namespace LoyaltyGrains.Domain;

/// <summary>
/// The programme calendar (docs/RULES.md, "Caps", "Tiers"): months, caps, tiers, choice deadlines and lot expiry are kept
/// in one fixed UTC offset, the programme's <see cref="ProgramConfig.UtcOffsetMinutes"/>.
/// </summary>
public static class ProgramCalendar
{
    /// <summary>The default offset (Moscow, UTC+3), for a programme that names none and for reports asked for none.</summary>
    public const int DefaultUtcOffsetMinutes = 180;
}
