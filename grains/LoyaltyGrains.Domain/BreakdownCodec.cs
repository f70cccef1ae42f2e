using System.Text;
using System.Text.Json;
namespace LoyaltyGrains.Domain;

/// <summary>
/// The one codec of a ledger breakdown, the JSON array stored in loyalty.ledger.breakdown:
/// [{"rule":"base","amountMinor":1000,"rateBps":100,"partnerId":""}, ...]. The ledger writer, its readers and the
/// analytics replay all use it. Written by hand on the hot path (a fraction of a reflection serializer's cost), read with
/// the standard reader (any key order or spacing). SQL never matches this text: what queries filter on is stored in
/// columns (has_partner_line, has_campaign_line; docs/DATA.md) or read with jsonb.
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

    /// <summary>The lines of a stored breakdown; an empty text (a column a query left out) is no lines.</summary>
    public static AccrualLine[] Decode(string json) => json.Length == 0 ? [] : JsonSerializer.Deserialize<AccrualLine[]>(json, Options) ?? [];

    /// <summary>Whether a line names a partner (a partner-funded campaign line, or a redemption at a partner): column has_partner_line.</summary>
    public static bool HasPartnerLine(AccrualLine[] lines)
    {
        foreach (var line in lines) if (line.PartnerId.Length > 0) return true;
        return false;
    }

    /// <summary>Whether a line is a campaign's bonus ("campaign:&lt;id&gt;"): column has_campaign_line.</summary>
    public static bool HasCampaignLine(AccrualLine[] lines)
    {
        foreach (var line in lines) if (line.Rule.StartsWith(CampaignRule.RulePrefix, StringComparison.Ordinal)) return true;
        return false;
    }

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
