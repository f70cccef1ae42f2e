using LoyaltyGrains.Domain;
using LoyaltyGrains.Tests.Domain;

namespace LoyaltyGrains.Tests.Rules;

/// <summary>
/// A worked example run on the pure domain: a program, a member, a few messages, and the expected figures. Campaign
/// budgets are granted by a small in-test allocator with the same rule the silo leases follow (never more than left).
/// </summary>
public sealed class Scenario
{
    public static readonly DateTimeOffset Start = new(2026, 11, 10, 9, 0, 0, TimeSpan.Zero);

    private readonly List<CampaignRule> _campaigns = [];
    private readonly Dictionary<string, long> _budgetLeft = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _slotsLeft = new(StringComparer.Ordinal);
    private ProgramConfig _program = ProgramConfig.Default;
    private Result<PostingOutcome> _last;
    // The member's committed rows: a purchase that left its memory is read back from them, as the grain does.
    private readonly MemberRows _rows = new();

    public Scenario(bool premium = false, string tier = "", string referredBy = "")
    {
        Now = Start;
        Account = new MemberAccount("m1");
        Account.Enroll(new EnrollCommand("m1", premium, referredBy, tier), _program, Now);
        _rows.Take(Account);
    }

    public MemberAccount Account { get; }

    /// <summary>Expectations checked so far: an example that checks nothing tests nothing.</summary>
    public int Checks { get; private set; }
    public DateTimeOffset Now { get; private set; }
    public ProgramHistory Programs => ProgramHistory.Of(_program);

    public Scenario Program(Func<ProgramConfig, ProgramConfig> change)
    {
        _program = change(_program);
        return this;
    }

    public Scenario Campaign(CampaignRule campaign)
    {
        _campaigns.Add(campaign);
        _budgetLeft[campaign.CampaignId] = campaign.BudgetMinor == 0 ? long.MaxValue : campaign.BudgetMinor;
        _slotsLeft[campaign.CampaignId] = campaign.MaxMembers == 0 ? int.MaxValue : campaign.MaxMembers;
        return this;
    }

    /// <summary>Other members already took this many first-N slots / this much budget.</summary>
    public Scenario Taken(string campaignId, long budgetMinor = 0, int slots = 0)
    {
        _budgetLeft[campaignId] -= budgetMinor;
        _slotsLeft[campaignId] -= slots;
        return this;
    }

    public Scenario Choose(params string[] categories) => Choose(_program.MonthOf(Now), categories);

    public Scenario TryChoose(MonthKey month, params string[] categories)
    {
        var result = Account.ChooseCategories(new ChooseCategoriesCommand(month, categories), Programs, Now);
        _rows.Take(Account);
        _last = result.IsOk ? new PostingOutcome("", false, "", "", 0, 0, 0, []) : result.Rejection!;
        return this;
    }

    public Scenario Choose(MonthKey month, params string[] categories)
    {
        var result = Account.ChooseCategories(new ChooseCategoriesCommand(month, categories), Programs, Now);
        Assert.True(result.IsOk, $"choose failed: {result.Rejection}");
        _rows.Take(Account);
        return this;
    }

    public Scenario Activate(string campaignId)
    {
        Assert.True(Account.ActivateCampaign(_campaigns.Single(c => c.CampaignId == campaignId), Now).IsOk);
        _rows.Take(Account);
        return this;
    }

    public Scenario Advance(TimeSpan by)
    {
        Now += by;
        return this;
    }

    public Scenario Authorize(string id, long amountMinor, int mcc = 5411, string merchant = "shop")
    {
        var grants = Grant(Account.PlanCampaigns(Programs, MccCatalogue.Default, _campaigns, amountMinor, mcc, merchant, Now));
        return Take(Account.Authorize(new AuthorizeCommand(id, "card", amountMinor, "RUB", mcc, merchant, Now), Programs, MccCatalogue.Default, Now, grants,
            _rows.Cold(Account.ColdAuthorization(id, Now, Now))));
    }

    public Scenario AuthorizeIn(string id, long amountMinor, string currency) =>
        Take(Account.Authorize(new AuthorizeCommand(id, "card", amountMinor, currency, 5411, "shop", Now), Programs, MccCatalogue.Default, Now));

