using Xunit.Abstractions;

namespace LoyaltyGrains.Tests.Durability;

/// <summary>Figures a test measured: to its output, and a line in $LOYALTY_TEST_SUMMARY when set (scripts/test.sh prints it, so CI's log has them).</summary>
public static class TestSummary
{
    private static readonly Lock Gate = new();

    public static void Record(ITestOutputHelper output, string test, string line)
    {
        output.WriteLine(line);
        if (Environment.GetEnvironmentVariable("LOYALTY_TEST_SUMMARY") is not { Length: > 0 } summary) return;
        lock (Gate) File.AppendAllText(summary, $"{test}: {line}{Environment.NewLine}");
    }
}
