namespace LoyaltyGrains.Tests;

/// <summary>One settable clock for a test: time moves only when the test says so.</summary>
public sealed class FakeClock(DateTimeOffset start) : TimeProvider
{
    private long _utcTicks = start.UtcTicks;

    public static readonly DateTimeOffset DefaultStart = new(2026, 11, 20, 9, 0, 0, TimeSpan.Zero);

    public FakeClock() : this(DefaultStart)
    {
    }

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _utcTicks), TimeSpan.Zero);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _utcTicks, by.Ticks);
}
