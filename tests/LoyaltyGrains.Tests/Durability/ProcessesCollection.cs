namespace LoyaltyGrains.Tests.Durability;

/// <summary>
/// Every test that starts engine processes (crash, settlement crash, database faults, shutdown, cluster topology): one
/// after another, and not alongside the other test classes either, so the recovery bounds they assert are measured
/// with the cores to themselves.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessesCollection
{
    public const string Name = "Processes";
}
