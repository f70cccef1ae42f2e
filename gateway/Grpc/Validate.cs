using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace LoyaltyGrains.Gateway.Grpc;

/// <summary>Request checks at the edge: each failure is INVALID_ARGUMENT naming the field, before any grain is called.</summary>
public static class Validate
{
    public const int IdLengthMax = 64;
    /// <summary>10 billion roubles: anything larger is a unit mistake, not a purchase.</summary>
    public const long AmountMinorMax = 1_000_000_000_000;
    public static readonly TimeSpan FutureSkewMax = TimeSpan.FromHours(24);

    /// <summary>Ids are 1–64 of [A-Za-z0-9_.-]; ':' and '/' are kept for the engine's own derived ids and grain keys.</summary>
    public static string Id(string value, string field)
    {
        if (value.Length == 0) throw Invalid(field, "required");
        if (value.Length > IdLengthMax) throw Invalid(field, $"at most {IdLengthMax} characters");
        foreach (var ch in value)
        {
            if (!(char.IsAsciiLetterOrDigit(ch) || ch is '_' or '.' or '-')) throw Invalid(field, $"'{ch}' is not allowed (use A-Z a-z 0-9 _ . -)");
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
        if (value.Length != 3 || !value.All(char.IsAsciiLetterUpper)) throw Invalid(field, $"'{value}' is not an ISO 4217 code like RUB");
        return value;
    }

    /// <summary>MCC 1..9999 (ISO 18245); 0 is "not given" in proto3.</summary>
    public static int Mcc(int value, string field)
    {
        if (value is < 1 or > 9999) throw Invalid(field, $"must be an MCC 1..9999, got {value}");
        return value;
    }

    public static DateTimeOffset Time(Timestamp? value, string field, DateTimeOffset now, bool required)
    {
        if (value is null)
        {
            if (required) throw Invalid(field, "required");
            return now;
        }
        if (value.Seconds < 0 || value.Nanos is < 0 or > 999_999_999) throw Invalid(field, "not a valid timestamp");
        var time = value.ToDateTimeOffset();
        if (time > now + FutureSkewMax) throw Invalid(field, $"{time:O} is more than {FutureSkewMax.TotalHours:0} h in the future");
        return time;
    }

    /// <summary>A time the processor may leave out: null when it did (the member fills it, outside the fingerprint).</summary>
    public static DateTimeOffset? OptionalTime(Timestamp? value, string field, DateTimeOffset now) =>
        value is null ? null : Time(value, field, now, required: true);

    public static RpcException Invalid(string field, string problem) => new(new Status(StatusCode.InvalidArgument, $"{field}: {problem}"));
}
