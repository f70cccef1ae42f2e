using System.CommandLine;
using Npgsql;

namespace LoyaltyGrains.Cli;

/// <summary>
/// The silo executable's command line: no verb runs the engine; a verb runs a tool and exits. Exit codes are the
/// same for every verb: 0 done, 1 a runtime failure (database unreachable, a report that does not reconcile),
/// 2 a usage or configuration error — always one line on stderr that names the argument or setting at fault.
/// </summary>
public static class LoyaltyCommandLine
{
    public const int Success = 0;
    public const int RuntimeFailure = 1;
    public const int UsageError = 2;

    /// <summary>
    /// Every verb, in the order help lists them. Adding a verb: a class with a <c>Create()</c> that returns its
    /// <see cref="Command"/> (options, help text, an action returning an exit code), and one line here.
    /// </summary>
    private static readonly Func<Command>[] Verbs =
    [
        DemoDay.Create,
        TokenVerb.Create,
        AnalyticsVerbs.CreateStats,
        AnalyticsVerbs.CreateWhatIf,
        ExportVerb.Create,
        MigrateVerb.Create,
    ];

    /// <summary>Parses <paramref name="args"/> and runs the verb, or <paramref name="engine"/> when there is none.</summary>
    public static async Task<int> RunAsync(string[] args, Func<CancellationToken, Task<int>> engine, TextWriter? output = null, TextWriter? error = null)
    {
        output ??= Console.Out;
        error ??= Console.Error;
        var root = Build(engine);
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            // One line: the first error, and where to read how it is used (the usage is not dumped on every typo).
            var verb = parsed.CommandResult.Command;
            var helpHint = verb is RootCommand ? "--help" : $"{verb.Name} --help";
            await error.WriteLineAsync($"{Name(verb)}: {parsed.Errors[0].Message} (see {helpHint})");
            return UsageError;
        }
        var invocation = new InvocationConfiguration
        {
            Output = output,
            Error = error,
            // The engine handles SIGTERM itself (a graceful drain that exits 0); the parser must not race it.
            ProcessTerminationTimeout = null,
            // Failures are mapped to exit codes below, as one line, not a stack.
            EnableDefaultExceptionHandler = false,
        };
        try
        {
            return await parsed.InvokeAsync(invocation);
        }
        catch (CommandLineException ex)
        {
            await error.WriteLineAsync($"{Name(parsed.CommandResult.Command)}: {ex.Message}");
            return ex.ExitCode;
        }
        catch (Exception ex) when (IsDatabaseUnreachable(ex))
        {
            await error.WriteLineAsync($"{Name(parsed.CommandResult.Command)}: PostgreSQL is unreachable: {ex.GetBaseException().Message}");
            return RuntimeFailure;
        }
        catch (Exception ex) when (ex is NpgsqlException or IOException or UnauthorizedAccessException)
        {
            await error.WriteLineAsync($"{Name(parsed.CommandResult.Command)}: {ex.GetBaseException().Message}");
            return RuntimeFailure;
        }
        catch (Grpc.Core.RpcException ex)
        {
            await error.WriteLineAsync($"{Name(parsed.CommandResult.Command)}: the engine answered {ex.StatusCode}: {ex.Status.Detail}");
            return RuntimeFailure;
        }
        catch (Exception ex)
        {
            // Not a user's or the environment's doing: a bug. Its stack helps whoever fixes it; the exit code stays 1, not an abort.
            await error.WriteLineAsync($"{Name(parsed.CommandResult.Command)}: failed unexpectedly: {ex}");
            return RuntimeFailure;
        }
    }

    public static RootCommand Build(Func<CancellationToken, Task<int>> engine)
    {
        var root = new RootCommand(
            "LoyaltyGrains: with no verb, runs the engine (the embedded single node with demo data, or durable mode with " +
            "LOYALTY_POSTGRES; settings in README.md, \"Configuration\"). With a verb, runs that tool and exits. " +
            "Exit codes: 0 done, 1 runtime failure, 2 usage or configuration error.");
        foreach (var create in Verbs) root.Add(create());
        root.SetAction((_, cancellation) => engine(cancellation));
        return root;
    }

    private static string Name(Command command) => command is RootCommand ? "loyaltygrains" : command.Name;

    /// <summary>Cannot connect, connection refused or reset, timed out: what a database being down looks like.</summary>
    public static bool IsDatabaseUnreachable(Exception ex) =>
        LoyaltyGrains.Persistence.PostgresFaults.IsUnavailable(ex)
        || ex.GetBaseException() is System.Net.Sockets.SocketException or TimeoutException;
}

/// <summary>A verb's failure with its exit code: <see cref="LoyaltyCommandLine.UsageError"/> for bad input, else a runtime failure.</summary>
public sealed class CommandLineException : Exception
{
    public CommandLineException() : this("command line error")
    {
    }

    public CommandLineException(string message) : this(message, LoyaltyCommandLine.UsageError)
    {
    }

    public CommandLineException(string message, Exception innerException) : base(message, innerException) => ExitCode = LoyaltyCommandLine.UsageError;

    public CommandLineException(string message, int exitCode) : base(message) => ExitCode = exitCode;

    public int ExitCode { get; }
}
