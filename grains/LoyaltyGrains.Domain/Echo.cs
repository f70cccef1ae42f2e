using System.Text;

namespace LoyaltyGrains.Domain;

/// <summary>
/// Quoting a refused value back in an error message. A value is quoted at most <see cref="Limits.EchoedValueLengthMax"/>
/// characters long with its full length after it, and control characters shown as U+FFFD: a 500 KB field must not
/// come back as a 500 KB grpc-message header (it stalls the client's HTTP/2 connection), nor a newline split a log line.
/// </summary>
public static class Echo
{
    private const char Replacement = '\uFFFD';

    /// <summary>'value', or 'first 100 characters…' (N characters).</summary>
    public static string Quote(string? value)
    {
        value ??= "";
        var cut = Math.Min(value.Length, Limits.EchoedValueLengthMax);
        // Never split a surrogate pair: half of one is not valid UTF-16 and cannot be encoded.
        if (cut < value.Length && cut > 0 && char.IsHighSurrogate(value[cut - 1])) cut--;
        var builder = new StringBuilder(cut + 32).Append('\'');
        for (var i = 0; i < cut; i++)
        {
            var ch = value[i];
            var lone = (char.IsHighSurrogate(ch) && (i + 1 >= cut || !char.IsLowSurrogate(value[i + 1])))
                || (char.IsLowSurrogate(ch) && (i == 0 || !char.IsHighSurrogate(value[i - 1])));
            builder.Append(char.IsControl(ch) || lone ? Replacement : ch);
        }
        builder.Append('\'');
        if (cut < value.Length) builder.Append("… (").Append(value.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)).Append(" characters)");
        return builder.ToString();
    }

    /// <summary>
    /// Problems joined with "; ", at most <see cref="Limits.ErrorMessageLengthMax"/> characters: the first ones whole,
    /// then how many more there were (200 000 bad list items must not make a 10 MB message).
    /// </summary>
    public static string Join(IReadOnlyList<string> problems)
    {
        const int reserve = 40; // room for "; and 123456 more problems"
        const int budget = Limits.ErrorMessageLengthMax - reserve;
        var builder = new StringBuilder();
        var joined = 0;
        for (; joined < problems.Count; joined++)
        {
            var separator = joined == 0 ? "" : "; ";
            var problem = problems[joined];
            if (builder.Length + separator.Length + problem.Length > budget)
            {
                if (joined > 0) break;
                problem = problem[..(char.IsHighSurrogate(problem[budget - 1]) ? budget - 1 : budget)]; // a first problem too long alone is cut
            }
            builder.Append(separator).Append(problem);
        }
        var more = problems.Count - joined;
        if (more > 0) builder.Append("; and ").Append(more.ToString(System.Globalization.CultureInfo.InvariantCulture)).Append(more == 1 ? " more problem" : " more problems");
        return builder.ToString();
    }
}
