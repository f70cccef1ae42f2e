using System.Globalization;
using System.Text;

namespace LoyaltyGrains.Analytics.Reports;

/// <summary>Self-drawn inline SVG charts (no scripts, no external assets): a heat map, lines over months, signed bars.</summary>
public static class Charts
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;
    private static readonly string[] Palette =
        ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

    /// <summary>Cohort retention: one row per cohort, one column per month since enrolment, shade = share active.</summary>
    public static string CohortHeatMap(IReadOnlyList<CohortCell> cells)
    {
        if (cells.Count == 0) return NoData();
        var cohorts = cells.Select(c => c.CohortMonth).Distinct().Order().ToArray();
        var columns = cells.Max(c => c.MonthsSinceEnrolment) + 1;
        const int cell = 38, left = 110, top = 40;
        var width = left + columns * cell + 20;
        var height = top + cohorts.Length * cell + 20;
        var svg = Open(width, height);
        svg.Append(Invariant, $"<text x=\"{left}\" y=\"16\" fill=\"#444\">months since enrolment →   (share of the cohort with a captured purchase)</text>");
        for (var k = 0; k < columns; k++) svg.Append(Invariant, $"<text x=\"{left + k * cell + cell / 2}\" y=\"{top - 6}\" text-anchor=\"middle\" fill=\"#444\">{k}</text>");
        for (var i = 0; i < cohorts.Length; i++)
        {
            var y = top + i * cell;
            var size = cells.First(c => c.CohortMonth == cohorts[i]).CohortSize;
            svg.Append(Invariant, $"<text x=\"{left - 6}\" y=\"{y + cell / 2 + 4}\" text-anchor=\"end\" fill=\"#444\">{Month(cohorts[i])} ({size})</text>");
            foreach (var c in cells.Where(c => c.CohortMonth == cohorts[i]))
            {
                var share = Math.Clamp(c.ActiveBps, 0, 10_000) / 10_000.0;
                var x = left + c.MonthsSinceEnrolment * cell;
                var shade = (int)Math.Round(255 - share * 200);
                svg.Append(Invariant, $"<rect x=\"{x}\" y=\"{y}\" width=\"{cell - 2}\" height=\"{cell - 2}\" fill=\"rgb({shade},{shade},255)\"><title>{Month(c.CohortMonth)} +{c.MonthsSinceEnrolment}: {c.ActiveMembers}/{c.CohortSize}</title></rect>");
                svg.Append(Invariant, $"<text x=\"{x + cell / 2 - 1}\" y=\"{y + cell / 2 + 4}\" text-anchor=\"middle\" font-size=\"10\" fill=\"{(share > 0.6 ? "#fff" : "#222")}\">{share * 100:0}%</text>");
            }
        }
        return svg.Append("</svg>").ToString();
    }

    /// <summary>One line per series over months (x: "YYYY-MM" labels in order), y in money units; a legend on top.</summary>
    public static string MonthLines(IReadOnlyList<string> months, IReadOnlyList<(string Name, long[] ValuesMinor)> series, string yTitle)
    {
        if (months.Count == 0 || series.Count == 0) return NoData();
        const int width = 960, height = 320, left = 80, right = 20, top = 50, bottom = 40;
        var max = Math.Max(1, series.SelectMany(s => s.ValuesMinor).DefaultIfEmpty(0).Max());
        var min = Math.Min(0, series.SelectMany(s => s.ValuesMinor).DefaultIfEmpty(0).Min());
        double Px(int i) => months.Count == 1 ? left + (width - left - right) / 2.0 : left + (width - left - right) * i / (double)(months.Count - 1);
        double Py(long v) => top + (height - top - bottom) * (1 - (v - min) / (double)(max - min));
        var svg = Open(width, height);
        for (var t = 0; t <= 4; t++)
        {
            var v = min + (max - min) * t / 4;
            var y = Py(v);
            svg.Append(Invariant, $"<line x1=\"{left}\" x2=\"{width - right}\" y1=\"{y:0.#}\" y2=\"{y:0.#}\" stroke=\"#e6e6e6\"/>");
            svg.Append(Invariant, $"<text x=\"{left - 6}\" y=\"{y + 4:0.#}\" text-anchor=\"end\" fill=\"#444\">{Ratio.Units(v)}</text>");
        }
        var labelEvery = Math.Max(1, months.Count / 12);
        for (var i = 0; i < months.Count; i += labelEvery)
        {
            svg.Append(Invariant, $"<text x=\"{Px(i):0.#}\" y=\"{height - bottom + 16}\" text-anchor=\"middle\" fill=\"#444\">{Html.Escape(months[i])}</text>");
        }
        svg.Append(Invariant, $"<text x=\"12\" y=\"{top - 30}\" fill=\"#444\">{Html.Escape(yTitle)}</text>");
        for (var s = 0; s < series.Count; s++)
        {
            var color = Palette[s % Palette.Length];
            var points = string.Join(' ', series[s].ValuesMinor.Select((v, i) => string.Create(Invariant, $"{Px(i):0.#},{Py(v):0.#}")));
            svg.Append(Invariant, $"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{points}\"/>");
            foreach (var (v, i) in series[s].ValuesMinor.Select((v, i) => (v, i)))
            {
                svg.Append(Invariant, $"<circle cx=\"{Px(i):0.#}\" cy=\"{Py(v):0.#}\" r=\"3\" fill=\"{color}\"><title>{Html.Escape(series[s].Name)} {Html.Escape(months[i])}: {Ratio.Units(v)}</title></circle>");
            }
            var lx = left + (s % 6) * 140;
            var ly = 14 + (s / 6) * 14;
            svg.Append(Invariant, $"<rect x=\"{lx}\" y=\"{ly - 9}\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{lx + 14}\" y=\"{ly}\" fill=\"#222\">{Html.Escape(series[s].Name)}</text>");
        }
        return svg.Append("</svg>").ToString();
    }

    /// <summary>Signed horizontal bars (green: the candidate costs less, red: more), one per group, labelled with the delta.</summary>
    public static string DeltaBars(IReadOnlyList<(string Label, long DeltaMinor)> bars, string title)
    {
        if (bars.Count == 0) return NoData();
        const int width = 960, left = 200, right = 120, row = 22, top = 30;
        var height = top + bars.Count * row + 20;
        var extent = Math.Max(1, bars.Max(b => Math.Abs(b.DeltaMinor)));
        var zero = left + (width - left - right) / 2.0;
        var half = (width - left - right) / 2.0;
        var svg = Open(width, height);
        svg.Append(Invariant, $"<text x=\"12\" y=\"18\" fill=\"#444\">{Html.Escape(title)}</text>");
        svg.Append(Invariant, $"<line x1=\"{zero:0.#}\" x2=\"{zero:0.#}\" y1=\"{top - 4}\" y2=\"{height - 16}\" stroke=\"#999\"/>");
        for (var i = 0; i < bars.Count; i++)
        {
            var (label, delta) = bars[i];
            var y = top + i * row;
            var length = half * Math.Abs(delta) / extent;
            var x = delta >= 0 ? zero : zero - length;
            var color = delta > 0 ? "#d62728" : "#2ca02c";
            svg.Append(Invariant, $"<text x=\"{left - 8}\" y=\"{y + 14}\" text-anchor=\"end\" fill=\"#222\">{Html.Escape(label)}</text>");
            svg.Append(Invariant, $"<rect x=\"{x:0.#}\" y=\"{y + 3}\" width=\"{Math.Max(length, 0.5):0.#}\" height=\"{row - 6}\" fill=\"{color}\"/>");
            var tx = delta >= 0 ? zero + length + 4 : zero - length - 4;
            svg.Append(Invariant, $"<text x=\"{tx:0.#}\" y=\"{y + 14}\" text-anchor=\"{(delta >= 0 ? "start" : "end")}\" fill=\"#222\">{(delta > 0 ? "+" : "")}{Ratio.Units(delta)}</text>");
        }
        return svg.Append("</svg>").ToString();
    }

    public static string Month(int month) => string.Create(Invariant, $"{month / 100:0000}-{month % 100:00}");

    private static StringBuilder Open(int width, int height) => new StringBuilder().Append(Invariant,
        $"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" font-family=\"system-ui,sans-serif\" font-size=\"12\"><rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#fff\"/>");

    private static string NoData() =>
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 960 60\" width=\"960\" height=\"60\" font-family=\"system-ui,sans-serif\" font-size=\"12\"><text x=\"480\" y=\"34\" text-anchor=\"middle\" fill=\"#888\">no data</text></svg>";
}
