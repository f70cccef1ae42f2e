namespace LoyaltyGrains.Domain;

/// <summary>Integer money arithmetic in minor units (kopecks). No floating point anywhere.</summary>
public static class Money
{
    public const int BasisPointsPerUnit = 10_000;

    /// <summary>amount × bps / 10 000, truncated towards zero; 128-bit intermediate, and a result past long throws.</summary>
    public static long ApplyBps(long amountMinor, int rateBps) =>
        checked((long)((Int128)amountMinor * rateBps / BasisPointsPerUnit));

    /// <summary>value × numerator / denominator truncated towards zero (proportional reversal and clawback).</summary>
    public static long Proportion(long value, long numerator, long denominator)
    {
        if (denominator <= 0) throw new ArgumentOutOfRangeException(nameof(denominator), denominator, "must be positive");
        return checked((long)((Int128)value * numerator / denominator));
    }

    /// <summary>Floors a non-negative amount to whole bonuses (100 minor); negatives round towards zero.</summary>
    public static long FloorToWholeBonus(long amountMinor) => amountMinor / 100 * 100;

    public static string Format(long amountMinor) =>
        (amountMinor < 0 ? "-" : "") + (Math.Abs(amountMinor) / 100).ToString(System.Globalization.CultureInfo.InvariantCulture)
        + "." + (Math.Abs(amountMinor) % 100).ToString("00", System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>A calendar month in the program's time zone, as yyyy*100+mm (202611).</summary>
public readonly record struct MonthKey(int Value) : IComparable<MonthKey>
{
    public int Year => Value / 100;
    public int Month => Value % 100;

    public static MonthKey Of(DateTimeOffset instant, int utcOffsetMinutes)
    {
        var local = instant.ToUniversalTime().AddMinutes(utcOffsetMinutes);
        return new MonthKey(local.Year * 100 + local.Month);
    }

    public MonthKey Previous() => Month == 1 ? new MonthKey((Year - 1) * 100 + 12) : new MonthKey(Value - 1);

    public MonthKey Next() => Month == 12 ? new MonthKey((Year + 1) * 100 + 1) : new MonthKey(Value + 1);

    public static bool TryParse(string? text, out MonthKey month)
    {
        month = default;
        if (text is null || text.Length != 7 || text[4] != '-') return false;
        if (!int.TryParse(text.AsSpan(0, 4), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var year)) return false;
        if (!int.TryParse(text.AsSpan(5, 2), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var mm)) return false;
        if (year < 2000 || year > 9999 || mm < 1 || mm > 12) return false;
        month = new MonthKey(year * 100 + mm);
        return true;
    }

    public int CompareTo(MonthKey other) => Value.CompareTo(other.Value);

    public static bool operator <(MonthKey left, MonthKey right) => left.Value < right.Value;

    public static bool operator >(MonthKey left, MonthKey right) => left.Value > right.Value;

    public static bool operator <=(MonthKey left, MonthKey right) => left.Value <= right.Value;

    public static bool operator >=(MonthKey left, MonthKey right) => left.Value >= right.Value;

    public override string ToString() => $"{Year:D4}-{Month:D2}";
}
