using Microsoft.Extensions.Logging.Console;

namespace LoyaltyGrains.Silo;

/// <summary>
/// One line per log entry, exceptions folded into it, UTC timestamps: log shippers split on newlines, and an outage must
/// read as a few entries, not pages of stack frames. appsettings.json sets the same for the host's console logger.
/// </summary>
public static class LogFormat
{
    public static void SingleLine(SimpleConsoleFormatterOptions options)
    {
        options.SingleLine = true;
        options.UseUtcTimestamp = true;
        options.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
    }
}
