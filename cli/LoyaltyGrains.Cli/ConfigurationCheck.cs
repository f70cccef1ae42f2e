using System.Globalization;
using System.Net;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace LoyaltyGrains.Cli;

/// <summary>
/// Every setting the engine reads at start, checked before anything starts: a bad one is one line that names the
/// setting (the LOYALTY_* variable when that is where it came from) and the bad value, and exit 2 — not an exception
/// from deep inside the host. The table is the one place that says what form each setting takes; README.md,
/// "Configuration", lists them for operators.
/// </summary>
public static class ConfigurationCheck
{
    private enum Kind
    {
        Address,
        Port,
        /// <summary>A time span above zero (hh:mm:ss, or d.hh:mm:ss).</summary>
        Duration,
        /// <summary>A time span of zero or more.</summary>
        DurationOrZero,
        Number,
        Flag,
        AbsoluteUri,
        ConnectionString,
    }

    private sealed record Setting(string Key, string? Variable, Kind Kind, long Min = 0, long Max = 0);

    private static readonly Setting[] Settings =
    [
        new("Loyalty:ListenAddress", "LOYALTY_LISTEN_ADDRESS", Kind.Address),
        new("Loyalty:AdvertisedAddress", "LOYALTY_ADVERTISED_ADDRESS", Kind.Address),
        new("Loyalty:GrpcPort", "LOYALTY_GRPC_PORT", Kind.Port),
        new("Loyalty:MetricsPort", "LOYALTY_METRICS_PORT", Kind.Port),
        new("Loyalty:SiloPort", "LOYALTY_SILO_PORT", Kind.Port),
        new("Loyalty:GatewayPort", "LOYALTY_GATEWAY_PORT", Kind.Port),
        new("ConnectionStrings:Postgres", CliOptions.PostgresVariable, Kind.ConnectionString),
        new("Loyalty:GrainCollection:CollectionAge", null, Kind.Duration),
        new("Loyalty:GrainCollection:CollectionQuantum", null, Kind.Duration),
        new("Loyalty:GrainDirectory:CacheSize", null, Kind.Number, 0, 100_000_000),
        new("Loyalty:Ledger:CommitTimeout", null, Kind.Duration),
        new("Loyalty:Ledger:BatchDelayMax", null, Kind.DurationOrZero),
        new("Loyalty:Ledger:Writers", null, Kind.Number, 1, 16),
        new("Loyalty:Ledger:BatchEntriesMax", null, Kind.Number, 1, 100_000),
        new("Loyalty:Database:StartupWait", null, Kind.Duration),
        new("Loyalty:Database:ApplyMigrations", null, Kind.Flag),
        new("Loyalty:ShutdownTimeout", null, Kind.Duration),
        new("Loyalty:InlineScheduling", null, Kind.Flag),
        new("Loyalty:Reflection", null, Kind.Flag),
        new("Loyalty:Settlement:PollInterval", null, Kind.Duration),
        new("Loyalty:Settlement:RedeliverAfter", null, Kind.Duration),
        new("Loyalty:Settlement:Queues", null, Kind.Number, 1, 64),
        new("Loyalty:Auth:ClockSkew", null, Kind.DurationOrZero),
        new("Loyalty:Auth:RememberValidatedTokens", null, Kind.Flag),
        new("Loyalty:Auth:RequireHttpsMetadata", null, Kind.Flag),
        new("Loyalty:Auth:Authority", null, Kind.AbsoluteUri),
        new("Loyalty:Auth:MetadataAddress", null, Kind.AbsoluteUri),
        new("Loyalty:Tls:RequireClientCertificate", null, Kind.Flag),
        new("Loyalty:Limits:PostingAgeMax", null, Kind.Duration),
        new("Loyalty:Limits:RequestsPerSecond", null, Kind.Number, 1, int.MaxValue),
        new("Loyalty:Limits:AppRequestsPerSecond", null, Kind.Number, 1, int.MaxValue),
        new("Loyalty:Limits:EnrollmentsPerSecond", null, Kind.Number, 1, int.MaxValue),
        new("Loyalty:Limits:AdminCallsPerMinute", null, Kind.Number, 1, int.MaxValue),
        new("Loyalty:Limits:WatchStreamsPerSubject", null, Kind.Number, 1, int.MaxValue),
        new("Loyalty:Limits:WatchStreamsPerProcess", null, Kind.Number, 1, int.MaxValue),
        new("Loyalty:Audit:QueueCapacity", null, Kind.Number, 1, 10_000_000),
        new("Loyalty:Audit:DurableWait", null, Kind.Duration),
    ];

