using System.Globalization;

namespace LoyaltyGrains.LoadTests;

public sealed record LoadOptions
{
    public string Target { get; init; } = "http://127.0.0.1:5000";
    public string Scenario { get; init; } = "peak-day";
    public double RatePerSecond { get; init; } = 500;
    /// <summary>When set, the rate rises linearly from RatePerSecond to this over the measured duration.</summary>
    public double? RampToPerSecond { get; init; }
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(5);
    public int Connections { get; init; } = 4;
    public int Members { get; init; } = 2_000;
    public int MaxInFlight { get; init; } = 2_000;
    public int Seed { get; init; } = 42;
    public bool Baseline { get; init; }
    public string? Out { get; init; }

    public const string Help = """
        LoyaltyGrains load tool: open-model load (requests are sent on schedule whatever the server does, so latency
        includes queueing), HdrHistogram percentiles, a correctness check of balances, Markdown + HTML reports.

        Usage: dotnet run --project loadtests/LoyaltyGrains.LoadTests -c Release -- [options]

          --scenario NAME      peak-day | hot-card | campaign-rush | retry-storm | bulk | echo | authorize | balance
                                                                                 (default peak-day)
          --target URL         the engine's gRPC address                        (default http://127.0.0.1:5000)
          --rate N             arrivals per second                               (default 500)
          --ramp-to N          rise linearly from --rate to N over the run       (default: constant rate)
          --duration 30s       measured time (s or m suffix)                     (default 30s)
          --warmup 5s          time at the same rate before measuring            (default 5s)
          --connections N      HTTP/2 connections to the engine                  (default 4)
          --members N          members (each with a card) the tool enrolls       (default 2000)
          --max-in-flight N    requests outstanding at most; beyond, arrivals are counted as dropped (default 2000)
          --baseline           first run the bare gRPC echo for the same time and rate, and report the ratio
          --out DIR            report folder                                     (default loadtests/out/<time>-<scenario>)
          --seed N             random seed                                       (default 42)

        Exit code: 0 when the correctness check passes, 1 when any balance or duplicate differs, 2 on bad options.
        """;

    public static LoadOptions Parse(string[] args)
    {
        var options = new LoadOptions();
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            options = args[i] switch
            {
                "--scenario" => options with { Scenario = Next() },
                "--target" => options with { Target = Next() },
                "--rate" => options with { RatePerSecond = double.Parse(Next(), CultureInfo.InvariantCulture) },
                "--ramp-to" => options with { RampToPerSecond = double.Parse(Next(), CultureInfo.InvariantCulture) },
                "--duration" => options with { Duration = ParseTime(Next()) },
                "--warmup" => options with { Warmup = ParseTime(Next()) },
                "--connections" => options with { Connections = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--members" => options with { Members = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--max-in-flight" => options with { MaxInFlight = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--seed" => options with { Seed = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--out" => options with { Out = Next() },
                "--baseline" => options with { Baseline = true },
                _ => throw new ArgumentException($"unknown option {args[i]}"),
            };
        }
        string[] scenarios = ["peak-day", "hot-card", "campaign-rush", "retry-storm", "bulk", "echo", "authorize", "balance"];
        if (!scenarios.Contains(options.Scenario)) throw new ArgumentException($"--scenario must be one of {string.Join(", ", scenarios)}");
        if (options.RatePerSecond <= 0 || options.RampToPerSecond <= 0) throw new ArgumentException("--rate and --ramp-to must be positive");
        if (options.Members < 1 || options.Connections < 1 || options.MaxInFlight < 1) throw new ArgumentException("--members, --connections, --max-in-flight must be positive");
        return options;
    }

    private static TimeSpan ParseTime(string text) => text[^1] switch
    {
        's' => TimeSpan.FromSeconds(double.Parse(text[..^1], CultureInfo.InvariantCulture)),
        'm' => TimeSpan.FromMinutes(double.Parse(text[..^1], CultureInfo.InvariantCulture)),
        _ => TimeSpan.FromSeconds(double.Parse(text, CultureInfo.InvariantCulture)),
    };
}
