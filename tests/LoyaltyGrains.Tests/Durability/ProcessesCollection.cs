namespace LoyaltyGrains.Tests.Durability;

/// <summary>
/// Every test that starts silo processes (crash, database faults, shutdown): one after another, and not alongside
/// the other test classes either, so the recovery bounds they assert are measured with the cores to themselves.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessesCollection
{
    public const string Name = "Processes";
}
