namespace LoyaltyGrains.Domain;

/// <summary>
/// Deciding a posting in two steps, so the host does the I/O and the domain every rule. First what the decision needs
/// that memory may not hold: <see cref="NeedsOf"/> names the ledger rows to read (a purchase that left memory), then
/// <see cref="ClaimsOf"/> the campaign budget to reserve (which may depend on those rows). Then <see cref="Decide"/>
/// with what was gathered. The host never pre-checks a rule (duplicate, enrolment, card, force post) itself.
/// </summary>
public sealed partial class MemberAccount
{
    /// <summary>Step 1a: the ledger rows this posting's decision needs, by the reference to read them under (null: none).</summary>
    public string? NeedsOf(PostingCommand command, DateTimeOffset now) => command switch
    {
        AuthorizeCommand authorize => ColdAuthorization(authorize.TransactionId, authorize.OccurredAt, now),
        CaptureCommand capture => ColdReference(capture.TransactionId, capture.AuthorizationId),
        ReverseCommand reverse => ColdReference(reverse.TransactionId, reverse.AuthorizationId),
        RefundCommand refund => ColdReference(refund.TransactionId, refund.OriginalTransactionId),
        _ => null,
    };

    /// <summary>
    /// Step 1b: the campaigns this posting would claim, for the host to reserve from budget leases. Nothing for a retry,
    /// an unknown member, a blocked card, or a capture that is not a force post (a captured authorization keeps what it
    /// was granted).
    /// </summary>
    public List<CampaignClaim> ClaimsOf(PostingCommand command, IReadOnlyList<LedgerEntry>? coldRows, ProgramHistory programs, MccCatalogue catalogue,
        IReadOnlyList<CampaignRule> campaigns, DateTimeOffset now)
    {
        if (HasProcessed(command.TransactionId) || !State.Enrolled) return [];
        return command switch
        {
            AuthorizeCommand a when a.Card == CardStanding.Active =>
                PlanCampaigns(programs, catalogue, campaigns, a.AmountMinor, a.Mcc, a.MerchantId, a.OccurredAt),
            CaptureCommand c when IsForcePost(c.AuthorizationId, c.Mcc, coldRows) =>
                PlanCampaigns(programs, catalogue, campaigns, c.AmountMinor, c.Mcc, c.MerchantId, c.OccurredAt ?? now),
            _ => [],
        };
    }

    /// <summary>
    /// Step 2: the decision, with what steps 1a and 1b gathered. An accepted posting's entries are applied to memory at
    /// once and left in <see cref="Uncommitted"/> for the host to write. A refusal that memory alone cannot tell from a
    /// late retry (its record may have left memory) asks for the ledger's row under the message's id
    /// (<see cref="PostingDecision.NeedsLedgerRow"/>): the host reads it and decides again with it — refusals only, so
    /// the hot path never reads the database; an accepted late retry is caught by the ledger's unique id instead.
    /// </summary>
    public PostingDecision Decide(PostingCommand command, PostingFacts facts, ProgramHistory programs, MccCatalogue catalogue, DateTimeOffset now)
    {
        var result = command switch
        {
            AuthorizeCommand a => Authorize(a, programs, catalogue, now, facts.Grants, facts.ColdRows, facts.LedgerRow),
            CaptureCommand c => Capture(c, programs, catalogue, now, facts.Grants, facts.ColdRows, facts.LedgerRow),
            ReverseCommand r => Reverse(r, programs, now, facts.ColdRows, facts.LedgerRow),
            RefundCommand r => Refund(r, programs, now, facts.ColdRows, facts.LedgerRow),
            RedeemCommand r => Redeem(r, programs, now, facts.LedgerRow),
            _ => throw new ArgumentOutOfRangeException(nameof(command), command.GetType().Name, "not a posting this member decides"),
        };
        // Records leave memory only once pruning started (entry DedupePruneEveryEntries); before that memory is complete.
        var needsLedgerRow = !facts.LedgerRowRead && result.Rejection is { Kind: not RejectionKind.AlreadyExists }
            && State.Sequence >= DedupePruneEveryEntries && !State.Processed.ContainsKey(command.TransactionId);
        return new PostingDecision(result, needsLedgerRow);
    }
}

/// <summary>
/// What the host gathered for a posting's decision: the rows of a purchase that left memory (null: none were needed),
/// the campaign budget it reserved, and — only when a decision asked — the ledger's row under the message's id.
/// </summary>
public readonly record struct PostingFacts(IReadOnlyList<LedgerEntry>? ColdRows, IReadOnlyList<CampaignGrant>? Grants)
{
    public LedgerEntry? LedgerRow { get; init; }

    /// <summary>The ledger was asked for the message's row (<see cref="LedgerRow"/> null then means it holds none).</summary>
    public bool LedgerRowRead { get; init; }
}

/// <summary>A posting's decision; <see cref="NeedsLedgerRow"/>: a refusal to decide again with the ledger's row of its id.</summary>
public readonly record struct PostingDecision(Result<PostingOutcome> Result, bool NeedsLedgerRow);
