namespace LoyaltyGrains.Grains;

public static class StorageNames
{
    /// <summary>The grain storage provider for member snapshots, cards and the program.</summary>
    public const string Loyalty = "loyalty";
}
