using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Analytics;

/// <summary>
/// What a stats run covers: the period [From, To) of ledger recorded_at, optional filters on purchases (empty: all), and
/// the programme calendar's UTC offset (months, cohorts). Figures are defined in docs/ANALYTICS.md.
/// </summary>
public sealed record StatsRequest(DateTimeOffset From, DateTimeOffset To)
{
    public string Tier { get; init; } = "";
    public string Category { get; init; } = "";
    public string Partner { get; init; } = "";
    public string Campaign { get; init; } = "";
    public int UtcOffsetMinutes { get; init; } = ProgramCalendar.DefaultUtcOffsetMinutes;

    /// <summary>Cohorts (enrolment months) and months since enrolment shown at most; older cohorts are left out.</summary>
    public const int CohortMonthsMax = 24;

    /// <summary>Every reason the request cannot run, each naming its field; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (From < Limits.TimeMin || From >= Limits.TimeMax) errors.Add($"from: must be {Limits.TimeMin:yyyy-MM-dd}..{Limits.TimeMax:yyyy-MM-dd}");
        if (To <= From) errors.Add("to: must be after from");
        else if (To > Limits.TimeMax) errors.Add($"to: must be at most {Limits.TimeMax:yyyy-MM-dd}");
        CheckId(errors, "tier", Tier);
        CheckId(errors, "category", Category);
        CheckId(errors, "partner_id", Partner);
        CheckId(errors, "campaign_id", Campaign);
        if (UtcOffsetMinutes is < Limits.UtcOffsetMinutesMin or > Limits.UtcOffsetMinutesMax)
        {
            errors.Add($"utc_offset_minutes: must be {Limits.UtcOffsetMinutesMin}..{Limits.UtcOffsetMinutesMax}");
        }
        return errors;
    }

    private static void CheckId(List<string> errors, string field, string value)
    {
        if (value.Length > 0 && !Limits.IsId(value)) errors.Add($"{field}: {Echo.Quote(value)} is not an id (1-{Limits.IdLengthMax} of A-Z a-z 0-9 _ . -)");
    }
}

/// <summary>Headline figures of the period. Money in minor units; ratios as exact fractions (numerator, denominator).</summary>
public sealed record StatsSummary(
    long ActiveMembers,
    long Purchases,
    long RepeatMembers,
    long CapturedMinor,
    long NetSpendMinor,
    long CashbackMinor,
    long AccruedMinor,
    long RedeemedMinor,
    long ExpiredMinor,
    long AvailableMinor,
    long PendingMinor,
    long Expiring30Minor,
    long Expiring60Minor,
    long Expiring90Minor)
{
    public long LiabilityMinor => checked(AvailableMinor + PendingMinor);

    /// <summary>Average check: captured amount per purchase, minor units rounded half away from zero.</summary>
    public long AverageCheckMinor => Ratio.Divide(CapturedMinor, Purchases);

    /// <summary>Effective cashback rate in basis points of net spend.</summary>
    public long EffectiveRateBps => Ratio.Bps(CashbackMinor, NetSpendMinor);

    public long RedemptionRateBps => Ratio.Bps(RedeemedMinor, AccruedMinor);

    public long RepeatRateBps => Ratio.Bps(RepeatMembers, ActiveMembers);
}

/// <summary>One row of a breakdown: a key (category, tier, campaign, funder or month) and its purchases and money.</summary>
public sealed record StatsGroup(string Key, long Purchases, long ActiveMembers, long NetSpendMinor, long CashbackMinor)
{
    public long EffectiveRateBps => Ratio.Bps(CashbackMinor, NetSpendMinor);
}

/// <summary>Cashback of one category in one programme month (the cost-over-time chart).</summary>
public sealed record MonthCategoryCost(int Month, string Category, long NetSpendMinor, long CashbackMinor);

/// <summary>Members active in a month, and how many of them were active again the next month.</summary>
public sealed record MonthRetention(int Month, long ActiveMembers, long RetainedNextMonth)
{
    public long RetentionBps => Ratio.Bps(RetainedNextMonth, ActiveMembers);
}

/// <summary>A cohort (members enrolled in one month) and how many of them were active k months later.</summary>
public sealed record CohortCell(int CohortMonth, int MonthsSinceEnrolment, long CohortSize, long ActiveMembers)
{
    public long ActiveBps => Ratio.Bps(ActiveMembers, CohortSize);
}

/// <summary>Everything one stats run computes.</summary>
public sealed record ProgramStats(
    StatsRequest Request,
    StatsSummary Summary,
    IReadOnlyList<StatsGroup> ByCategory,
    IReadOnlyList<StatsGroup> ByTier,
    IReadOnlyList<StatsGroup> ByCampaign,
    IReadOnlyList<StatsGroup> ByFunder,
    IReadOnlyList<MonthCategoryCost> CostByMonth,
    IReadOnlyList<MonthRetention> Retention,
    IReadOnlyList<CohortCell> Cohorts);

/// <summary>Integer ratios for reports: no floating point touches money.</summary>
public static class Ratio
{
    /// <summary>numerator / denominator rounded half away from zero; 0 when the denominator is 0.</summary>
    public static long Divide(long numerator, long denominator) => Divide((Int128)numerator, denominator);

    /// <summary>numerator / denominator in basis points (10 000 = 100%), rounded half away from zero.</summary>
    public static long Bps(long numerator, long denominator) => Divide((Int128)numerator * 10_000, denominator);

    private static long Divide(Int128 numerator, long denominator)
    {
        if (denominator == 0) return 0;
        var (quotient, remainder) = Int128.DivRem(numerator, denominator);
        if (Int128.Abs(remainder) * 2 >= Int128.Abs(denominator)) quotient += (numerator < 0) == (denominator < 0) ? 1 : -1;
        return checked((long)quotient);
    }

    /// <summary>Basis points as a percentage with two decimals: 1234 → "12.34%".</summary>
    public static string Percent(long bps) => Units(bps) + "%";

    /// <summary>Minor units as a decimal with two places, from the integer alone: -1234 → "-12.34".</summary>
    public static string Units(long minor)
    {
        var magnitude = minor < 0 ? (ulong)(-(minor + 1)) + 1 : (ulong)minor;
        return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{(minor < 0 ? "-" : "")}{magnitude / 100}.{magnitude % 100:00}");
    }
}
