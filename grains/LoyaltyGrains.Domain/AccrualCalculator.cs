namespace LoyaltyGrains.Domain;

/// <summary>One line of an accrual's explanation. Rule ids: "base", "category:&lt;name&gt;", "rounding", "campaign:&lt;id&gt;".</summary>
public readonly record struct AccrualLine(string Rule, long AmountMinor, int RateBps = 0, string PartnerId = "")
{
    public const string BaseRule = "base";
    public const string RoundingRule = "rounding";
    public const string CategoryRulePrefix = "category:";

    public bool IsCategoryLine => Rule.StartsWith(CategoryRulePrefix, StringComparison.Ordinal);
}

/// <summary>What a purchase is: the facts the rules look at.</summary>
public readonly record struct PurchaseFacts(long AmountMinor, int Mcc, string MerchantId, DateTimeOffset OccurredAt);

/// <summary>What the member brings to a purchase: tier, premium, the month's chosen categories and cap used so far.</summary>
public readonly record struct MemberFacts(TierRule Tier, bool Premium, IReadOnlyCollection<string> ChosenCategories, long CategoryCapUsedMinor);

/// <summary>The member's standing with campaigns: opted in, accrued so far (for per-member caps), joined (for first-N).</summary>
public readonly record struct MemberCampaignFacts(IReadOnlySet<string> Activated, IReadOnlyDictionary<string, long> Accrued, IReadOnlySet<string> Joined)
{
    public static MemberCampaignFacts None { get; } = new(new HashSet<string>(), new Dictionary<string, long>(), new HashSet<string>());
}

/// <summary>The accrual for one purchase. Lines always sum to TotalMinor.</summary>
public sealed record Accrual(long TotalMinor, AccrualLine[] Lines, string Category, long CategoryCapConsumedMinor, bool Excluded)
{
    public static Accrual None(string category, bool excluded) => new(0, [], category, 0, excluded);
}

/// <summary>
/// Prices one purchase under a program version: exclusions, minimum purchase, tier base rate, the month's chosen
/// categories under the monthly category cap, rounding, then campaigns up to the maximum accrual rate. Pure and
/// deterministic; each rule is one step below, named as in docs/RULES.md. All arithmetic is checked (the domain
/// project compiles with overflow checks): an overflow throws, it never wraps.
/// </summary>
public static class AccrualCalculator
{
    public static Accrual Compute(ProgramConfig program, MccCatalogue catalogue, in PurchaseFacts purchase, in MemberFacts member,
        IReadOnlyList<CampaignGrant>? grants = null)
    {
        var category = catalogue.CategoryOf(purchase.Mcc);
        if (program.IsExcludedMcc(purchase.Mcc, catalogue)) return Accrual.None(category, excluded: true);

        var lines = new List<AccrualLine>(4);
        var categoryMinor = RatesAndRounding(program, category, purchase, member, lines);
        CampaignBonuses(grants, CampaignHeadroom(program, purchase, Sum(lines)), lines);
        return new Accrual(Sum(lines), [.. lines], category, categoryMinor, Excluded: false);
    }

    /// <summary>Base, chosen category and rounding (the bank's own cashback); returns the category cap consumed.</summary>
    private static long RatesAndRounding(ProgramConfig program, string category, in PurchaseFacts purchase, in MemberFacts member, List<AccrualLine> lines)
    {
        if (purchase.AmountMinor < member.Tier.MinPurchaseMinor) return 0;
        var baseMinor = BaseRate(purchase, member, lines);
        var categoryMinor = ChosenCategoryRate(program, category, baseMinor, purchase, member, lines);
        AccrualRounding.Apply(program.Rounding, lines);
        return categoryMinor;
    }

    /// <summary>
    /// Rule "maximum accrual": what campaigns may still add to a purchase after the bank's own cashback, so that the
    /// whole accrual stays within the programme's max_accrual_rate_bps of the amount.
    /// </summary>
    public static long CampaignHeadroom(ProgramConfig program, in PurchaseFacts purchase, long ownCashbackMinor) =>
        Math.Max(0, checked(Money.ApplyBps(purchase.AmountMinor, program.MaxAccrualRateBps) - ownCashbackMinor));

    /// <summary>Rule "base": the tier's base rate on every eligible purchase.</summary>
    private static long BaseRate(in PurchaseFacts purchase, in MemberFacts member, List<AccrualLine> lines)
    {
        var amount = Money.ApplyBps(purchase.AmountMinor, member.Tier.BaseRateBps);
        if (amount != 0) lines.Add(new AccrualLine(AccrualLine.BaseRule, amount, member.Tier.BaseRateBps));
        return amount;
    }

    /// <summary>
    /// Rule "chosen category": a category the member chose for the purchase's month earns the category rate in
    /// total; the part above base is category cashback and counts against the monthly category cap.
    /// </summary>
    private static long ChosenCategoryRate(ProgramConfig program, string category, long baseMinor, in PurchaseFacts purchase,
        in MemberFacts member, List<AccrualLine> lines)
    {
        if (!member.ChosenCategories.Contains(category)) return 0;
        var rateBps = program.CategoryRateBps(member.Tier, category);
        var extraMinor = Money.ApplyBps(purchase.AmountMinor, rateBps) - baseMinor;
        var headroomMinor = Math.Max(0, member.Tier.CategoryCapFor(member.Premium) - member.CategoryCapUsedMinor);
        var grantedMinor = Math.Min(Math.Max(0, extraMinor), headroomMinor);
        if (grantedMinor > 0)
        {
            lines.Add(new AccrualLine(AccrualLine.CategoryRulePrefix + category, grantedMinor, rateBps - member.Tier.BaseRateBps));
        }
        return grantedMinor;
    }

