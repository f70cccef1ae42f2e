using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace LoyaltyGrains.Cli;

/// <summary>Options and inputs the verbs share, each parsed once with a message that names the option and the bad value.</summary>
public static class CliOptions
{
    public const string PostgresVariable = "LOYALTY_POSTGRES";

    /// <summary>A UTC day, yyyy-MM-dd.</summary>
    public static Option<DateOnly> Day(string name, string description) => new(name)
    {
        Description = description,
        Required = true,
        HelpName = "YYYY-MM-DD",
        CustomParser = result =>
        {
            var text = Single(result);
            if (DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day)) return day;
            result.AddError($"{name}: '{text}' is not a day like 2026-11-30");
            return default;
        },
    };

    /// <summary>A whole number within [min, max].</summary>
    public static Option<int> Number(string name, string description, int defaultValue, int min, int max) => new(name)
    {
        Description = description,
        HelpName = "N",
        DefaultValueFactory = _ => defaultValue,
        CustomParser = result =>
        {
            var text = Single(result);
            if (int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max) return value;
            result.AddError($"{name}: '{text}' is not a whole number from {min} to {max}");
            return defaultValue;
        },
    };

    /// <summary>A duration written as 30s, 15m, 1h, 7d, or as a .NET time span (00:00:30).</summary>
    public static Option<TimeSpan> Duration(string name, string description, TimeSpan? defaultValue) => new(name)
    {
        Description = description,
        HelpName = "30s|15m|1h|7d",
        DefaultValueFactory = defaultValue is { } value ? _ => value : null,
        CustomParser = result =>
        {
            var text = Single(result);
            if (TryParseDuration(text, out var duration)) return duration;
            result.AddError($"{name}: '{text}' is not a positive duration like 30s, 15m, 1h, 7d or 00:10:00");
            return default;
        },
    };

    /// <summary>"30s", "15m", "1h", "7d", or a positive time span (hh:mm:ss).</summary>
    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = default;
        if (text.Length >= 2 && "smhd".Contains(text[^1], StringComparison.Ordinal)
            && double.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) && value > 0 && value < 100_000)
        {
            duration = text[^1] switch
            {
                's' => TimeSpan.FromSeconds(value),
                'm' => TimeSpan.FromMinutes(value),
                'h' => TimeSpan.FromHours(value),
                _ => TimeSpan.FromDays(value),
            };
            return true;
        }
        return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out duration) && duration > TimeSpan.Zero;
    }

    /// <summary>The ledger database the analytics and export verbs read; a usage error when it is not set.</summary>
    public static string Postgres(string why) =>
        Environment.GetEnvironmentVariable(PostgresVariable) is { Length: > 0 } postgres
            ? postgres
            : throw new CommandLineException($"{PostgresVariable} is not set ({why})");

    /// <summary>What the engine reads too: appsettings.json next to the executable, then the environment.</summary>
    public static IConfiguration Configuration() => new ConfigurationBuilder()
        .SetBasePath(AppContext.BaseDirectory)
        .AddJsonFile("appsettings.json", optional: true)
        .AddEnvironmentVariables()
        .Build();

    private static string Single(ArgumentResult result) => result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
}
