using System.Text;

namespace LoyaltyGrains.Analytics.Reports;

/// <summary>One table of a report: written as its own CSV file (Name.csv), as Markdown and as an HTML table.</summary>
public sealed record ReportTable(string Name, string Title, string[] Header, IReadOnlyList<string[]> Rows)
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    /// <summary>RFC 4180: CRLF line ends, one header row, a field quoted when it holds a comma, quote, CR or LF (quotes doubled).</summary>
    public string ToCsv()
    {
        var text = new StringBuilder();
        text.Append(CsvLine(Header));
        foreach (var row in Rows) text.Append(CsvLine(row));
        return text.ToString();
    }

    public Task WriteCsvAsync(string folder) => File.WriteAllTextAsync(Path.Combine(folder, Name + ".csv"), ToCsv(), Utf8);

    /// <summary>A Markdown table of at most <paramref name="rowsMax"/> rows (the CSV has them all).</summary>
    public string ToMarkdown(int rowsMax = 20)
    {
        var md = new StringBuilder();
        md.Append("### ").AppendLine(Title);
        md.Append("| ").Append(string.Join(" | ", Header.Select(MarkdownCell))).AppendLine(" |");
        md.Append('|').Append(string.Concat(Header.Select(_ => "---|"))).AppendLine();
        foreach (var row in Rows.Take(rowsMax)) md.Append("| ").Append(string.Join(" | ", row.Select(MarkdownCell))).AppendLine(" |");
        if (Rows.Count > rowsMax) md.AppendLine(FormattableString.Invariant($"| … {Rows.Count - rowsMax} more rows in {Name}.csv |"));
        return md.ToString();
    }

    public string ToHtml()
    {
        var html = new StringBuilder();
        html.Append("<h3>").Append(Html.Escape(Title)).Append(" <small><a href=\"").Append(Html.Escape(Name)).Append(".csv\">").Append(Html.Escape(Name))
            .Append(".csv</a></small></h3><table><thead><tr>");
        foreach (var cell in Header) html.Append("<th>").Append(Html.Escape(cell)).Append("</th>");
        html.Append("</tr></thead><tbody>");
        foreach (var row in Rows)
        {
            html.Append("<tr>");
            foreach (var cell in row) html.Append(IsNumber(cell) ? "<td class=\"n\">" : "<td>").Append(Html.Escape(cell)).Append("</td>");
            html.Append("</tr>");
        }
        return html.Append("</tbody></table>").ToString();
    }

    private static bool IsNumber(string cell) => cell.Length > 0 && (char.IsAsciiDigit(cell[0]) || (cell[0] == '-' && cell.Length > 1 && char.IsAsciiDigit(cell[1])));

    private static string CsvLine(string[] fields) => string.Join(',', fields.Select(CsvField)) + "\r\n";

    private static string CsvField(string value) =>
        value.AsSpan().IndexOfAny(",\"\r\n") < 0 ? value : "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static string MarkdownCell(string value) => value.Replace("|", "\\|", StringComparison.Ordinal);
}

public static class Html
{
    public static string Escape(string text) => System.Net.WebUtility.HtmlEncode(text);
}
