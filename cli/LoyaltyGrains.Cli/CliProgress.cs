using System.Diagnostics;
using System.Globalization;

namespace LoyaltyGrains.Cli;

/// <summary>
/// Progress of a long verb on stderr (stdout keeps the verb's result, so it can be piped): a line when a step starts,
/// one every few seconds while it runs, and one with its time when it ends.
/// </summary>
public sealed class CliProgress(string verb, TextWriter? error = null)
{
    private static readonly TimeSpan HeartbeatEvery = TimeSpan.FromSeconds(5);
    private readonly TextWriter _error = error ?? Console.Error;
    private readonly Stopwatch _total = Stopwatch.StartNew();

    public async Task<T> StepAsync<T>(string what, Func<Task<T>> work)
    {
        Write($"{what}…");
        var step = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource();
        var heartbeat = HeartbeatAsync(what, step, stop.Token);
        try
        {
            var result = await work();
            Write(string.Create(CultureInfo.InvariantCulture, $"{what}: done in {step.Elapsed.TotalSeconds:0.0} s"));
            return result;
        }
        finally
        {
            await stop.CancelAsync();
            await heartbeat;
        }
    }

    public async Task StepAsync(string what, Func<Task> work) => await StepAsync(what, async () =>
    {
        await work();
        return true;
    });

    public void Write(string line) => _error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{verb}: [{_total.Elapsed.TotalSeconds,5:0.0} s] {line}"));

    private async Task HeartbeatAsync(string what, Stopwatch step, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(HeartbeatEvery);
        try
        {
            while (await timer.WaitForNextTickAsync(stop)) Write(string.Create(CultureInfo.InvariantCulture, $"{what}: still running after {step.Elapsed.TotalSeconds:0} s"));
        }
        catch (OperationCanceledException)
        {
            // The step ended.
        }
    }
}