    /// <summary>The first bad setting as one line, or null when every setting is well formed.</summary>
    public static string? FirstError(IConfiguration configuration)
    {
        foreach (var setting in Settings)
        {
            var fromVariable = setting.Variable is not null && Environment.GetEnvironmentVariable(setting.Variable) is { Length: > 0 };
            var text = fromVariable ? Environment.GetEnvironmentVariable(setting.Variable!) : configuration[setting.Key];
            if (text is null) continue;
            var name = fromVariable ? setting.Variable! : setting.Key;
            if (Problem(setting, text.Trim()) is { } problem) return $"configuration: {name} {problem}";
        }
        // Settings that are each well formed but do not fit together.
        var commitTimeout = DurationOr(configuration, "Loyalty:Ledger:CommitTimeout", TimeSpan.FromSeconds(5));
        if (DurationOr(configuration, "Loyalty:Ledger:BatchDelayMax", TimeSpan.Zero) is var delay && delay >= commitTimeout)
        {
            return $"configuration: Loyalty:Ledger:BatchDelayMax = '{delay}' must be below Loyalty:Ledger:CommitTimeout ('{commitTimeout}')";
        }
        return null;
    }

    /// <summary>A connection string PostgreSQL's client accepts; its text is never echoed (it may hold a password).</summary>
    public static void RequireConnectionString(string connectionString)
    {
        if (Problem(new Setting("ConnectionStrings:Postgres", CliOptions.PostgresVariable, Kind.ConnectionString), connectionString) is { } problem)
        {
            throw new CommandLineException($"{CliOptions.PostgresVariable} {problem}");
        }
    }

    public static TimeSpan StartupWait(IConfiguration configuration) => DurationOr(configuration, "Loyalty:Database:StartupWait", TimeSpan.FromMinutes(10));

    private static TimeSpan DurationOr(IConfiguration configuration, string key, TimeSpan fallback) =>
        TimeSpan.TryParse(configuration[key], CultureInfo.InvariantCulture, out var value) ? value : fallback;

    private static string? Problem(Setting setting, string text)
    {
        switch (setting.Kind)
        {
            case Kind.Address:
                return IPAddress.TryParse(text, out _) ? null : $"= '{text}' is not an IP address (e.g. 127.0.0.1, 0.0.0.0, ::1; host names are not resolved)";
            case Kind.Port:
                return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and < 65536
                    ? null
                    : $"= '{text}' is not a TCP port (1 to 65535)";
            case Kind.Duration or Kind.DurationOrZero:
                if (!TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var duration))
                {
                    return $"= '{text}' is not a duration: write it as hh:mm:ss or d.hh:mm:ss (e.g. 00:00:05 for five seconds)";
                }
                if (setting.Kind == Kind.Duration ? duration <= TimeSpan.Zero : duration < TimeSpan.Zero)
                {
                    return $"= '{text}' must be {(setting.Kind == Kind.Duration ? "above zero" : "zero or more")}";
                }
                return null;
            case Kind.Number:
                return long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number) && number >= setting.Min && number <= setting.Max
                    ? null
                    : string.Create(CultureInfo.InvariantCulture, $"= '{text}' is not a whole number from {setting.Min} to {setting.Max}");
            case Kind.Flag:
                return bool.TryParse(text, out _) ? null : $"= '{text}' is not true or false";
            case Kind.AbsoluteUri:
                return text.Length == 0 || Uri.TryCreate(text, UriKind.Absolute, out _) ? null : $"= '{text}' is not an absolute URL";
            case Kind.ConnectionString:
                try
                {
                    var builder = new NpgsqlConnectionStringBuilder(text);
                    return string.IsNullOrEmpty(builder.Host) ? "has no Host: expected Host=…;Port=5432;Username=…;Password=…;Database=…" : null;
                }
                catch (ArgumentException ex)
                {
                    return $"is not a PostgreSQL connection string ({ex.Message})";
                }
            default:
                return null;
        }
    }
}
