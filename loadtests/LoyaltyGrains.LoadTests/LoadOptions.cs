using System.Globalization;

namespace LoyaltyGrains.LoadTests;

public sealed record LoadOptions
{
    public static readonly string[] Scenarios = ["peak-day", "hot-card", "campaign-rush", "retry-storm", "bulk", "clearing", "clearing-unary", "echo", "authorize", "balance", "cpu"];

    public string Target { get; init; } = "http://127.0.0.1:5000";
    public string Scenario { get; init; } = "peak-day";
    public double RatePerSecond { get; init; } = 500;
    /// <summary>When set, the rate rises linearly from RatePerSecond to this over the measured duration.</summary>
    public double? RampToPerSecond { get; init; }
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(5);
    public int Connections { get; init; } = 4;
    /// <summary>Processing.Post streams for the bulk scenario (0: two per connection).</summary>
    public int Streams { get; init; }
    public int Members { get; init; } = 2_000;
    public int CardsPerMember { get; init; } = 1;
    public int MaxInFlight { get; init; } = 2_000;
    public int Seed { get; init; } = 42;
    public bool Baseline { get; init; }
    public string? Out { get; init; }
    /// <summary>Each request's gRPC deadline: bounds the run; a posting that hits it has an unknown outcome and is resolved after the run.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);
    public int StatementSampleMembers { get; init; } = 100;
    public int SeedConcurrency { get; init; } = 32;
    /// <summary>A bearer token (admin+processor) to send as is.</summary>
    public string? Token { get; init; }
    /// <summary>The engine's base64 HMAC key, to mint the tool's own admin+processor token.</summary>
    public string? SigningKey { get; init; }

    /// <summary>The engine's processes (silo, or gateways and silos), measured for CPU; empty: the process listening on each --target port.</summary>
    public IReadOnlyList<int> EnginePids { get; init; } = [];
    /// <summary>PostgreSQL's port: its postmaster and backends are measured; null: every process named "postgres" on the machine.</summary>
    public int? PostgresPort { get; init; }

    public bool FindMax { get; init; }
    public TimeSpan StepDuration { get; init; } = TimeSpan.FromSeconds(5);
    public double P99ThresholdMs { get; init; } = 10;
    public double MaxErrorPercent { get; init; } = 1;
    public int MaxSteps { get; init; } = 12;

    public const string Help = """
        LoyaltyGrains load tool

        Open-model load against the engine's gRPC API: requests are sent on a fixed schedule whatever the server does,
        and each latency is measured from the request's *scheduled* send time, so a slow server shows the queue it
        builds (no coordinated omission). Percentiles from HdrHistogram; at the end every member's balance is read
        back and compared with what the replies imply. Reports: console, report.md, report.html, summary.json.

        Usage:
          dotnet run --project loadtests/LoyaltyGrains.LoadTests -c Release -- [options]

        What to run
          --scenario NAME        peak-day | hot-card | campaign-rush | retry-storm | bulk | echo |
                                 authorize | balance | cpu | clearing | clearing-unary           [peak-day]
                                   clearing: a clearing file (force-post captures sorted by card, 8 per
                                   card in a row) over Processing.Post; clearing-unary: the same items as
                                   unary Capture calls
                                   echo: a bare gRPC service the tool starts as a separate process of its own
                                   on a free loopback port (the machine's floor; needs no engine)
                                   cpu: echo, authorize and balance at --rate, then (with --find-max) the
                                   ceiling of each; one table of CPU µs per request per process and the
                                   ratios engine / echo server
          --target URL[,URL…]    the engine's h2c gRPC address(es); several (gateways of one cluster) share the
                                 connections round-robin                                    [http://127.0.0.1:5000]
          --baseline             run echo first for the same rate and time; the report gives the ratio
          --token JWT            bearer token with roles admin and processor, sent on every call
          --signing-key BASE64   the engine's HMAC key: the tool mints its own admin+processor token (24 h)
                                 [LOYALTY_AUTH_SIGNING_KEY, else the development key file the engine generated]

        Load shape (open model)
          --rate N               arrivals per second (one arrival = one flow, e.g. authorize+capture)       [500]
          --ramp-to N            rise linearly from --rate to N over the measured time           [constant rate]
          --duration T           measured time: 500ms, 10s, 2m                                              [30s]
          --warmup T             time at --rate before measuring (not in the figures)                        [5s]
          --max-in-flight N      arrivals outstanding at most; beyond it an arrival is counted as dropped
                                 (never delayed: the schedule does not pause)                              [2000]
          --timeout T            per-request deadline; bounds the run                                       [10s]
          --connections N        HTTP/2 connections (one GrpcChannel each)                                    [4]
          --streams N            Processing.Post streams in the bulk scenario                [2 per connection]

        CPU per request (every run; Linux /proc/PID/stat utime+stime over the measured window only)
          --engine-pids P[,P…]   the engine's processes (e.g. gateways and silos)
                                            [the process listening on each --target port, found via /proc/net/tcp]
          --postgres-port N      PostgreSQL's port: its postmaster and all its backends are measured
                                            [every process named postgres on the machine]
          --serve-echo PORT      run only the echo server on 127.0.0.1:PORT (0: a free port) until stdin closes;
                                 the tool starts itself so for every echo baseline

        Finding the maximum
          --find-max             ramp in steps (doubling, then bisecting) to the highest rate that holds
                                 p99 <= --p99-ms, errors+dropped <= --max-error-pct and achieved >= 95% offered;
                                 starts at --rate (after --warmup at that rate)
          --step T               time per step (after a 1s warm-up)                                          [5s]
          --p99-ms X             p99 threshold in milliseconds                                               [10]
          --max-error-pct X      errors + dropped, percent of offered                                         [1]
          --max-steps N          steps at most                                                               [12]

        Data
          --members N            members the tool enrolls (ids lt-<run>-m<N>)                              [2000]
          --cards-per-member N   cards issued to each member                                                  [1]
          --statement-sample N   members whose statement is paged and summed at the end                     [100]
          --seed N               random seed: the same seed sends the same traffic                           [42]

        Output
          --out DIR              report folder                           [loadtests/out/<utc time>-<scenario>]
          -h, --help             this text

        Exit code: 0 when the correctness check passes (balances, statements and DUPLICATE replies equal what the
        replies imply; timings never fail a run), 1 when it does not, 2 on bad options or an engine that cannot be
        reached during setup.
        """;

