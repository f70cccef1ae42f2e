using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Gateway.Grpc;

/// <summary>
/// Request checks at the edge: each failure is INVALID_ARGUMENT naming the field, before any grain is called. Limits
/// come from <see cref="Limits"/> (docs/RULES.md, "Limits"); a refused value is quoted through <see cref="Echo.Quote"/>.
/// </summary>
public static class Validate
{
    public const int IdLengthMax = Limits.IdLengthMax;
    public const long AmountMinorMax = Limits.PurchaseAmountMinorMax;
    public static readonly TimeSpan FutureSkewMax = Limits.PostingFutureSkewMax;

    /// <summary>google.protobuf.Timestamp's own range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z.</summary>
    public const long TimestampSecondsMin = -62_135_596_800;
    public const long TimestampSecondsMax = 253_402_300_799;

    /// <summary>Ids are 1–64 of [A-Za-z0-9_.-]; ':' and '/' are kept for the engine's own derived ids and grain keys.</summary>
    public static string Id(string value, string field)
    {
        if (value.Length == 0) throw Invalid(field, "required");
        if (value.Length > IdLengthMax) throw Invalid(field, $"at most {IdLengthMax} characters, got {value.Length}");
        foreach (var ch in value)
        {
            if (!(char.IsAsciiLetterOrDigit(ch) || ch is '_' or '.' or '-')) throw Invalid(field, $"{Echo.Quote(ch.ToString())} is not allowed (use A-Z a-z 0-9 _ . -)");
        }
        return value;
    }

    public static string OptionalId(string value, string field) => value.Length == 0 ? value : Id(value, field);

    public static long PositiveAmount(long value, string field)
    {
        if (value <= 0) throw Invalid(field, $"must be positive, got {value}");
        if (value > AmountMinorMax) throw Invalid(field, $"must be at most {AmountMinorMax}, got {value}");
        return value;
    }

    public static long AmountOrZero(long value, string field)
    {
        if (value < 0) throw Invalid(field, $"must be 0 (all) or positive, got {value}");
        if (value > AmountMinorMax) throw Invalid(field, $"must be at most {AmountMinorMax}, got {value}");
        return value;
    }

    public static string Currency(string value, string field)
    {
        if (!Limits.IsCurrency(value)) throw Invalid(field, $"{Echo.Quote(value)} is not an ISO 4217 code like RUB");
        return value;
    }

    /// <summary>MCC 1..9999 (ISO 18245); 0 is "not given" in proto3.</summary>
    public static int Mcc(int value, string field)
    {
        if (value is < 1 or > 9999) throw Invalid(field, $"must be an MCC 1..9999, got {value}");
        return value;
    }

    /// <summary>A display name: 1–200 characters, no control characters.</summary>
    public static string Name(string value, string field)
    {
        if (value.Length is 0 or > Limits.NameLengthMax) throw Invalid(field, $"required, at most {Limits.NameLengthMax} characters, got {value.Length}");
        if (value.Any(char.IsControl)) throw Invalid(field, $"{Echo.Quote(value)} has a control character");
        return value;
    }

    /// <summary>"YYYY-MM" (years 2000..9999).</summary>
    public static MonthKey Month(string value, string field)
    {
        if (value.Length == 0) throw Invalid(field, "required, in the form YYYY-MM");
        if (!MonthKey.TryParse(value, out var month)) throw Invalid(field, $"{Echo.Quote(value)} is not a month in the form YYYY-MM");
        return month;
    }

    /// <summary>Category names a client sends: at most <paramref name="countMax"/>, each 1–64 characters, none twice.</summary>
    public static IReadOnlyList<string> Categories(IReadOnlyList<string> values, string field, int countMax)
    {
        if (values.Count > countMax) throw Invalid(field, $"at most {countMax}, got {values.Count}");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var value in values)
        {
            if (value.Length is 0 or > Limits.CategoryLengthMax) throw Invalid(field, $"{Echo.Quote(value)} is not a category (1-{Limits.CategoryLengthMax} characters)");
            if (!seen.Add(value)) throw Invalid(field, $"{Echo.Quote(value)} is given twice");
        }
        return values;
    }

    /// <summary>A timestamp protobuf can hold: seconds within 0001-01-01..9999-12-31 and nanos 0..999 999 999.</summary>
    public static DateTimeOffset ProtoTime(Timestamp value, string field)
    {
        if (value.Seconds is < TimestampSecondsMin or > TimestampSecondsMax || value.Nanos is < 0 or > 999_999_999)
        {
            throw Invalid(field, $"not a valid timestamp (seconds {value.Seconds}, nanos {value.Nanos})");
        }
        return value.ToDateTimeOffset();
    }

    /// <summary>An instant the engine keeps (campaign windows, programme versions): within the documented range.</summary>
    public static DateTimeOffset Instant(Timestamp? value, string field)
    {
        if (value is null) throw Invalid(field, "required");
        var time = ProtoTime(value, field);
        if (time < Limits.TimeMin || time > Limits.TimeMax)
        {
            throw Invalid(field, $"{time:O} is outside {Limits.TimeMin:yyyy-MM-dd}..{Limits.TimeMax:yyyy-MM-dd}");
        }
        return time;
    }

    /// <summary>
    /// A posting's occurred_at: at most <see cref="FutureSkewMax"/> ahead of now and at most <paramref name="ageMax"/>
    /// behind it (a purchase from 1970 is a processor bug, not a purchase to reward).
    /// </summary>
    public static DateTimeOffset Time(Timestamp? value, string field, DateTimeOffset now, TimeSpan ageMax)
    {
        if (value is null) throw Invalid(field, "required");
        var time = ProtoTime(value, field);
        if (time > now + FutureSkewMax) throw Invalid(field, $"{time:O} is more than {FutureSkewMax.TotalHours:0} h in the future");
        if (time < now - ageMax) throw Invalid(field, $"{time:O} is more than {ageMax.TotalDays:0} days in the past");
        return time;
    }

    /// <summary>A posting time the processor may leave out: null when it did (the member fills it, outside the fingerprint).</summary>
    public static DateTimeOffset? OptionalTime(Timestamp? value, string field, DateTimeOffset now, TimeSpan ageMax) =>
        value is null ? null : Time(value, field, now, ageMax);

    public static RpcException Invalid(string field, string problem) => new(new Status(StatusCode.InvalidArgument, $"{field}: {problem}"));

    /// <summary>Domain validation problems as one INVALID_ARGUMENT of bounded length.</summary>
    public static RpcException Invalid(IReadOnlyList<string> problems) => new(new Status(StatusCode.InvalidArgument, Echo.Join(problems)));
}
