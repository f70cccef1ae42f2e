namespace LoyaltyGrains.Domain;

/// <summary>
/// Every program version with the instant it took effect. A purchase is priced under the version in force at its
/// occurred_at, so a program change never re-prices purchases made before it.
/// </summary>
public sealed class ProgramHistory
{
    private readonly ProgramConfig[] _versions;

    public ProgramHistory(IEnumerable<ProgramConfig> versions)
    {
        _versions = [.. versions.OrderBy(v => v.EffectiveFrom).ThenBy(v => v.Version)];
        if (_versions.Length == 0) throw new ArgumentException("at least one program version is required", nameof(versions));
    }

    public static ProgramHistory Of(ProgramConfig program) => new([program]);

    public ProgramConfig Current => _versions[^1];

    public IReadOnlyList<ProgramConfig> Versions => _versions;

    /// <summary>The newest version effective at or before the instant; the oldest one for instants before all.</summary>
    public ProgramConfig At(DateTimeOffset instant)
    {
        for (var i = _versions.Length - 1; i >= 0; i--)
        {
            if (_versions[i].EffectiveFrom <= instant) return _versions[i];
        }
        return _versions[0];
    }
}
