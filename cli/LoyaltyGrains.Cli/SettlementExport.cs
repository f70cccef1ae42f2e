using System.Globalization;
using System.Text;
using Npgsql;

namespace LoyaltyGrains.Cli;

/// <summary>
/// The `export` verb's work (ExportVerb: --from YYYY-MM-DD --to YYYY-MM-DD --out DIR; PostgreSQL mode, LOYALTY_POSTGRES): per-partner payout statements
/// and the programme's double-entry journal for the UTC days from..to (both included), as CSV, computed from the ledger
/// (the truth) and reconciled against it and against the delivered payouts. Columns: docs/SETTLEMENT.md.
/// With `--engine URL` (and a token with the admin role in LOYALTY_TOKEN), it also asks the running engine's
/// Offers.GetPayouts for every partner and reconciles those figures too.
/// Exit 0 when everything reconciles, 1 when something does not (the files are still written) or the database fails
/// (then nothing is written), 2 on bad arguments.
/// </summary>
public static class SettlementExport
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    /// <summary>Ledger kinds in the journal, by the number stored (EntryKind), and the entry type each books as.</summary>
    private static readonly Dictionary<short, string> EntryTypes = new()
    {
        [3] = "accrual", [4] = "accrual", [17] = "referral", [8] = "clawback", [11] = "redemption", [12] = "redemption_refund", [16] = "expiry",
    };

    /// <summary>
    /// Writes the files into a staging folder next to <paramref name="outDir"/> and moves them in only when all are
    /// written: a failure (the database down mid-way) leaves no folder and no half of an export behind.
    /// </summary>
    public static async Task<int> RunAsync(string postgres, DateOnly from, DateOnly to, string outDir, string? engineUrl, CliProgress progress, TextWriter output)
    {
        var start = from.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc);
        var end = to.AddDays(1).ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc);
        var target = Path.GetFullPath(outDir);
        var staging = Path.Combine(Path.GetDirectoryName(target) ?? ".", $".{Path.GetFileName(target)}.partial-{Environment.ProcessId}");
        Directory.CreateDirectory(staging);
        try
        {
            await using var source = NpgsqlDataSource.Create(postgres);
            var problems = new List<string>();
            var statements = await progress.StepAsync("1/4 partner statements", () => StatementsAsync(source, start, end));
            var payoutRows = await WritePayoutsAsync(staging, statements);
            var (journalRows, liability) = await progress.StepAsync("2/4 journal", () => WriteJournalAsync(source, staging, start, end));
            var engine = engineUrl is { Length: > 0 } url ? await progress.StepAsync("3/4 the engine's GetPayouts", () => EnginePayoutsAsync(url, statements, start, end)) : null;
            var reconciliation = await progress.StepAsync("4/4 reconciliation", () => ReconcileAsync(source, staging, start, end, statements, liability, engine, problems));
            Publish(staging, target);
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"export {from:yyyy-MM-dd}..{to:yyyy-MM-dd}: {statements.Select(s => s.Partner).Distinct().Count()} partners, {payoutRows} payout lines, " +
                $"{journalRows} journal lines, {reconciliation} reconciliation checks, {problems.Count} not reconciled -> {outDir}"));
            foreach (var problem in problems) progress.Write("not reconciled: " + problem);
            return problems.Count == 0 ? 0 : 1;
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
    }

    /// <summary>The staged files into the target folder (created, or its same-named files replaced).</summary>
    private static void Publish(string staging, string target)
    {
        if (!Directory.Exists(target))
        {
            Directory.Move(staging, target);
            return;
        }
        foreach (var file in Directory.GetFiles(staging)) File.Move(file, Path.Combine(target, Path.GetFileName(file)), overwrite: true);
    }

    private sealed record Statement(string Partner, DateOnly Day, long Accrued, long ClawedBack, long Redeemed, long Events)
    {
        public long Net => Accrued - ClawedBack - Redeemed;
    }

    private static async Task<List<Statement>> StatementsAsync(NpgsqlDataSource source, DateTime start, DateTime end)
    {
        await using var command = source.CreateCommand("""
            SELECT partner_id, day, accrued_minor, clawed_back_minor, redeemed_minor, events
              FROM loyalty.partner_ledger_lines($1, $2) ORDER BY partner_id, day
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = start });
        command.Parameters.Add(new NpgsqlParameter { Value = end });
        var rows = new List<Statement>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
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
    private static async Task<(int Rows, Dictionary<DateOnly, long> Liability)> WriteJournalAsync(NpgsqlDataSource source, string outDir, DateTime start, DateTime end)
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
        command.Parameters.Add(new NpgsqlParameter { Value = EntryTypes.Keys.ToArray() });
        // Kinds 3 and 4 both book as "accrual": merged per day and funder before the entries are numbered.
        var sums = new SortedDictionary<(DateOnly Day, string Type, string Funder), long>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                var key = (reader.GetFieldValue<DateOnly>(0), EntryTypes[reader.GetInt16(1)], reader.IsDBNull(2) ? "" : reader.GetString(2));
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
    /// reconciliation.csv: each day's journal movement of bonus_liability against the ledger's available deltas, and each
    /// partner-day's statement against the delivered payouts (undelivered events named, not counted as a difference).
    /// </summary>
    /// <summary>What the engine's GetPayouts answers, per partner and day (net), and each partner's undelivered events.</summary>
    private sealed record EnginePayouts(Dictionary<(string, DateOnly), long> Net, Dictionary<string, long> Undelivered);

    private static async Task<EnginePayouts> EnginePayoutsAsync(string url, List<Statement> statements, DateTime start, DateTime end)
    {
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(url);
        var offers = new LoyaltyGrains.Gateway.V1.Offers.OffersClient(channel);
        var headers = new Grpc.Core.Metadata();
        if (Environment.GetEnvironmentVariable("LOYALTY_TOKEN") is { Length: > 0 } token) headers.Add("authorization", "Bearer " + token);
        var result = new EnginePayouts([], new Dictionary<string, long>(StringComparer.Ordinal));
        foreach (var partner in statements.Select(s => s.Partner).Distinct(StringComparer.Ordinal))
        {
            var statement = await offers.GetPayoutsAsync(new LoyaltyGrains.Gateway.V1.GetPayoutsRequest
            {
                PartnerId = partner, From = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTime(start), To = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTime(end),
            }, headers, DateTime.UtcNow.AddSeconds(30));
            foreach (var line in statement.Lines) result.Net[(partner, DateOnly.ParseExact(line.Day, "yyyy-MM-dd", CultureInfo.InvariantCulture))] = line.NetMinor;
            result.Undelivered[partner] = statement.UndeliveredEvents;
        }
        return result;
    }

    private static async Task<int> ReconcileAsync(NpgsqlDataSource source, string outDir, DateTime start, DateTime end, List<Statement> statements,
        Dictionary<DateOnly, long> liability, EnginePayouts? engine, List<string> problems)
    {
        var csv = new Csv(["check", "day", "partner_id", "expected_minor", "expected", "actual_minor", "actual", "difference_minor", "difference", "note"]);
        await using (var command = source.CreateCommand("""
            SELECT (recorded_at AT TIME ZONE 'UTC')::date, sum(available_delta_minor)::bigint
              FROM loyalty.ledger WHERE recorded_at >= $1 AND recorded_at < $2 GROUP BY 1 ORDER BY 1
            """))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = start });
            command.Parameters.Add(new NpgsqlParameter { Value = end });
            await using var reader = await command.ExecuteReaderAsync();
            var seen = new HashSet<DateOnly>();
            while (await reader.ReadAsync())
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
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync()) delivered[(reader.GetString(0), reader.GetFieldValue<DateOnly>(1))] = (reader.GetInt64(2), reader.GetInt64(3));
        }
        var undelivered = new Dictionary<(string, DateOnly), long>();
        await using (var command = source.CreateCommand("""
            SELECT partner_id, (recorded_at AT TIME ZONE 'UTC')::date, count(*) FROM loyalty.partner_outbox
             WHERE recorded_at >= $1 AND recorded_at < $2 GROUP BY 1, 2
            """))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = start });
            command.Parameters.Add(new NpgsqlParameter { Value = end });
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync()) undelivered[(reader.GetString(0), reader.GetFieldValue<DateOnly>(1))] = reader.GetInt64(2);
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
                Check("get_payouts_net", key.Item2, key.Item1, expected, engine.Net.GetValueOrDefault(key),
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
