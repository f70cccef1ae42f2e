using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using LoyaltyGrains.Contracts;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.Gateway.Grpc;

/// <summary>GetPayouts: the request's time range as UTC days, and a partner's day totals as a statement.</summary>
public static class PayoutMapping
{
    public const int DaysMax = 366;

    /// <summary>The UTC days [fromDay, toDay) that the half-open range [from, to) touches.</summary>
    public static (DateTime FromDay, DateTime ToDay) Days(GetPayoutsRequest request)
    {
        // Within the engine's documented time range, so the whole days around them are representable too.
        var from = Validate.Instant(request.From, "from").UtcDateTime;
        var to = Validate.Instant(request.To, "to").UtcDateTime;
        if (to <= from) throw Validate.Invalid("to", "must be later than from");
        var fromDay = from.Date;
        var toDay = to == to.Date ? to : to.Date.AddDays(1);
        if ((toDay - fromDay).TotalDays > DaysMax) throw Validate.Invalid("to", $"the range spans more than {DaysMax} days");
        return (fromDay, toDay);
    }

    public static PayoutStatement ToStatement(PayoutReport report)
    {
        var statement = new PayoutStatement
        {
            PartnerId = report.PartnerId,
            CompleteThrough = Timestamp.FromDateTime(DateTime.SpecifyKind(report.CompleteThroughUtc, DateTimeKind.Utc)),
            UndeliveredEvents = report.UndeliveredEvents,
            Totals = new PayoutLine { Day = "" },
        };
        foreach (var day in report.Days)
        {
            statement.Lines.Add(new PayoutLine
            {
                Day = day.Day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), AccruedMinor = day.AccruedMinor,
                ClawedBackMinor = day.ClawedBackMinor, RedeemedMinor = day.RedeemedMinor, NetMinor = day.NetMinor,
            });
            statement.Totals.AccruedMinor += day.AccruedMinor;
            statement.Totals.ClawedBackMinor += day.ClawedBackMinor;
            statement.Totals.RedeemedMinor += day.RedeemedMinor;
            statement.Totals.NetMinor += day.NetMinor;
        }
        return statement;
    }
}
