namespace LoyaltyGrains.Domain;

/// <summary>What one ledger entry means to one partner's settlement, in minor units.</summary>
/// <param name="AccruedMinor">Partner-funded bonus of a captured purchase or force post (what the partner owes).</param>
/// <param name="ClawedBackMinor">Partner-funded bonus taken back by a refund, as a positive amount.</param>
/// <param name="RedeemedMinor">Bonuses spent at the partner, net of redemption refunds (what the programme owes).</param>
public readonly record struct PartnerShare(string PartnerId, long AccruedMinor, long ClawedBackMinor, long RedeemedMinor);

/// <summary>
/// Which ledger entries are partner settlement events, and for how much. The SQL check (loyalty.check_payouts) and the
/// export classify the same way: change one, change all three.
/// </summary>
public static class PartnerShares
{
    /// <summary>Whether an entry of this kind can carry a settlement event. Pending changes (authorizations, reversals) are not owed yet.</summary>
    public static bool Counts(EntryKind kind) => kind is EntryKind.Capture or EntryKind.ForcePost or EntryKind.Refund
        or EntryKind.Redeem or EntryKind.RedeemRefund;

    /// <summary>Appends one share per partner named by the entry's lines; nothing for bank-funded or pending entries.</summary>
    public static void Of(LedgerEntry entry, List<PartnerShare> shares)
    {
        if (!Counts(entry.Kind)) return;
        var first = shares.Count;
        foreach (var line in entry.Breakdown)
        {
            if (line.PartnerId.Length == 0 || line.AmountMinor == 0) continue;
            var amount = line.AmountMinor;
            var share = entry.Kind switch
            {
                EntryKind.Capture or EntryKind.ForcePost => new PartnerShare(line.PartnerId, amount, 0, 0),
                EntryKind.Refund => new PartnerShare(line.PartnerId, 0, -amount, 0),
                _ => new PartnerShare(line.PartnerId, 0, 0, -amount), // redeem lines are negative, their refunds positive
            };
            var merged = false;
            for (var i = first; i < shares.Count; i++)
            {
                if (shares[i].PartnerId != share.PartnerId) continue;
                shares[i] = new PartnerShare(share.PartnerId, shares[i].AccruedMinor + share.AccruedMinor,
                    shares[i].ClawedBackMinor + share.ClawedBackMinor, shares[i].RedeemedMinor + share.RedeemedMinor);
                merged = true;
                break;
            }
            if (!merged) shares.Add(share);
        }
    }
}
