using System.Text.Json;

namespace LoyaltyGrains.Domain;

/// <summary>One JSON shape for domain records (program versions, campaigns): between gateway and grains, and in storage.</summary>
public static class DomainJson
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options);

    public static T Deserialize<T>(string json) =>
        JsonSerializer.Deserialize<T>(json, Options) ?? throw new JsonException($"{typeof(T).Name} JSON is null");
}
