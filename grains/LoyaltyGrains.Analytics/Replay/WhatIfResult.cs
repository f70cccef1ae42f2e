using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Analytics.Replay;

/// <summary>Actual and candidate cashback of one group (category, tier, partner, campaign, month), and its purchases.</summary>
public sealed class DeltaGroup(string key)
{
    public string Key { get; } = key;
    public long Purchases { get; private set; }
    public long ActualMinor { get; private set; }
    public long CandidateMinor { get; private set; }
    public long DeltaMinor => checked(CandidateMinor - ActualMinor);

    /// <summary>Change in basis points of the actual figure (0 when nothing was accrued).</summary>
    public long DeltaBps => Ratio.Bps(DeltaMinor, ActualMinor);

    public void Add(long purchases, long actualMinor, long candidateMinor)
    {
        Purchases = checked(Purchases + purchases);
        ActualMinor = checked(ActualMinor + actualMinor);
        CandidateMinor = checked(CandidateMinor + candidateMinor);
    }
}

/// <summary>A member's accrual over the window, actual and under the candidate.</summary>
public sealed record MemberDelta(string MemberId, long Purchases, long ActualMinor, long CandidateMinor)
{
    public long DeltaMinor => CandidateMinor - ActualMinor;
}

/// <summary>Behaviour figures of the window: how the candidate changes who earns what, counted per purchase and member.</summary>
public sealed record WhatIfBehaviour(
    long PurchasesEarningMore,
    long PurchasesEarningLess,
    long PurchasesUnchanged,
    long MembersEarningMore,
    long MembersEarningLess,
    long MembersUnchanged,
    long ActualCategoryPurchases,
    long CandidateCategoryPurchases,
    long TierMonthsChanged);

/// <summary>How the replay ran: rows read, time taken, memory, and accruals it could not replay (carried at actual).</summary>
public sealed record WhatIfRun(long RowsRead, long Members, long AccrualRows, long CarriedRows, long CarriedMinor, TimeSpan Elapsed, long PeakWorkingSetBytes)
{
    public long RowsPerSecond => Elapsed.TotalSeconds <= 0 ? 0 : (long)(RowsRead / Elapsed.TotalSeconds);
}

/// <summary>The what-if report: totals, groups, behaviour and the members most affected, for the window [From, To).</summary>
public sealed record WhatIfResult(
    DateTimeOffset From,
    DateTimeOffset To,
    DateTimeOffset ReplayedFrom,
    long Purchases,
    long SpendMinor,
    long ActualMinor,
    long CandidateMinor,
    IReadOnlyList<DeltaGroup> ByCategory,
    IReadOnlyList<DeltaGroup> ByTier,
    IReadOnlyList<DeltaGroup> ByFunder,
    IReadOnlyList<DeltaGroup> ByCampaign,
    IReadOnlyList<DeltaGroup> ByRule,
    IReadOnlyList<DeltaGroup> ByMonth,
    IReadOnlyList<MemberDelta> MostAffected,
    WhatIfBehaviour Behaviour,
    WhatIfRun Run)
{
    public long DeltaMinor => CandidateMinor - ActualMinor;
    public long DeltaBps => Ratio.Bps(DeltaMinor, ActualMinor);
    public long ActualRateBps => Ratio.Bps(ActualMinor, SpendMinor);
    public long CandidateRateBps => Ratio.Bps(CandidateMinor, SpendMinor);
}

/// <summary>
/// Adds up replayed accruals into bounded groups (categories, tiers, funders, campaigns, rules and months are few) and
/// keeps the top-N members by |delta| in a bounded heap, ties broken by member id, so the result does not depend on
/// the order members arrive in.
/// </summary>
public sealed class WhatIfTotals(int topMembers)
{
    private readonly Dictionary<string, DeltaGroup> _category = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DeltaGroup> _tier = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DeltaGroup> _funder = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DeltaGroup> _campaign = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DeltaGroup> _rule = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DeltaGroup> _month = new(StringComparer.Ordinal);
    // The heap's root is the least affected member kept, so a more affected one replaces it.
    private readonly PriorityQueue<MemberDelta, MemberDelta> _top = new(Comparer<MemberDelta>.Create(CompareAffected));

    private long _purchases, _spend, _actual, _candidate, _more, _less, _same, _membersMore, _membersLess, _membersSame;
    private long _actualCategory, _candidateCategory, _tierMonthsChanged, _accrualRows, _carriedRows, _carriedMinor;
    private long _memberPurchases, _memberActual, _memberCandidate;

    public long AccrualRows => _accrualRows;

