using System.Text.Json;

namespace LoyaltyGrains.Domain;

/// <summary>One JSON shape for program versions: between gateway and grains, and in grain storage.</summary>
public static class ProgramJson
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    public static string Serialize(ProgramConfig program) => JsonSerializer.Serialize(program, Options);

    public static ProgramConfig Deserialize(string json) =>
        JsonSerializer.Deserialize<ProgramConfig>(json, Options) ?? throw new JsonException("program JSON is null");
}
