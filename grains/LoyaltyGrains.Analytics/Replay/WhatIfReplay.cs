using System.Diagnostics;
using System.Globalization;
using LoyaltyGrains.Domain;
using Npgsql;
using NpgsqlTypes;

namespace LoyaltyGrains.Analytics.Replay;

/// <summary>What to replay: a candidate programme over the window [From, To) of ledger recorded_at.</summary>
public sealed record WhatIfRequest(ProgramConfig Candidate, DateTimeOffset From, DateTimeOffset To)
{
    /// <summary>Members reported as most affected (bounded).</summary>
    public int TopMembers { get; init; } = 20;

    public const int TopMembersMax = 1_000;

    /// <summary>
    /// Replay starts this many whole programme months before the window's month, so the window's first month has its
    /// month state (category cap used, pending authorizations, the previous month's spend for tiers) rebuilt.
    /// </summary>
    public int LookbackMonths { get; init; } = 1;

    public const int LookbackMonthsMax = 12;

    public IReadOnlyList<string> Validate(MccCatalogue catalogue)
    {
        var errors = new List<string>();
        foreach (var error in Candidate.Validate(catalogue)) errors.Add("program." + error);
        if (From < Limits.TimeMin || From >= Limits.TimeMax) errors.Add($"from: must be {Limits.TimeMin:yyyy-MM-dd}..{Limits.TimeMax:yyyy-MM-dd}");
        if (To <= From) errors.Add("to: must be after from");
        else if (To > Limits.TimeMax) errors.Add($"to: must be at most {Limits.TimeMax:yyyy-MM-dd}");
        if (TopMembers is < 0 or > TopMembersMax) errors.Add($"top_members: must be 0..{TopMembersMax}, got {TopMembers}");
        if (LookbackMonths is < 0 or > LookbackMonthsMax) errors.Add($"lookback_months: must be 0..{LookbackMonthsMax}, got {LookbackMonths}");
        return errors;
    }

    /// <summary>The first instant replayed: the start (programme calendar) of the month LookbackMonths before From's.</summary>
    public (DateTimeOffset Start, int FirstMonth) ReplayStart()
    {
        var month = Candidate.MonthOf(From);
        for (var i = 0; i < LookbackMonths; i++) month = month.Previous();
        var offset = TimeSpan.FromMinutes(Candidate.UtcOffsetMinutes);
        return (new DateTimeOffset(month.Year, month.Month, 1, 0, 0, 0, offset).ToUniversalTime(), month.Value);
    }
}

/// <summary>
/// The what-if replay: streams the window's ledger rows from PostgreSQL (binary COPY of a query ordered by member, then
/// sequence), replays each member through the candidate with <see cref="MemberReplay"/>, and adds up the accruals in
/// <see cref="WhatIfTotals"/>. Memory is one member's state plus bounded totals, whatever the window's size; nothing is
/// written anywhere. The same rows and candidate always give the same result.
/// </summary>
public static class WhatIfReplay
{
    /// <summary>The kinds that move a purchase's accrual or the month state pricing reads (EntryKind numbers).</summary>
    private static readonly int[] ReplayedKinds =
    [
        (int)EntryKind.Enroll, (int)EntryKind.Authorize, (int)EntryKind.Capture, (int)EntryKind.ForcePost, (int)EntryKind.Reverse,
        (int)EntryKind.ReverseApplied, (int)EntryKind.Refund, (int)EntryKind.ExpirePending, (int)EntryKind.ChooseCategories,
        (int)EntryKind.TierAssigned,
    ];

    /// <summary>How long one read of the stream may wait (the server sorts the whole window before the first row).</summary>
    public static readonly TimeSpan ReadTimeout = TimeSpan.FromHours(1);

    public static async Task<WhatIfResult> RunAsync(NpgsqlDataSource source, WhatIfRequest request, MccCatalogue catalogue,
        IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        var errors = request.Validate(catalogue);
        if (errors.Count > 0) throw new ArgumentException(string.Join("; ", errors), nameof(request));
        var (replayStart, firstMonth) = request.ReplayStart();
        // The stream is read with the synchronous API on a pool thread: one reader, no awaits per field (measurably faster).
        return await Task.Run(() => Stream(source, request, catalogue, replayStart, firstMonth, progress, cancellationToken), cancellationToken);
    }

