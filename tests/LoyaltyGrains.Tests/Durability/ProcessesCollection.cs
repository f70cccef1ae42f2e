namespace LoyaltyGrains.Tests.Durability;

/// <summary>Tests that start the real silo as a process and kill it: one at a time, so their loads and timings do not overlap.</summary>
[CollectionDefinition(Name)]
public sealed class ProcessesCollection
{
    public const string Name = "Processes";
}
