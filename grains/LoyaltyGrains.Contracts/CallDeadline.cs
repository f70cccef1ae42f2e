namespace LoyaltyGrains.Contracts;

/// <summary>
/// The caller's gRPC deadline, carried with every grain call of a request (Orleans' RequestContext), so a grain stops
/// waiting on the database when nobody will read its reply any more.
/// </summary>
public static class CallDeadline
{
    private const string Key = "lg-deadline";

    /// <summary>Gateway: records the request's deadline (UTC); DateTime.MaxValue means none.</summary>
    public static void Set(DateTime deadlineUtc)
    {
        if (deadlineUtc == DateTime.MaxValue) return;
        RequestContext.Set(Key, deadlineUtc.ToUniversalTime().Ticks);
    }

    /// <summary>Grain: whether the caller's deadline has passed (nobody waits for the reply: do no work for it).</summary>
    public static bool HasPassed() => HasPassed(Current());

    /// <summary>Grain: a token cancelled at the caller's deadline, or null when the caller gave none.</summary>
    public static CancellationTokenSource? CancellationSource() => CancellationSource(Current());

    /// <summary>
    /// Grain: the current call's deadline (UTC ticks), or null. For work a grain queues and does later outside the call,
    /// where <see cref="RequestContext"/> no longer holds the caller's.
    /// </summary>
    public static long? Current() => RequestContext.Get(Key) is long ticks ? ticks : null;

    public static bool HasPassed(long? deadlineTicks) => deadlineTicks is { } ticks && ticks <= DateTime.UtcNow.Ticks;

    public static CancellationTokenSource? CancellationSource(long? deadlineTicks)
    {
        if (deadlineTicks is not { } ticks) return null;
        var remaining = new DateTime(ticks, DateTimeKind.Utc) - DateTime.UtcNow;
        return new CancellationTokenSource(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero);
    }
}