    private static WhatIfResult Stream(NpgsqlDataSource source, WhatIfRequest request, MccCatalogue catalogue, DateTimeOffset replayStart, int firstMonth,
        IProgress<long>? progress, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        using var process = Process.GetCurrentProcess();
        long peakWorkingSet = 0;
        using var connection = source.OpenConnection();
        using var cancel = cancellationToken.Register(() => connection.Close());
        // COPY takes no parameters: the bounds are formatted here from DateTimeOffset values (no caller text reaches the SQL).
        var sql = string.Create(CultureInfo.InvariantCulture, $"""
            COPY (
                SELECT member_id, sequence, kind, purchase_id, amount_minor, available_delta_minor,
                       CASE WHEN kind IN (loyalty.kind('Capture'), loyalty.kind('ForcePost'), loyalty.kind('Refund'))
                              OR coalesce(has_campaign_line, loyalty.breakdown_has_campaign_line(breakdown)) THEN breakdown ELSE '' END,
                       mcc, category, merchant_id, occurred_at, recorded_at, purchase_month, spend_delta_minor,
                       CASE WHEN kind IN (loyalty.kind('Enroll'), loyalty.kind('ChooseCategories'), loyalty.kind('TierAssigned')) THEN detail ELSE '' END
                  FROM loyalty.ledger
                 WHERE kind IN ({string.Join(", ", ReplayedKinds)}) AND recorded_at < '{Timestamp(request.To)}'
                   AND (recorded_at >= '{Timestamp(replayStart)}' OR kind = loyalty.kind('Enroll'))
                 ORDER BY member_id, sequence
            ) TO STDOUT (FORMAT BINARY)
            """);
        var totals = new WhatIfTotals(request.TopMembers);
        long rows = 0, members = 0;
        using (var export = connection.BeginBinaryExport(sql))
        {
            // The first row comes only once the server has ordered the window (minutes for tens of millions of rows);
            // each read may wait that long, bounded by the caller's cancellation and this ceiling.
            export.Timeout = ReadTimeout;
            MemberReplay? member = null;
            string? memberId = null;
            while (export.StartRow() != -1)
            {
                var row = new ReplayRow
                {
                    MemberId = export.Read<string>(NpgsqlDbType.Text),
                    Sequence = export.Read<long>(NpgsqlDbType.Bigint),
                    Kind = (EntryKind)export.Read<short>(NpgsqlDbType.Smallint),
                    PurchaseId = export.Read<string>(NpgsqlDbType.Text),
                    AmountMinor = export.Read<long>(NpgsqlDbType.Bigint),
                    AvailableDeltaMinor = export.Read<long>(NpgsqlDbType.Bigint),
                    Breakdown = export.Read<string>(NpgsqlDbType.Text),
                    Mcc = export.Read<int>(NpgsqlDbType.Integer),
                    Category = export.Read<string>(NpgsqlDbType.Text),
                    MerchantId = export.Read<string>(NpgsqlDbType.Text),
                    OccurredAt = export.Read<DateTimeOffset>(NpgsqlDbType.TimestampTz),
                    RecordedAt = export.Read<DateTimeOffset>(NpgsqlDbType.TimestampTz),
                    PurchaseMonth = export.Read<int>(NpgsqlDbType.Integer),
                    SpendDeltaMinor = export.Read<long>(NpgsqlDbType.Bigint),
                    Detail = export.Read<string>(NpgsqlDbType.Text),
                };
                if (!string.Equals(row.MemberId, memberId, StringComparison.Ordinal))
                {
                    if (member is not null) totals.EndMember(memberId!, member.TierMonthsChanged);
                    member = new MemberReplay(request.Candidate, catalogue, firstMonth);
                    memberId = row.MemberId;
                    members++;
                }
                var replayed = member!.Apply(row);
                if (replayed is { } accrual && row.RecordedAt >= request.From) totals.Add(accrual);
                if (++rows % 1_000_000 == 0)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    progress?.Report(rows);
                    peakWorkingSet = Math.Max(peakWorkingSet, WorkingSet(process));
                }
            }
            if (member is not null) totals.EndMember(memberId!, member.TierMonthsChanged);
        }
        peakWorkingSet = Math.Max(peakWorkingSet, WorkingSet(process));
        return totals.Result(request.From, request.To, replayStart, rows, members, stopwatch.Elapsed, peakWorkingSet);
    }

    private static long WorkingSet(Process process)
    {
        process.Refresh();
        return process.PeakWorkingSet64;
    }

    private static string Timestamp(DateTimeOffset instant) =>
        instant.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture) + "+00";
}