    public Scenario Capture(string id, string authorizationId, long amountMinor) =>
        Take(Account.Capture(new CaptureCommand(id, authorizationId, "card", amountMinor, Now, -1, "", "RUB"), Programs, MccCatalogue.Default, Now, null,
            _rows.Cold(Account.ColdReference(id, authorizationId))));

    public Scenario ForcePost(string id, long amountMinor, int mcc = 5411, string merchant = "shop")
    {
        var grants = Grant(Account.PlanCampaigns(Programs, MccCatalogue.Default, _campaigns, amountMinor, mcc, merchant, Now));
        return Take(Account.Capture(new CaptureCommand(id, "", "card", amountMinor, Now, mcc, merchant, "RUB"), Programs, MccCatalogue.Default, Now, grants));
    }

    /// <summary>Authorize then capture the same amount (ids id and id-c).</summary>
    public Scenario Purchase(string id, long amountMinor, int mcc = 5411, string merchant = "shop") =>
        Authorize(id, amountMinor, mcc, merchant).Capture(id + "-c", id, amountMinor);

    public Scenario Reverse(string id, string authorizationId, long amountMinor = 0) =>
        Take(Account.Reverse(new ReverseCommand(id, authorizationId, "card", amountMinor, Now), Programs, Now, _rows.Cold(Account.ColdReference(id, authorizationId))));

    public Scenario Refund(string id, string originalId, long amountMinor) =>
        Take(Account.Refund(new RefundCommand(id, originalId, "card", amountMinor, Now), Programs, Now, _rows.Cold(Account.ColdReference(id, originalId))));

    public Scenario Redeem(string id, long amountMinor, string partner = "partner-1") =>
        Take(Account.Redeem(new RedeemCommand(id, partner, amountMinor), Programs, Now));

    public Scenario Touch()
    {
        Account.Touch(_program, Now);
        _rows.Take(Account);
        return this;
    }

    public Scenario Expect(long accruedMinor, string lines = "")
    {
        Checks++;
        Assert.True(_last.IsOk, $"expected success, got {_last.Rejection}");
        Assert.Equal(accruedMinor, _last.Value!.AccruedMinor);
        Assert.Equal(lines, string.Join(", ", _last.Value.Breakdown.Where(l => l.AmountMinor != 0).Select(l => $"{l.Rule} {l.AmountMinor}")));
        Assert.Equal(_last.Value.AccruedMinor, _last.Value.Breakdown.Sum(l => l.AmountMinor));
        return this;
    }

    public Scenario ExpectDuplicate()
    {
        Checks++;
        Assert.True(_last.IsOk && _last.Value!.Duplicate, "expected DUPLICATE");
        return this;
    }

    public Scenario ExpectRejected(RejectionKind kind)
    {
        Checks++;
        Assert.False(_last.IsOk, "expected a rejection");
        Assert.Equal(kind, _last.Rejection!.Kind);
        return this;
    }

    public Scenario ExpectBalance(long availableMinor, long pendingMinor = 0)
    {
        Checks++;
        Assert.Equal((availableMinor, pendingMinor), (Account.State.AvailableMinor, Account.State.PendingMinor));
        return this;
    }

    public Scenario ExpectTier(string tierId)
    {
        Checks++;
        Assert.Equal(tierId, Account.TierFor(_program, _program.MonthOf(Now)).TierId);
        return this;
    }

    public Scenario ExpectBudgetLeft(string campaignId, long budgetMinor)
    {
        Checks++;
        Assert.Equal(budgetMinor, _budgetLeft[campaignId]);
        return this;
    }

    private Scenario Take(Result<PostingOutcome> result)
    {
        _last = result;
        foreach (var returned in Account.BudgetReturns) _budgetLeft[returned.CampaignId] += returned.AmountMinor;
        _rows.Take(Account);
        return this;
    }

    private CampaignGrant[] Grant(List<CampaignClaim> claims) => [.. claims.Select(claim =>
    {
        var id = claim.Campaign.CampaignId;
        if (claim.NeedsMemberSlot && _slotsLeft[id] <= 0) return new CampaignGrant(claim.Campaign, 0);
        var amount = Math.Min(claim.DesiredMinor, _budgetLeft[id]);
        if (amount <= 0) return new CampaignGrant(claim.Campaign, 0);
        _budgetLeft[id] -= amount;
        if (claim.NeedsMemberSlot) _slotsLeft[id]--;
        return new CampaignGrant(claim.Campaign, amount, claim.NeedsMemberSlot);
    })];
}
