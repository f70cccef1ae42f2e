using LoyaltyGrains.Persistence;
using Microsoft.Extensions.Configuration;

namespace LoyaltyGrains.Tests.Postgres;

/// <summary>The ledger's group-commit settings from configuration (section Loyalty:Ledger).</summary>
public sealed class LedgerOptionsTests
{
    private static PostgresLedgerOptions From(params (string Key, string Value)[] settings) =>
        PostgresLedgerOptions.From(new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>("Loyalty:Ledger:" + s.Key, s.Value)))
            .Build());

    [Fact]
    public void Settings_left_out_keep_their_defaults()
    {
        Assert.Equal(new PostgresLedgerOptions(), From());
    }

    [Fact]
    public void Group_commit_settings_are_read()
    {
        var options = From(("BatchDelayMax", "00:00:00.005"), ("Writers", "1"), ("BatchEntriesMax", "500"), ("CommitTimeout", "00:00:02"));
        Assert.Equal((TimeSpan.FromMilliseconds(5), 1, 500, TimeSpan.FromSeconds(2)),
            (options.BatchDelayMax, options.Writers, options.BatchEntriesMax, options.CommitTimeout));
    }

    [Theory]
    [InlineData("Writers", "0")]
    [InlineData("BatchEntriesMax", "0")]
    [InlineData("BatchDelayMax", "-00:00:01")]
    [InlineData("BatchDelayMax", "00:00:05")]
    [InlineData("CommitTimeout", "00:00:00")]
    public void Out_of_range_settings_stop_the_start_with_the_setting_named(string key, string value)
    {
        var error = Assert.Throws<InvalidOperationException>(() => From((key, value)));
        Assert.Contains("Loyalty:Ledger:" + key, error.Message, StringComparison.Ordinal);
    }
}
