using System.Text;
using System.Text.Json;
using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Persistence;

/// <summary>
/// A breakdown as the ledger's jsonb: [{"rule":"base","amountMinor":1000,"rateBps":100,"partnerId":""}, ...].
/// Written by hand on the hot path (a fraction of a reflection serializer's cost), read with the standard reader.
/// </summary>
public static class BreakdownCodec
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    [ThreadStatic]
    private static StringBuilder? t_builder;

    public static string Encode(AccrualLine[] lines)
    {
        if (lines.Length == 0) return "[]";
        var builder = t_builder ??= new StringBuilder(256);
        builder.Clear().Append('[');
        for (var i = 0; i < lines.Length; i++)
        {
            if (i > 0) builder.Append(',');
            builder.Append("{\"rule\":");
            AppendString(builder, lines[i].Rule);
            builder.Append(",\"amountMinor\":").Append(lines[i].AmountMinor)
                .Append(",\"rateBps\":").Append(lines[i].RateBps)
                .Append(",\"partnerId\":");
            AppendString(builder, lines[i].PartnerId);
            builder.Append('}');
        }
        return builder.Append(']').ToString();
    }

    public static AccrualLine[] Decode(string json) => JsonSerializer.Deserialize<AccrualLine[]>(json, Options) ?? [];

    private static void AppendString(StringBuilder builder, string value)
    {
        builder.Append('"');
        foreach (var ch in value)
        {
            switch (ch)
            {
                case '"': builder.Append("\\\""); break;
                case '\\': builder.Append("\\\\"); break;
                default:
                    if (ch < ' ') builder.Append("\\u").Append(((int)ch).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
                    else builder.Append(ch);
                    break;
            }
        }
        builder.Append('"');
    }
}
