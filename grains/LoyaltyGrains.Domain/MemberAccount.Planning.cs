namespace LoyaltyGrains.Domain;

/// <summary>
/// Which campaign budget a posting would claim before it is decided, so the host reserves it from leases first. The
/// domain says when nothing can be earned (a retry, an unknown member, a card it will refuse, a capture that is not a
/// force post): the host asks and reserves, and never pre-checks a rule itself.
/// </summary>
public sealed partial class MemberAccount
{
    public List<CampaignClaim> PlanAuthorize(AuthorizeCommand command, ProgramHistory programs, MccCatalogue catalogue, IReadOnlyList<CampaignRule> campaigns) =>
        HasProcessed(command.TransactionId) || !State.Enrolled || command.Card != CardStanding.Active
            ? []
            : PlanCampaigns(programs, catalogue, campaigns, command.AmountMinor, command.Mcc, command.MerchantId, command.OccurredAt);

    /// <summary>Only a force post claims campaigns at capture (a captured authorization keeps what it was granted).</summary>
    public List<CampaignClaim> PlanCapture(CaptureCommand command, ProgramHistory programs, MccCatalogue catalogue, IReadOnlyList<CampaignRule> campaigns,
        DateTimeOffset now, IReadOnlyList<LedgerEntry>? coldRows) =>
        HasProcessed(command.TransactionId) || !State.Enrolled || !IsForcePost(command.AuthorizationId, command.Mcc, coldRows)
            ? []
            : PlanCampaigns(programs, catalogue, campaigns, command.AmountMinor, command.Mcc, command.MerchantId, command.OccurredAt ?? now);
}
