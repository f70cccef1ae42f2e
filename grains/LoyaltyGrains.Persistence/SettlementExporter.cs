using System.Globalization;
using System.Text;
using LoyaltyGrains.Domain;
using Npgsql;

namespace LoyaltyGrains.Persistence;

/// <summary>What a running engine's Offers.GetPayouts answered for the period: net per partner and day, and each partner's undelivered events.</summary>
public sealed record EnginePayouts(Dictionary<(string Partner, DateOnly Day), long> Net, Dictionary<string, long> Undelivered);

/// <summary>What an export wrote and what did not reconcile (empty when everything did).</summary>
public sealed record SettlementExportResult(int Partners, int PayoutLines, int JournalLines, int ReconciliationChecks, IReadOnlyList<string> Problems)
{
    public bool Reconciled => Problems.Count == 0;
}

/// <summary>
/// The accounting export (docs/SETTLEMENT.md): per-partner payout statements and the programme's double-entry journal for
/// the UTC days from..to (both included), as CSV files, computed from the ledger (the truth) and reconciled against it,
/// against the delivered payouts and, when asked, against a running engine's GetPayouts. The files are written whether
/// or not everything reconciles; the result lists what did not.
/// </summary>
public sealed class SettlementExporter(string connectionString)
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    /// <summary>Ledger kinds in the journal and the entry type each books as.</summary>
    private static readonly Dictionary<EntryKind, string> EntryTypes = new()
    {
        [EntryKind.Capture] = "accrual", [EntryKind.ForcePost] = "accrual", [EntryKind.ReferralBonus] = "referral", [EntryKind.Refund] = "clawback",
        [EntryKind.Redeem] = "redemption", [EntryKind.RedeemRefund] = "redemption_refund", [EntryKind.ExpireLots] = "expiry",
    };

    /// <summary>
    /// Writes payouts.csv, statement-&lt;partner&gt;.csv, journal.csv and reconciliation.csv into <paramref name="outDir"/>
    /// (created if missing). <paramref name="askEngine"/>, when given, is called once with the period's partners and the
    /// period's bounds [start, end) and answers what the engine's GetPayouts says.
    /// </summary>
    public async Task<SettlementExportResult> ExportAsync(DateOnly from, DateOnly to, string outDir,
        Func<IReadOnlyList<string>, DateTime, DateTime, Task<EnginePayouts>>? askEngine = null, CancellationToken cancellationToken = default)
    {
        if (to < from) throw new ArgumentException($"the period ends ({to:yyyy-MM-dd}) before it starts ({from:yyyy-MM-dd})", nameof(to));
        Directory.CreateDirectory(outDir);
        var start = from.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc);
        var end = to.AddDays(1).ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc);
        await using var source = NpgsqlDataSource.Create(connectionString);

        var problems = new List<string>();
        var statements = await StatementsAsync(source, start, end, cancellationToken);
        var partners = statements.Select(s => s.Partner).Distinct(StringComparer.Ordinal).ToList();
        var payoutRows = await WritePayoutsAsync(outDir, statements);
        var (journalRows, liability) = await WriteJournalAsync(source, outDir, start, end, cancellationToken);
        var engine = askEngine is null ? null : await askEngine(partners, start, end);
        var reconciliation = await ReconcileAsync(source, outDir, start, end, statements, liability, engine, problems, cancellationToken);
        return new SettlementExportResult(partners.Count, payoutRows, journalRows, reconciliation, problems);
    }

    private sealed record Statement(string Partner, DateOnly Day, long Accrued, long ClawedBack, long Redeemed, long Events)
    {
        public long Net => Accrued - ClawedBack - Redeemed;
    }

    private static async Task<List<Statement>> StatementsAsync(NpgsqlDataSource source, DateTime start, DateTime end, CancellationToken cancellationToken)
    {
        await using var command = source.CreateCommand("""
            SELECT partner_id, day, accrued_minor, clawed_back_minor, redeemed_minor, events
              FROM loyalty.partner_ledger_lines($1, $2) ORDER BY partner_id, day
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = start });
        command.Parameters.Add(new NpgsqlParameter { Value = end });
        var rows = new List<Statement>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(new Statement(reader.GetString(0), reader.GetFieldValue<DateOnly>(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5)));
        }
        return rows;
    }

    private static readonly string[] StatementHeader =
    [
        "partner_id", "day", "accrued_minor", "accrued", "clawed_back_minor", "clawed_back", "redeemed_minor", "redeemed", "net_minor", "net", "events",
    ];

    /// <summary>payouts.csv (every partner) and statement-&lt;partner&gt;.csv (one each, with a "total" line).</summary>
    private static async Task<int> WritePayoutsAsync(string outDir, List<Statement> statements)
    {
        var all = new Csv(StatementHeader);
        foreach (var s in statements) all.Row(StatementRow(s.Partner, Day(s.Day), s.Accrued, s.ClawedBack, s.Redeemed, s.Events));
        await all.WriteAsync(Path.Combine(outDir, "payouts.csv"));
        foreach (var partner in statements.GroupBy(s => s.Partner, StringComparer.Ordinal))
        {
            var csv = new Csv(StatementHeader);
            foreach (var s in partner) csv.Row(StatementRow(s.Partner, Day(s.Day), s.Accrued, s.ClawedBack, s.Redeemed, s.Events));
            csv.Row(StatementRow(partner.Key, "total", partner.Sum(s => s.Accrued), partner.Sum(s => s.ClawedBack), partner.Sum(s => s.Redeemed), partner.Sum(s => s.Events)));
            await csv.WriteAsync(Path.Combine(outDir, $"statement-{FileSafe(partner.Key)}.csv"));
        }
        return statements.Count;
    }

    private static string[] StatementRow(string partner, string day, long accrued, long clawedBack, long redeemed, long events)
    {
        var net = accrued - clawedBack - redeemed;
        return [partner, day, Minor(accrued), Units(accrued), Minor(clawedBack), Units(clawedBack), Minor(redeemed), Units(redeemed), Minor(net), Units(net), Minor(events)];
    }

    /// <summary>
    /// journal.csv: per UTC day, entry type and funder, one balanced entry of two lines; bonus_liability is always one side.
    /// Returns the lines written and each day's net credit to bonus_liability.
    /// </summary>
    private static async Task<(int Rows, Dictionary<DateOnly, long> Liability)> WriteJournalAsync(NpgsqlDataSource source, string outDir, DateTime start, DateTime end, CancellationToken cancellationToken)
    {
        await using var command = source.CreateCommand("""
            SELECT (l.recorded_at AT TIME ZONE 'UTC')::date, l.kind, line->>'partnerId', sum((line->>'amountMinor')::bigint)::bigint
              FROM loyalty.ledger l
             CROSS JOIN LATERAL jsonb_array_elements(l.breakdown::jsonb) AS line
             WHERE l.recorded_at >= $1 AND l.recorded_at < $2 AND l.kind = ANY($3)
             GROUP BY 1, 2, 3
             ORDER BY 1, 2, 3
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = start });
        command.Parameters.Add(new NpgsqlParameter { Value = end });
        command.Parameters.Add(new NpgsqlParameter { Value = EntryTypes.Keys.Select(kind => (short)kind).ToArray() });
        // Captures and force posts both book as "accrual": merged per day and funder before the entries are numbered.
        var sums = new SortedDictionary<(DateOnly Day, string Type, string Funder), long>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                var key = (reader.GetFieldValue<DateOnly>(0), EntryTypes[(EntryKind)reader.GetInt16(1)], reader.IsDBNull(2) ? "" : reader.GetString(2));
                sums[key] = sums.GetValueOrDefault(key) + reader.GetInt64(3);
            }
        }
        var csv = new Csv(["day", "entry_id", "entry_type", "account", "funder", "partner_id", "debit_minor", "debit", "credit_minor", "credit"]);
        var liability = new Dictionary<DateOnly, long>();
        var number = 0;
        DateOnly? current = null;
        foreach (var ((day, type, partner), amount) in sums)
        {
            if (amount == 0) continue;
            if (current != day) (current, number) = (day, 0);
            var entryId = $"{Day(day)}-{++number:0000}";
            var funder = partner.Length == 0 ? "bank" : partner;
            var counter = CounterAccount(type, partner);
            liability[day] = liability.GetValueOrDefault(day) + amount;
            // A positive sum raises what members hold (credit the liability); a negative one lowers it (debit it).
            var (debitAccount, creditAccount) = amount > 0 ? (counter, "bonus_liability") : ("bonus_liability", counter);
            var size = Math.Abs(amount);
            csv.Row([Day(day), entryId, type, debitAccount, funder, partner, Minor(size), Units(size), "0", "0.00"]);
            csv.Row([Day(day), entryId, type, creditAccount, funder, partner, "0", "0.00", Minor(size), Units(size)]);
        }
        await csv.WriteAsync(Path.Combine(outDir, "journal.csv"));
        return (csv.Rows, liability);
    }

    /// <summary>The account on the other side of bonus_liability.</summary>
    private static string CounterAccount(string type, string partner) => type switch
    {
        "expiry" => "breakage_income",
        "redemption" or "redemption_refund" => partner.Length == 0 ? "redemption_bank" : "partner_payable",
        _ => partner.Length == 0 ? "cashback_expense" : "partner_receivable",
    };

    /// <summary>
    /// reconciliation.csv: each day's journal movement of bonus_liability against the ledger's available deltas, each
    /// partner-day's statement against the delivered payouts (undelivered events named, not counted as a difference),
    /// and, when given, against the engine's GetPayouts.
    /// </summary>
    private static async Task<int> ReconcileAsync(NpgsqlDataSource source, string outDir, DateTime start, DateTime end, List<Statement> statements,
        Dictionary<DateOnly, long> liability, EnginePayouts? engine, List<string> problems, CancellationToken cancellationToken)
    {
        var csv = new Csv(["check", "day", "partner_id", "expected_minor", "expected", "actual_minor", "actual", "difference_minor", "difference", "note"]);
        await using (var command = source.CreateCommand("""
            SELECT (recorded_at AT TIME ZONE 'UTC')::date, sum(available_delta_minor)::bigint
              FROM loyalty.ledger WHERE recorded_at >= $1 AND recorded_at < $2 GROUP BY 1 ORDER BY 1
            """))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = start });
            command.Parameters.Add(new NpgsqlParameter { Value = end });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            var seen = new HashSet<DateOnly>();
            while (await reader.ReadAsync(cancellationToken))
            {
                var day = reader.GetFieldValue<DateOnly>(0);
                seen.Add(day);
                Check("bonus_liability", day, "", reader.GetInt64(1), liability.GetValueOrDefault(day), "ledger available deltas vs journal");
            }
            foreach (var day in liability.Keys.Where(d => !seen.Contains(d))) Check("bonus_liability", day, "", 0, liability[day], "ledger available deltas vs journal");
        }

        var delivered = new Dictionary<(string, DateOnly), (long Net, long Events)>();
        await using (var command = source.CreateCommand("""
            SELECT partner_id, day, accrued_minor - clawed_back_minor - redeemed_minor, events
              FROM loyalty.partner_payouts WHERE day >= $1 AND day < $2
            """))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = DateOnly.FromDateTime(start) });
            command.Parameters.Add(new NpgsqlParameter { Value = DateOnly.FromDateTime(end) });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken)) delivered[(reader.GetString(0), reader.GetFieldValue<DateOnly>(1))] = (reader.GetInt64(2), reader.GetInt64(3));
        }
        var undelivered = new Dictionary<(string, DateOnly), long>();
        await using (var command = source.CreateCommand("""
            SELECT partner_id, (recorded_at AT TIME ZONE 'UTC')::date, count(*) FROM loyalty.partner_outbox
             WHERE recorded_at >= $1 AND recorded_at < $2 GROUP BY 1, 2
            """))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = start });
            command.Parameters.Add(new NpgsqlParameter { Value = end });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken)) undelivered[(reader.GetString(0), reader.GetFieldValue<DateOnly>(1))] = reader.GetInt64(2);
        }
        var keys = statements.Select(s => (s.Partner, s.Day)).Union(delivered.Keys).Distinct().OrderBy(k => k.Item1, StringComparer.Ordinal).ThenBy(k => k.Item2);
        foreach (var key in keys)
        {
            var expected = statements.FirstOrDefault(s => s.Partner == key.Item1 && s.Day == key.Item2)?.Net ?? 0;
            var waiting = undelivered.GetValueOrDefault(key);
            Check("partner_payouts_net", key.Item2, key.Item1, expected, delivered.GetValueOrDefault(key).Net,
                waiting > 0 ? $"{waiting} events not yet delivered" : "ledger statement vs delivered payouts", lagOnly: waiting > 0);
        }
        if (engine is not null)
        {
            foreach (var key in statements.Select(s => (s.Partner, s.Day)).Union(engine.Net.Keys).Distinct().OrderBy(k => k.Item1, StringComparer.Ordinal).ThenBy(k => k.Item2))
            {
                var expected = statements.FirstOrDefault(s => s.Partner == key.Item1 && s.Day == key.Item2)?.Net ?? 0;
                var waiting = engine.Undelivered.GetValueOrDefault(key.Item1);
                Check("get_payouts_net", key.Item2, key.Item1, expected, engine.Net.GetValueOrDefault((key.Item1, key.Item2)),
                    waiting > 0 ? $"{waiting} events of the partner not yet delivered" : "ledger statement vs the engine's GetPayouts", lagOnly: waiting > 0);
            }
        }
        await csv.WriteAsync(Path.Combine(outDir, "reconciliation.csv"));
        return csv.Rows;

        void Check(string check, DateOnly day, string partner, long expected, long actual, string note, bool lagOnly = false)
        {
            var difference = actual - expected;
            csv.Row([check, Day(day), partner, Minor(expected), Units(expected), Minor(actual), Units(actual), Minor(difference), Units(difference), note]);
            if (difference != 0 && !lagOnly) problems.Add($"{check} {Day(day)} {partner}: expected {Units(expected)}, got {Units(actual)}");
        }
    }

    private static string Day(DateOnly day) => day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    private static string Minor(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>Minor units as a decimal with two places, from the integer alone (no floating point): -1234 → "-12.34".</summary>
    public static string Units(long minor)
    {
        var magnitude = minor < 0 ? (ulong)(-(minor + 1)) + 1 : (ulong)minor;
        return string.Create(CultureInfo.InvariantCulture, $"{(minor < 0 ? "-" : "")}{magnitude / 100}.{magnitude % 100:00}");
    }

    private static string FileSafe(string id)
    {
        var safe = new StringBuilder(id.Length);
        foreach (var ch in id) safe.Append(char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_' or '.' ? ch : '_');
        return safe.ToString();
    }

    /// <summary>RFC 4180: CRLF line ends, one header row, a field quoted when it holds a comma, quote, CR or LF (quotes doubled).</summary>
    private sealed class Csv(string[] header)
    {
        private readonly StringBuilder _text = new StringBuilder().Append(Line(header));

        public int Rows { get; private set; }

        public void Row(string[] fields)
        {
            _text.Append(Line(fields));
            Rows++;
        }

        public Task WriteAsync(string path) => File.WriteAllTextAsync(path, _text.ToString(), Utf8);

        private static string Line(string[] fields) => string.Join(',', fields.Select(Field)) + "\r\n";

        private static string Field(string value) =>
            value.AsSpan().IndexOfAny(",\"\r\n") < 0 ? value : "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }
}