    /// <summary>
    /// Rule "campaigns": each granted campaign bonus is its own line, exact to the kopeck (partners pay them, so they
    /// are not rounded), in stacking order. Planning already trimmed them to the headroom; this clamp is the defence
    /// that keeps the maximum accrual rate whatever a caller hands in.
    /// </summary>
    private static void CampaignBonuses(IReadOnlyList<CampaignGrant>? grants, long headroomMinor, List<AccrualLine> lines)
    {
        if (grants is null) return;
        foreach (var grant in grants)
        {
            var amount = Math.Min(grant.GrantedMinor, headroomMinor);
            if (amount <= 0) continue;
            lines.Add(new AccrualLine(grant.Campaign.Rule, amount, grant.Campaign.RateBps, grant.Campaign.PartnerId));
            headroomMinor -= amount;
        }
    }

    /// <summary>
    /// What each matching campaign would pay for this purchase, after its per-member cap, in stacking order, each
    /// trimmed to what the maximum accrual rate leaves after base and category cashback and the campaigns before it;
    /// budget and first-N slots are then granted by the campaign's lease, which so never reserves what cannot be paid.
    /// </summary>
    public static List<CampaignClaim> PlanCampaigns(ProgramConfig program, MccCatalogue catalogue, in PurchaseFacts purchase, in MemberFacts member,
        IReadOnlyList<CampaignRule> campaigns, MemberCampaignFacts memberCampaigns)
    {
        var claims = new List<CampaignClaim>();
        if (campaigns.Count == 0 || program.IsExcludedMcc(purchase.Mcc, catalogue)) return claims;
        var category = catalogue.CategoryOf(purchase.Mcc);
        foreach (var campaign in campaigns)
        {
            var activated = memberCampaigns.Activated.Contains(campaign.CampaignId);
            if (!campaign.Matches(purchase, category, program, member.Tier, activated)) continue;
            var desired = campaign.Bonus(purchase.AmountMinor);
            if (campaign.PerMemberCapMinor > 0)
            {
                var used = memberCampaigns.Accrued.GetValueOrDefault(campaign.CampaignId);
                desired = Math.Min(desired, Math.Max(0, campaign.PerMemberCapMinor - used));
            }
            if (desired <= 0) continue;
            var needsSlot = campaign.MaxMembers > 0 && !memberCampaigns.Joined.Contains(campaign.CampaignId);
            claims.Add(new CampaignClaim(campaign, desired, needsSlot));
        }
        if (claims.Count == 0) return claims;
        // Rule "stacking order": lower stacking_order first (then id), for the breakdown and for who is served first.
        if (claims.Count > 1)
        {
            claims.Sort((a, b) => a.Campaign.StackingOrder != b.Campaign.StackingOrder
                ? a.Campaign.StackingOrder.CompareTo(b.Campaign.StackingOrder)
                : string.CompareOrdinal(a.Campaign.CampaignId, b.Campaign.CampaignId));
        }
        // Rule "maximum accrual": the same own cashback Compute will price, then campaigns in order up to the rate.
        var own = new List<AccrualLine>(3);
        RatesAndRounding(program, category, purchase, member, own);
        var headroomMinor = CampaignHeadroom(program, purchase, Sum(own));
        var trimmed = new List<CampaignClaim>(claims.Count);
        foreach (var claim in claims)
        {
            var amount = Math.Min(claim.DesiredMinor, headroomMinor);
            if (amount <= 0) break;
            trimmed.Add(claim with { DesiredMinor = amount });
            headroomMinor -= amount;
        }
        return trimmed;
    }

    /// <summary>
    /// Scales lines by numerator/denominator, each truncated; used for partial reversals and proportional refunds
    /// so that cumulative parts add up exactly to the whole when numerator reaches denominator.
    /// </summary>
    public static AccrualLine[] Scale(IReadOnlyList<AccrualLine> lines, long numerator, long denominator)
    {
        var scaled = new AccrualLine[lines.Count];
        for (var i = 0; i < lines.Count; i++)
        {
            scaled[i] = lines[i] with { AmountMinor = Money.Proportion(lines[i].AmountMinor, numerator, denominator) };
        }
        return scaled;
    }

    /// <summary>a − b, line by line (same rules in the same order), dropping zero lines.</summary>
    public static AccrualLine[] Difference(IReadOnlyList<AccrualLine> a, IReadOnlyList<AccrualLine> b)
    {
        if (a.Count != b.Count) throw new ArgumentException("line sets differ in length", nameof(b));
        var result = new List<AccrualLine>(a.Count);
        for (var i = 0; i < a.Count; i++)
        {
            if (a[i].Rule != b[i].Rule) throw new ArgumentException($"line {i} rule '{a[i].Rule}' differs from '{b[i].Rule}'", nameof(b));
            var delta = a[i].AmountMinor - b[i].AmountMinor;
            if (delta != 0) result.Add(a[i] with { AmountMinor = delta });
        }
        return [.. result];
    }

    public static long Sum(IReadOnlyList<AccrualLine> lines)
    {
        long total = 0;
        foreach (var line in lines) total += line.AmountMinor;
        return total;
    }

    public static long CampaignSum(IReadOnlyList<AccrualLine> lines, string rule)
    {
        long total = 0;
        foreach (var line in lines)
        {
            if (line.Rule == rule) total += line.AmountMinor;
        }
        return total;
    }

    public static long CategorySum(IReadOnlyList<AccrualLine> lines)
    {
        long total = 0;
        foreach (var line in lines)
        {
            if (line.IsCategoryLine) total += line.AmountMinor;
        }
        return total;
    }
}