    public void Add(in ReplayedAccrual accrual)
    {
        var row = accrual.Row;
        var purchase = row.Kind is EntryKind.Capture or EntryKind.ForcePost ? 1 : 0;
        _accrualRows++;
        _purchases += purchase;
        _spend = checked(_spend + row.SpendDeltaMinor);
        _actual = checked(_actual + accrual.ActualMinor);
        _candidate = checked(_candidate + accrual.CandidateMinor);
        _memberPurchases += purchase;
        _memberActual = checked(_memberActual + accrual.ActualMinor);
        _memberCandidate = checked(_memberCandidate + accrual.CandidateMinor);
        if (accrual.Carried)
        {
            _carriedRows++;
            _carriedMinor = checked(_carriedMinor + accrual.ActualMinor);
        }
        if (purchase == 1)
        {
            if (accrual.CandidateMinor > accrual.ActualMinor) _more++;
            else if (accrual.CandidateMinor < accrual.ActualMinor) _less++;
            else _same++;
        }
        Group(_category, row.Category.Length == 0 ? "(none)" : row.Category, purchase, accrual.ActualMinor, accrual.CandidateMinor);
        Group(_tier, accrual.ActualTier.Length == 0 ? "(unknown)" : accrual.ActualTier, purchase, accrual.ActualMinor, accrual.CandidateMinor);
        Group(_month, new MonthKey(row.PurchaseMonth).ToString() + "|" + row.Category, purchase, accrual.ActualMinor, accrual.CandidateMinor);

        // Lines: the actual ones from the row's breakdown, the candidate's from the replay; a carried row counts its
        // actual lines on both sides.
        var actualLines = BreakdownCodec.Decode(row.Breakdown);
        var candidateLines = accrual.Carried ? actualLines : accrual.CandidateLines;
        var actualPartner = CountLines(actualLines, purchase, actual: true);
        var candidatePartner = CountLines(candidateLines, purchase, actual: false);
        Group(_funder, "bank", purchase, accrual.ActualMinor - actualPartner, accrual.CandidateMinor - candidatePartner);
        if (purchase == 1)
        {
            if (HasCategoryLine(actualLines)) _actualCategory++;
            if (HasCategoryLine(candidateLines)) _candidateCategory++;
        }
    }

    private static bool HasCategoryLine(AccrualLine[] lines)
    {
        foreach (var line in lines)
        {
            if (line.IsCategoryLine && line.AmountMinor != 0) return true;
        }
        return false;
    }

    /// <summary>Books lines by rule, campaign and partner; returns the partner-funded part (the rest is the bank's).</summary>
    private long CountLines(AccrualLine[] lines, int purchase, bool actual)
    {
        long partnerMinor = 0;
        foreach (var line in lines)
        {
            var (actualMinor, candidateMinor) = actual ? (line.AmountMinor, 0L) : (0L, line.AmountMinor);
            var counted = actual ? purchase : 0;
            Group(_rule, line.IsCategoryLine ? "category" : line.Rule.StartsWith(CampaignRule.RulePrefix, StringComparison.Ordinal) ? "campaign" : line.Rule,
                counted, actualMinor, candidateMinor);
            if (!line.Rule.StartsWith(CampaignRule.RulePrefix, StringComparison.Ordinal)) continue;
            Group(_campaign, line.Rule[CampaignRule.RulePrefix.Length..], counted, actualMinor, candidateMinor);
            if (line.PartnerId.Length == 0) continue;
            partnerMinor = checked(partnerMinor + line.AmountMinor);
            Group(_funder, "partner:" + line.PartnerId, counted, actualMinor, candidateMinor);
        }
        return partnerMinor;
    }

    /// <summary>Ends a member: its delta enters the top-N (and the member counts).</summary>
    public void EndMember(string memberId, int tierMonthsChanged)
    {
        _tierMonthsChanged += tierMonthsChanged;
        if (_memberPurchases != 0 || _memberActual != 0 || _memberCandidate != 0)
        {
            if (_memberCandidate > _memberActual) _membersMore++;
            else if (_memberCandidate < _memberActual) _membersLess++;
            else _membersSame++;
            if (topMembers > 0)
            {
                var delta = new MemberDelta(memberId, _memberPurchases, _memberActual, _memberCandidate);
                if (_top.Count < topMembers) _top.Enqueue(delta, delta);
                else if (CompareAffected(delta, _top.Peek()) > 0) _top.EnqueueDequeue(delta, delta);
            }
        }
        _memberPurchases = _memberActual = _memberCandidate = 0;
    }

    /// <summary>Positive when a is more affected than b: larger |delta|, then the smaller member id.</summary>
    private static int CompareAffected(MemberDelta a, MemberDelta b)
    {
        var byDelta = Math.Abs(a.DeltaMinor).CompareTo(Math.Abs(b.DeltaMinor));
        return byDelta != 0 ? byDelta : string.CompareOrdinal(b.MemberId, a.MemberId);
    }

    private static void Group(Dictionary<string, DeltaGroup> groups, string key, long purchases, long actualMinor, long candidateMinor)
    {
        if (!groups.TryGetValue(key, out var group)) groups[key] = group = new DeltaGroup(key);
        group.Add(purchases, actualMinor, candidateMinor);
    }

    public WhatIfResult Result(DateTimeOffset from, DateTimeOffset to, DateTimeOffset replayedFrom, long rowsRead, long members, TimeSpan elapsed, long peakWorkingSet)
    {
        var top = new List<MemberDelta>(_top.Count);
        while (_top.Count > 0) top.Add(_top.Dequeue());
        top.Reverse();
        return new WhatIfResult(from, to, replayedFrom, _purchases, _spend, _actual, _candidate,
            Sorted(_category), Sorted(_tier), Sorted(_funder), Sorted(_campaign), Sorted(_rule), Sorted(_month), top,
            new WhatIfBehaviour(_more, _less, _same, _membersMore, _membersLess, _membersSame, _actualCategory, _candidateCategory, _tierMonthsChanged),
            new WhatIfRun(rowsRead, members, _accrualRows, _carriedRows, _carriedMinor, elapsed, peakWorkingSet));
    }

    private static List<DeltaGroup> Sorted(Dictionary<string, DeltaGroup> groups) => [.. groups.Values.OrderBy(g => g.Key, StringComparer.Ordinal)];
}
