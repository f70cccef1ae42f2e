namespace LoyaltyGrains.Domain;

/// <summary>
/// Campaign bonuses handed to the calculator as grants when they are not claimed anew (docs/RULES.md, "Campaigns and
/// partner offers"): what a capture keeps of its authorization's campaign lines, and the lines a purchase was granted.
/// </summary>
public static class CampaignGrants
{
    /// <summary>
    /// Rule "captured campaign share": a capture keeps the captured share of the campaign bonus still pending — each
    /// pending campaign line scaled by min(captured, remaining authorized) / remaining authorized, truncated — so never
    /// more than was granted at authorization. An authorization with nothing left authorized (expired: its budget went
    /// back) keeps no campaign bonus.
    /// </summary>
    public static CampaignGrant[] AtCapture(IReadOnlyList<AccrualLine> pendingLines, long remainingAuthorizedMinor, long capturedMinor)
    {
        if (remainingAuthorizedMinor == 0) return [];
        var share = Math.Min(capturedMinor, remainingAuthorizedMinor);
        List<CampaignGrant>? grants = null;
        foreach (var line in pendingLines)
        {
            if (!IsGrantedCampaignLine(line)) continue;
            (grants ??= []).Add(GrantOf(line, Money.Proportion(line.AmountMinor, share, remainingAuthorizedMinor)));
        }
        return grants is null ? [] : [.. grants];
    }

    /// <summary>The campaign bonuses a priced purchase was granted (its positive campaign lines, in their order), as grants again.</summary>
    public static CampaignGrant[] AsGranted(IReadOnlyList<AccrualLine> lines)
    {
        List<CampaignGrant>? grants = null;
        foreach (var line in lines)
        {
            if (IsGrantedCampaignLine(line)) (grants ??= []).Add(GrantOf(line, line.AmountMinor));
        }
        return grants is null ? [] : [.. grants];
    }

    private static bool IsGrantedCampaignLine(AccrualLine line) =>
        line.AmountMinor > 0 && line.Rule.StartsWith(CampaignRule.RulePrefix, StringComparison.Ordinal);

    /// <summary>The calculator needs only what the line carries: the campaign's id, rate and funding partner.</summary>
    private static CampaignGrant GrantOf(AccrualLine line, long grantedMinor) => new(
        new CampaignRule { CampaignId = line.Rule[CampaignRule.RulePrefix.Length..], RateBps = line.RateBps, PartnerId = line.PartnerId },
        grantedMinor);
}
