using System.Text.RegularExpressions;

namespace LoyaltyGrains.Tests.Rules;

/// <summary>docs/RULES.md's worked examples, each run as a test; and the doc and the table kept in step.</summary>
public sealed partial class RuleExamplesTests
{
    public static TheoryData<string> Ids() => [.. RuleExamples.All.Select(e => e.Id)];

    [Theory]
    [MemberData(nameof(Ids))]
    public void Worked_example_holds(string id)
    {
        var checks = RuleExamples.All.Single(e => e.Id == id).Check();
        Assert.True(checks > 0, $"{id} checks nothing: a placeholder is not a test of the example");
    }

    [Fact]
    public void Every_example_in_RULES_md_has_a_test_and_every_test_is_in_RULES_md()
    {
        var documented = ExampleId().Matches(File.ReadAllText(RulesPath())).Select(m => m.Groups[1].Value).ToHashSet();
        // An example counts as tested only if it checks something: an id with an empty body is documented but untested.
        var tested = RuleExamples.All.Where(e => e.Check() > 0).Select(e => e.Id).ToHashSet();
        Assert.Empty(documented.Except(tested));
        Assert.Empty(RuleExamples.All.Select(e => e.Id).Except(documented));
        Assert.Equal(RuleExamples.All.Length, RuleExamples.All.Select(e => e.Id).Distinct().Count());
    }

    private static string RulesPath()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "docs", "RULES.md");
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException("docs/RULES.md not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"^\|\s*(R-[A-Z]+-\d+)\s*\|", RegexOptions.Multiline)]
    private static partial Regex ExampleId();
}
