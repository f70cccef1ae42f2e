using LoyaltyGrains.Analytics.Replay;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Persistence;
using LoyaltyGrains.Tests.Durability;
using Microsoft.Extensions.Logging.Abstractions;

namespace LoyaltyGrains.Tests.Analytics;

/// <summary>
/// A ledger made by the engine's own decisions: every message goes through <see cref="MemberAccount"/> (as the member
/// grain does, campaign grants handed in as a lease would grant them), and the entries it records are written to a real
/// PostgreSQL ledger through <see cref="PostgresLedger"/>. So the accruals analytics read are the engine's, not made up.
/// </summary>
public sealed class EngineLedger : IAsyncDisposable
{
    private readonly Dictionary<string, MemberAccount> _members = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<LedgerEntry>> _history = new(StringComparer.Ordinal);

    private readonly TestDatabase? _database;
    private readonly PostgresLedger? _ledger;

    private readonly CampaignBook? _budgets;

    private EngineLedger(TestDatabase? database, PostgresLedger? ledger, ProgramConfig program, CampaignBook? budgets = null)
    {
        _database = database;
        _ledger = ledger;
        _budgets = budgets;
        Program = program;
        Programs = ProgramHistory.Of(program);
    }

    public TestDatabase Database => _database ?? throw new InvalidOperationException("an in-memory ledger has no database");
    public PostgresLedger Ledger => _ledger ?? throw new InvalidOperationException("an in-memory ledger has no database");
    public ProgramConfig Program { get; }
    public ProgramHistory Programs { get; }
    /// <summary>Entries not yet written to the database.</summary>
    public List<LedgerEntry> Entries { get; } = [];

    /// <summary>Every entry made, in the order made.</summary>
    public List<LedgerEntry> All { get; } = [];

    public static async Task<EngineLedger> CreateAsync(string prefix, ProgramConfig program)
    {
        var database = await TestDatabase.CreateAsync(prefix);
        await PostgresHosting.PrepareDatabaseAsync(database.ConnectionString);
        var ledger = new PostgresLedger(database.ConnectionString, new PostgresLedgerOptions(), NullLogger<PostgresLedger>.Instance);
        return new EngineLedger(database, ledger, program);
    }

    /// <summary>The same decisions with no database: entries are only kept in <see cref="All"/>.</summary>
    public static EngineLedger InMemory(ProgramConfig program) => new(null, null, program);

    /// <summary>In memory, with campaign budgets and first-N slots counted as the leases count them (<see cref="CampaignBook"/>).</summary>
    public static EngineLedger InMemory(ProgramConfig program, CampaignBook budgets) => new(null, null, program, budgets);

    public MemberAccount Member(string memberId) => _members[memberId];

    public void Enroll(string memberId, DateTimeOffset at, bool premium = false, string tier = "")
    {
        var account = new MemberAccount(memberId);
        _members[memberId] = account;
        _history[memberId] = [];
        Take(memberId, account.Enroll(new EnrollCommand(memberId, premium, "", tier), Program, at).IsOk);
    }

    public bool Choose(string memberId, MonthKey month, DateTimeOffset at, params string[] categories) =>
        Take(memberId, _members[memberId].ChooseCategories(new ChooseCategoriesCommand(month, categories), Programs, at).IsOk);

    public bool Authorize(string memberId, string id, long amount, int mcc, DateTimeOffset at, IReadOnlyList<CampaignRule>? campaigns = null,
        string merchant = "shop")
    {
        var grants = Grants(memberId, amount, mcc, merchant, at, campaigns);
        return Take(memberId, _members[memberId].Authorize(new AuthorizeCommand(id, "card-" + memberId, amount, "RUB", mcc, merchant, at), Programs,
            MccCatalogue.Default, at, grants, Cold(memberId, _members[memberId].ColdAuthorization(id, at, at))).IsOk, grants);
    }

    public bool Capture(string memberId, string id, string authorizationId, long amount, DateTimeOffset at) =>
        Take(memberId, _members[memberId].Capture(new CaptureCommand(id, authorizationId, "card-" + memberId, amount, at, -1, "", ""), Programs,
            MccCatalogue.Default, at, null, Cold(memberId, _members[memberId].ColdReference(id, authorizationId))).IsOk);

    public bool ForcePost(string memberId, string id, long amount, int mcc, DateTimeOffset at, IReadOnlyList<CampaignRule>? campaigns = null,
        string merchant = "shop")
    {
        var grants = Grants(memberId, amount, mcc, merchant, at, campaigns);
        return Take(memberId, _members[memberId].Capture(new CaptureCommand(id, "", "card-" + memberId, amount, at, mcc, merchant, "RUB"), Programs,
            MccCatalogue.Default, at, grants, Cold(memberId, _members[memberId].ColdReference(id, ""))).IsOk, grants);
    }

    public bool Reverse(string memberId, string id, string authorizationId, long amount, DateTimeOffset at) =>
        Take(memberId, _members[memberId].Reverse(new ReverseCommand(id, authorizationId, "card-" + memberId, amount, at), Programs, at, Cold(memberId, _members[memberId].ColdReference(id, authorizationId))).IsOk);

    public bool Refund(string memberId, string id, string original, long amount, DateTimeOffset at) =>
        Take(memberId, _members[memberId].Refund(new RefundCommand(id, original, "card-" + memberId, amount, at), Programs, at, Cold(memberId, _members[memberId].ColdReference(id, original))).IsOk);

    public bool Redeem(string memberId, string id, long amount, DateTimeOffset at) =>
        Take(memberId, _members[memberId].Redeem(new RedeemCommand(id, "", amount), Programs, at).IsOk);

    public bool Activate(string memberId, CampaignRule campaign, DateTimeOffset at) =>
        Take(memberId, _members[memberId].ActivateCampaign(campaign, at).IsOk);

