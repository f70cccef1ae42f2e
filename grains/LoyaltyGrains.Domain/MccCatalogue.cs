using System.Collections.Frozen;
using System.Globalization;

namespace LoyaltyGrains.Domain;

/// <summary>
/// MCC (ISO 18245) → loyalty category, loaded from the catalogue shipped as data (Data/mcc-catalogue.csv).
/// Categories named "excluded:…" earn nothing: cash, quasi-cash, transfers, government, gambling.
/// </summary>
public sealed class MccCatalogue
{
    public const string OtherCategory = "other";
    public const string ExcludedPrefix = "excluded:";
    public const int MccMax = 9999;

    private readonly string[] _categoryByMcc;

    private MccCatalogue(string[] categoryByMcc)
    {
        _categoryByMcc = categoryByMcc;
        Categories = categoryByMcc.Where(c => !IsExcludedCategory(c)).Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal).ToFrozenSet(StringComparer.Ordinal);
    }

    /// <summary>Categories a purchase can earn in (the excluded ones are not among them).</summary>
    public FrozenSet<string> Categories { get; }

    public static MccCatalogue Default { get; } = LoadEmbedded();

    public static bool IsValidMcc(int mcc) => mcc is >= 0 and <= MccMax;

    public static bool IsExcludedCategory(string category) => category.StartsWith(ExcludedPrefix, StringComparison.Ordinal);

    public string CategoryOf(int mcc) =>
        IsValidMcc(mcc) ? _categoryByMcc[mcc] : throw new ArgumentOutOfRangeException(nameof(mcc), mcc, "MCC must be 0..9999");

    public static MccCatalogue Parse(TextReader reader)
    {
        var map = new string[MccMax + 1];
        Array.Fill(map, OtherCategory);
        var lineNumber = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (line.Length == 0 || line[0] == '#') continue;
            var parts = line.Split(',');
            if (parts.Length != 3
                || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var first)
                || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var last)
                || !IsValidMcc(first) || !IsValidMcc(last) || last < first || parts[2].Length == 0)
            {
                throw new FormatException($"MCC catalogue line {lineNumber} is not 'first,last,category': '{line}'");
            }
            for (var mcc = first; mcc <= last; mcc++) map[mcc] = parts[2];
        }
        return new MccCatalogue(map);
    }

    private static MccCatalogue LoadEmbedded()
    {
        using var stream = typeof(MccCatalogue).Assembly.GetManifestResourceStream("LoyaltyGrains.Domain.mcc-catalogue.csv")
            ?? throw new InvalidOperationException("the MCC catalogue resource is missing from the domain assembly");
        using var reader = new StreamReader(stream);
        return Parse(reader);
    }
}