    public static LoadOptions Parse(string[] args)
    {
        var options = new LoadOptions();
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            var inline = (string?)null;
            var eq = name.IndexOf('=', StringComparison.Ordinal);
            if (name.StartsWith("--", StringComparison.Ordinal) && eq > 0)
            {
                inline = name[(eq + 1)..];
                name = name[..eq];
            }
            string Next() => inline ?? (i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name} needs a value"));
            options = name switch
            {
                "--scenario" => options with { Scenario = Next() },
                "--target" => options with { Target = Next() },
                "--rate" => options with { RatePerSecond = Number(name, Next()) },
                "--ramp-to" => options with { RampToPerSecond = Number(name, Next()) },
                "--duration" => options with { Duration = ParseTime(name, Next()) },
                "--warmup" => options with { Warmup = ParseTime(name, Next()) },
                "--timeout" => options with { RequestTimeout = ParseTime(name, Next()) },
                "--connections" => options with { Connections = Integer(name, Next()) },
                "--streams" => options with { Streams = Integer(name, Next()) },
                "--members" => options with { Members = Integer(name, Next()) },
                "--cards-per-member" => options with { CardsPerMember = Integer(name, Next()) },
                "--max-in-flight" => options with { MaxInFlight = Integer(name, Next()) },
                "--statement-sample" => options with { StatementSampleMembers = Integer(name, Next()) },
                "--seed" => options with { Seed = Integer(name, Next()) },
                "--out" => options with { Out = Next() },
                "--token" => options with { Token = Next() },
                "--signing-key" => options with { SigningKey = Next() },
                "--baseline" => options with { Baseline = true },
                "--find-max" => options with { FindMax = true },
                "--step" => options with { StepDuration = ParseTime(name, Next()) },
                "--p99-ms" => options with { P99ThresholdMs = Number(name, Next()) },
                "--max-error-pct" => options with { MaxErrorPercent = Number(name, Next()) },
                "--max-steps" => options with { MaxSteps = Integer(name, Next()) },
                "--engine-pids" => options with { EnginePids = [.. Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(p => Integer(name, p))] },
                "--postgres-port" => options with { PostgresPort = Integer(name, Next()) },
                _ => throw new ArgumentException($"unknown option {name}"),
            };
        }
        if (!Scenarios.Contains(options.Scenario)) throw new ArgumentException($"--scenario must be one of {string.Join(", ", Scenarios)}");
        if (options.RatePerSecond <= 0 || options.RampToPerSecond <= 0) throw new ArgumentException("--rate and --ramp-to must be positive");
        if (options.Duration <= TimeSpan.Zero || options.StepDuration <= TimeSpan.Zero || options.Warmup < TimeSpan.Zero || options.RequestTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("--duration, --step and --timeout must be positive, --warmup not negative");
        }
        if (options.Members < 1 || options.CardsPerMember < 1 || options.Connections < 1 || options.MaxInFlight < 1 || options.Streams < 0 || options.MaxSteps < 2)
        {
            throw new ArgumentException("--members, --cards-per-member, --connections, --max-in-flight must be positive; --max-steps at least 2");
        }
        if (options.FindMax && options.RampToPerSecond is not null) throw new ArgumentException("--find-max chooses the rates itself; drop --ramp-to");
        foreach (var address in options.Targets)
        {
            if (!Uri.TryCreate(address, UriKind.Absolute, out var target) || target.Scheme is not ("http" or "https"))
            {
                throw new ArgumentException("--target must be absolute http:// (h2c) or https:// URLs, comma-separated");
            }
        }
        return options;
    }

    /// <summary>The addresses of --target: one engine, or the gateways of one cluster.</summary>
    public string[] Targets => Target.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public int StreamCount => Streams > 0 ? Streams : Connections * 2;

    private string? _bearer;

    /// <summary>--token; else a token minted with --signing-key, LOYALTY_AUTH_SIGNING_KEY or the development key file; null when there is none.</summary>
    public string? BearerToken() => _bearer ??= Token ?? LoadToken.Mint(SigningKey);

    private static double Number(string name, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) ? value : throw new ArgumentException($"{name}: '{text}' is not a number");

    private static int Integer(string name, string text) =>
        int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : throw new ArgumentException($"{name}: '{text}' is not an integer");

    /// <summary>"500ms", "10s", "2m" or plain seconds.</summary>
    public static TimeSpan ParseTime(string name, string text)
    {
        var (number, unit) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 0.001)
            : text.EndsWith('s') ? (text[..^1], 1.0)
            : text.EndsWith('m') ? (text[..^1], 60.0)
            : (text, 1.0);
        return TimeSpan.FromSeconds(Number(name, number) * unit);
    }
}