    /// <summary>Housekeeping a touch does (pending expiry, lot expiry), as the grain's sweep would.</summary>
    public void Touch(string memberId, DateTimeOffset at)
    {
        _members[memberId].Touch(Program, at);
        Take(memberId, true);
    }

    /// <summary>As the member grain does: the ledger's rows only when the message names what memory no longer holds.</summary>
    private List<LedgerEntry>? Cold(string memberId, string? reference) => reference is null ? null : _history[memberId];

    /// <summary>
    /// What the grain asks the domain before an authorization, granted from the budget book when there is one (else every
    /// claim in full: an ample budget).
    /// </summary>
    private CampaignGrant[]? Grants(string memberId, long amount, int mcc, string merchant, DateTimeOffset at, IReadOnlyList<CampaignRule>? campaigns)
    {
        if (campaigns is null || campaigns.Count == 0) return null;
        var claims = _members[memberId].PlanCampaigns(Programs, MccCatalogue.Default, campaigns, amount, mcc, merchant, at);
        return _budgets is null
            ? [.. claims.Select(c => new CampaignGrant(c.Campaign, c.DesiredMinor, c.NeedsMemberSlot))]
            : _budgets.Reserve(memberId, claims);
    }

    /// <summary>As the grain does after a decision: a refused posting releases what was reserved for it; given-back budget returns.</summary>
    private bool Take(string memberId, bool ok, CampaignGrant[]? reserved = null)
    {
        var account = _members[memberId];
        if (_budgets is not null)
        {
            if (!ok && reserved is not null) _budgets.Release(memberId, reserved);
            foreach (var returned in account.BudgetReturns) _budgets.Return(returned);
        }
        _history[memberId].AddRange(account.Uncommitted);
        Entries.AddRange(account.Uncommitted);
        All.AddRange(account.Uncommitted);
        account.ClearUncommitted();
        return ok;
    }

    public async Task FlushAsync()
    {
        foreach (var member in Entries.GroupBy(e => e.MemberId, StringComparer.Ordinal))
        {
            foreach (var chunk in member.Chunk(500)) await Ledger.AppendAsync(chunk);
        }
        Entries.Clear();
    }

    /// <summary>A ledger entry as the replay reads it from the database.</summary>
    public static ReplayRow Row(LedgerEntry e) => new()
    {
        MemberId = e.MemberId, Sequence = e.Sequence, Kind = e.Kind, PurchaseId = e.PurchaseId, AmountMinor = e.AmountMinor,
        AvailableDeltaMinor = e.AvailableDeltaMinor, Breakdown = BreakdownCodec.Encode(e.Breakdown), Mcc = e.Mcc, Category = e.Category,
        MerchantId = e.MerchantId, OccurredAt = e.OccurredAt, RecordedAt = e.RecordedAt, PurchaseMonth = e.PurchaseMonth,
        SpendDeltaMinor = e.SpendDeltaMinor, Detail = e.Detail,
    };

    public async ValueTask DisposeAsync()
    {
        if (_ledger is not null) await _ledger.DisposeAsync();
        if (_database is not null) await _database.DisposeAsync();
    }
}

/// <summary>
/// Campaign budgets and first-N slots as the campaign grain counts them, for one process: a claim gets what is left of
/// the budget (a part when it runs short), a member needing a slot gets one while slots remain and keeps it; given-back
/// budget (reversals, refunds, expiry) and a refused posting's reservation return to the budget.
/// </summary>
public sealed class CampaignBook(IEnumerable<CampaignRule> campaigns)
{
    private readonly Dictionary<string, long> _left = campaigns.Where(c => c.BudgetMinor > 0).ToDictionary(c => c.CampaignId, c => c.BudgetMinor);
    private readonly Dictionary<string, HashSet<string>> _joined = [];

    /// <summary>Grants whose amount the budget cut (a part), over the book's life.</summary>
    public int PartGrants { get; private set; }

    /// <summary>Claims refused for want of budget or of a first-N slot.</summary>
    public int RefusedClaims { get; private set; }

    public CampaignGrant[] Reserve(string memberId, IReadOnlyList<CampaignClaim> claims)
    {
        var grants = new List<CampaignGrant>(claims.Count);
        foreach (var claim in claims)
        {
            var campaign = claim.Campaign;
            var members = _joined.TryGetValue(campaign.CampaignId, out var joined) ? joined : _joined[campaign.CampaignId] = new(StringComparer.Ordinal);
            var tookSlot = claim.NeedsMemberSlot && !members.Contains(memberId);
            if (tookSlot && members.Count >= campaign.MaxMembers)
            {
                RefusedClaims++;
                continue;
            }
            var granted = claim.DesiredMinor;
            if (_left.TryGetValue(campaign.CampaignId, out var left))
            {
                granted = Math.Min(granted, left);
                if (granted < claim.DesiredMinor) PartGrants++;
                _left[campaign.CampaignId] = left - granted;
            }
            if (granted <= 0)
            {
                RefusedClaims++;
                continue;
            }
            if (tookSlot) members.Add(memberId);
            grants.Add(new CampaignGrant(campaign, granted, tookSlot));
        }
        return [.. grants];
    }

    public void Release(string memberId, IReadOnlyList<CampaignGrant> grants)
    {
        foreach (var grant in grants)
        {
            Return(new BudgetReturn(grant.Campaign.CampaignId, grant.GrantedMinor));
            if (grant.TookMemberSlot) _joined[grant.Campaign.CampaignId].Remove(memberId);
        }
    }

    public void Return(BudgetReturn returned)
    {
        if (_left.TryGetValue(returned.CampaignId, out var left)) _left[returned.CampaignId] = left + returned.AmountMinor;
    }
}
