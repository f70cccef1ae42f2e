using System.Globalization;
using System.Text;

namespace LoyaltyGrains.LoadTests;

public sealed record Series(string Name, string Color, IReadOnlyList<(double X, double Y)> Points, bool Dashed = false);

/// <summary>Small self-drawn SVG line charts (no scripts, no external assets), linear or log-10 axes, with ticks and a legend.</summary>
public static class Svg
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;
    private const int Width = 960, Height = 300, Left = 70, Right = 20, Top = 34, Bottom = 44;

    /// <summary>A line chart. <paramref name="xTickLabel"/> formats x ticks (the "nines" axis of a percentile chart passes its own).</summary>
    public static string LineChart(IReadOnlyList<Series> series, string xTitle, string yTitle, bool logY = false, bool logX = false,
        IReadOnlyList<(double X, string Label)>? xTicks = null, double? horizontalLine = null, string? horizontalLabel = null)
    {
        var points = series.SelectMany(s => s.Points).Where(p => double.IsFinite(p.Y) && double.IsFinite(p.X)).ToArray();
        var svg = new StringBuilder();
        svg.Append(Invariant, $"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {Width} {Height}\" width=\"{Width}\" height=\"{Height}\" font-family=\"system-ui,sans-serif\" font-size=\"12\">");
        svg.Append(Invariant, $"<rect x=\"0\" y=\"0\" width=\"{Width}\" height=\"{Height}\" fill=\"#fff\"/>");
        if (points.Length == 0)
        {
            return svg.Append(Invariant, $"<text x=\"{Width / 2}\" y=\"{Height / 2}\" text-anchor=\"middle\" fill=\"#888\">no data</text></svg>").ToString();
        }
        double Tx(double x) => logX ? Math.Log10(Math.Max(x, 1e-9)) : x;
        double Ty(double y) => logY ? Math.Log10(Math.Max(y, 1e-3)) : y;
        var xs = points.Select(p => Tx(p.X)).ToArray();
        var ys = points.Select(p => Ty(p.Y)).Concat(horizontalLine is { } h ? [Ty(h)] : []).ToArray();
        var (x0, x1) = (xs.Min(), xs.Max());
        if (x1 - x0 < 1e-9) x1 = x0 + 1;
        double y0, y1;
        List<(double V, string Label)> yTicks;
        if (logY)
        {
            y0 = Math.Floor(ys.Min());
            y1 = Math.Ceiling(ys.Max() + 1e-9);
            if (y1 - y0 < 1) y1 = y0 + 1;
            yTicks = [.. Enumerable.Range((int)y0, (int)(y1 - y0) + 1).Select(e => ((double)e, Ms(Math.Pow(10, e))))];
        }
        else
        {
            y0 = Math.Min(0, ys.Min());
            var step = NiceStep((ys.Max() - y0) / 5);
            y1 = Math.Max(step, Math.Ceiling(ys.Max() / step) * step);
            yTicks = [];
            for (var v = y0; v <= y1 + step / 2; v += step) yTicks.Add((v, Compact(v)));
        }
        double Px(double x) => Left + (Width - Left - Right) * (Tx(x) - x0) / (x1 - x0);
        double Py(double y) => Top + (Height - Top - Bottom) * (1 - (Ty(y) - y0) / (y1 - y0));
        double PyRaw(double ty) => Top + (Height - Top - Bottom) * (1 - (ty - y0) / (y1 - y0));

        foreach (var (v, label) in yTicks)
        {
            var y = PyRaw(v);
            svg.Append(Invariant, $"<line x1=\"{Left}\" x2=\"{Width - Right}\" y1=\"{y:0.#}\" y2=\"{y:0.#}\" stroke=\"#e6e6e6\"/>");
            svg.Append(Invariant, $"<text x=\"{Left - 6}\" y=\"{y + 4:0.#}\" text-anchor=\"end\" fill=\"#444\">{label}</text>");
        }
        var ticks = xTicks ?? LinearTicks(points.Min(p => p.X), points.Max(p => p.X));
        foreach (var (v, label) in ticks)
        {
            var x = Px(v);
            if (x < Left - 1 || x > Width - Right + 1) continue;
            svg.Append(Invariant, $"<line x1=\"{x:0.#}\" x2=\"{x:0.#}\" y1=\"{Top}\" y2=\"{Height - Bottom}\" stroke=\"#f0f0f0\"/>");
            svg.Append(Invariant, $"<text x=\"{x:0.#}\" y=\"{Height - Bottom + 16}\" text-anchor=\"middle\" fill=\"#444\">{Esc(label)}</text>");
        }
        svg.Append(Invariant, $"<line x1=\"{Left}\" x2=\"{Left}\" y1=\"{Top}\" y2=\"{Height - Bottom}\" stroke=\"#888\"/><line x1=\"{Left}\" x2=\"{Width - Right}\" y1=\"{Height - Bottom}\" y2=\"{Height - Bottom}\" stroke=\"#888\"/>");
        svg.Append(Invariant, $"<text x=\"{(Left + Width - Right) / 2}\" y=\"{Height - 8}\" text-anchor=\"middle\" fill=\"#222\">{Esc(xTitle)}</text>");
        svg.Append(Invariant, $"<text x=\"14\" y=\"{(Top + Height - Bottom) / 2}\" text-anchor=\"middle\" fill=\"#222\" transform=\"rotate(-90 14 {(Top + Height - Bottom) / 2})\">{Esc(yTitle)}</text>");
        if (horizontalLine is { } line)
        {
            var y = Py(line);
            svg.Append(Invariant, $"<line x1=\"{Left}\" x2=\"{Width - Right}\" y1=\"{y:0.#}\" y2=\"{y:0.#}\" stroke=\"#b00\" stroke-dasharray=\"6 4\"/>");
            if (horizontalLabel is not null) svg.Append(Invariant, $"<text x=\"{Width - Right - 4}\" y=\"{y - 4:0.#}\" text-anchor=\"end\" fill=\"#b00\">{Esc(horizontalLabel)}</text>");
        }
        foreach (var s in series)
        {
            var valid = s.Points.Where(p => double.IsFinite(p.Y)).ToArray();
            if (valid.Length == 0) continue;
            var path = string.Join(" ", valid.Select(p => $"{Px(p.X).ToString("0.#", Invariant)},{Py(p.Y).ToString("0.#", Invariant)}"));
            svg.Append(Invariant, $"<polyline fill=\"none\" stroke=\"{s.Color}\" stroke-width=\"2\"{(s.Dashed ? " stroke-dasharray=\"5 4\"" : "")} stroke-linejoin=\"round\" points=\"{path}\"/>");
            if (valid.Length <= 40)
            {
                foreach (var p in valid) svg.Append(Invariant, $"<circle cx=\"{Px(p.X):0.#}\" cy=\"{Py(p.Y):0.#}\" r=\"2.5\" fill=\"{s.Color}\"/>");
            }
        }
        // Legend along the top, left to right.
        var lx = (double)Left;
        foreach (var s in series)
        {
            svg.Append(Invariant, $"<line x1=\"{lx:0}\" x2=\"{lx + 18:0}\" y1=\"16\" y2=\"16\" stroke=\"{s.Color}\" stroke-width=\"3\"{(s.Dashed ? " stroke-dasharray=\"5 4\"" : "")}/>");
            svg.Append(Invariant, $"<text x=\"{lx + 23:0}\" y=\"20\" fill=\"#222\">{Esc(s.Name)}</text>");
            lx += 34 + 7.0 * s.Name.Length;
        }
        return svg.Append("</svg>").ToString();
    }

    /// <summary>Percentiles for a distribution chart and their x on the "nines" axis: x = log10(1 / (1 − p)).</summary>
    public static readonly double[] DistributionPercentiles = [0, 25, 50, 75, 90, 95, 97, 99, 99.5, 99.7, 99.9, 99.95, 99.99, 99.995, 99.999];

    public static double Nines(double percentile) => Math.Log10(100 / (100 - Math.Min(percentile, 99.9999)));

    public static IReadOnlyList<(double X, string Label)> NinesTicks { get; } =
        [(Nines(0), "0%"), (Nines(50), "50%"), (Nines(90), "90%"), (Nines(99), "99%"), (Nines(99.9), "99.9%"), (Nines(99.99), "99.99%"), (Nines(99.999), "99.999%")];

    private static List<(double X, string Label)> LinearTicks(double min, double max)
    {
        var step = NiceStep((max - min) / 10);
        var ticks = new List<(double, string)>();
        for (var v = Math.Ceiling(min / step) * step; v <= max + step / 100; v += step) ticks.Add((v, Compact(v)));
        return ticks;
    }

    private static double NiceStep(double raw)
    {
        if (raw <= 0 || !double.IsFinite(raw)) return 1;
        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        var fraction = raw / magnitude;
        return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * magnitude;
    }

    private static string Compact(double v) => Math.Abs(v) >= 10_000 ? (v / 1000).ToString("0.#", Invariant) + "k" : v.ToString("0.##", Invariant);

    private static string Ms(double v) => v >= 1000 ? (v / 1000).ToString("0.#", Invariant) + " s" : v.ToString("0.###", Invariant) + " ms";

    private static string Esc(string text) => System.Net.WebUtility.HtmlEncode(text);
}
