using Google.Protobuf.WellKnownTypes;
using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.Gateway.Grpc;

/// <summary>Contract messages ↔ proto messages.</summary>
public static class ProtoMapping
{
    public static PostingReply ToReply(PostingResult result)
    {
        var reply = new PostingReply
        {
            TransactionId = result.TransactionId,
            Status = result.Duplicate ? PostingStatus.Duplicate : PostingStatus.Accepted,
            MemberId = result.MemberId,
            CardId = result.CardId,
            AccruedMinor = result.AccruedMinor,
            PendingMinor = result.PendingAfterMinor,
            AvailableMinor = result.AvailableAfterMinor,
        };
        foreach (var item in result.Breakdown) reply.Breakdown.Add(ToLine(item));
        return reply;
    }

    public static BreakdownLine ToLine(BreakdownItem item) =>
        new() { Rule = item.Rule, AmountMinor = item.AmountMinor, RateBps = item.RateBps, PartnerId = item.PartnerId };

    public static Balance ToBalance(BalanceView view)
    {
        var balance = new Balance
        {
            MemberId = view.MemberId,
            AvailableMinor = view.AvailableMinor,
            PendingMinor = view.PendingMinor,
            Tier = view.Tier,
            CategoryCapLeftMinor = view.CategoryCapLeftMinor,
            ExpiringMinor = view.ExpiringMinor,
            Month = view.Month,
            Premium = view.Premium,
        };
        if (view.ExpiringAt is { } at) balance.ExpiringAt = Timestamp.FromDateTimeOffset(at);
        balance.ChosenCategories.AddRange(view.ChosenCategories);
        return balance;
    }

    public static StatementEntry ToEntry(StatementLine line)
    {
        var entry = new StatementEntry
        {
            TransactionId = line.TransactionId,
            Kind = line.Kind,
            CardId = line.CardId,
            PurchaseAmountMinor = line.PurchaseAmountMinor,
            AccruedMinor = line.AccruedMinor,
            PendingDeltaMinor = line.PendingDeltaMinor,
            AvailableDeltaMinor = line.AvailableDeltaMinor,
            Mcc = Math.Max(0, line.Mcc),
            Category = line.Category,
            MerchantId = line.MerchantId,
            OccurredAt = Timestamp.FromDateTimeOffset(line.OccurredAt),
            RecordedAt = Timestamp.FromDateTimeOffset(line.RecordedAt),
            Sequence = line.Sequence,
        };
        foreach (var item in line.Breakdown) entry.Breakdown.Add(ToLine(item));
        return entry;
    }

    public static Member ToMember(MemberInfo info) => new()
    {
        MemberId = info.MemberId,
        Premium = info.Premium,
        ReferredBy = info.ReferredBy,
        Tier = info.Tier,
        EnrolledAt = Timestamp.FromDateTimeOffset(info.EnrolledAt),
    };

    public static Card ToCard(CardInfo info) => new() { CardId = info.CardId, MemberId = info.MemberId, Blocked = info.Blocked };

    public static Campaign ToProto(CampaignRule rule)
    {
        var campaign = new Campaign
        {
            CampaignId = rule.CampaignId, Name = rule.Name, PartnerId = rule.PartnerId, RateBps = rule.RateBps, FixedBonusMinor = rule.FixedBonusMinor,
            MinAmountMinor = rule.MinAmountMinor, StartsAt = Timestamp.FromDateTimeOffset(rule.StartsAt), EndsAt = Timestamp.FromDateTimeOffset(rule.EndsAt),
            BudgetMinor = rule.BudgetMinor, MaxMembers = rule.MaxMembers, PerMemberCapMinor = rule.PerMemberCapMinor, MinTier = rule.MinTier,
            RequiresActivation = rule.RequiresActivation, StackingOrder = rule.StackingOrder,
        };
        campaign.Mccs.AddRange(rule.Mccs);
        campaign.Categories.AddRange(rule.Categories);
        campaign.MerchantIds.AddRange(rule.MerchantIds);
        return campaign;
    }

    /// <summary>Proto → domain; timestamps are checked here (one protobuf cannot hold would throw in the conversion).</summary>
    public static CampaignRule ToDomain(Campaign campaign) => new()
    {
        CampaignId = campaign.CampaignId, Name = campaign.Name, PartnerId = campaign.PartnerId, Mccs = [.. campaign.Mccs],
        Categories = [.. campaign.Categories], MerchantIds = [.. campaign.MerchantIds], RateBps = campaign.RateBps,
        FixedBonusMinor = campaign.FixedBonusMinor, MinAmountMinor = campaign.MinAmountMinor,
        StartsAt = Validate.Instant(campaign.StartsAt, "starts_at"),
        EndsAt = Validate.Instant(campaign.EndsAt, "ends_at"), BudgetMinor = campaign.BudgetMinor,
        MaxMembers = campaign.MaxMembers, PerMemberCapMinor = campaign.PerMemberCapMinor, MinTier = campaign.MinTier,
        RequiresActivation = campaign.RequiresActivation, StackingOrder = campaign.StackingOrder,
    };

    public static V1.Program ToProto(ProgramConfig config)
    {
        var program = new V1.Program
        {
            Rounding = config.Rounding == Domain.RoundingMode.FloorWholeBonus ? V1.RoundingMode.FloorWholeBonus : V1.RoundingMode.ExactMinor,
            AuthorizationHoldDays = config.AuthorizationHoldDays,
            CaptureMarginBps = config.CaptureMarginBps,
            ExpiryMonths = config.ExpiryMonths,
            ReferralBonusMinor = config.ReferralBonusMinor,
            Version = config.Version,
            EffectiveFrom = Timestamp.FromDateTimeOffset(config.EffectiveFrom),
            UtcOffsetMinutes = config.UtcOffsetMinutes,
            PremiumMinimumTierId = config.PremiumMinimumTierId,
            ChooseNextMonthByDay = config.ChooseNextMonthByDay,
            MaxAccrualRateBps = config.MaxAccrualRateBps,
        };
        foreach (var tier in config.Tiers)
        {
            program.Tiers.Add(new Tier
            {
                TierId = tier.TierId,
                MinMonthlySpendMinor = tier.MinMonthlySpendMinor,
                BaseRateBps = tier.BaseRateBps,
                CategoryRateBps = tier.CategoryRateBps,
                CategoriesToChoose = tier.CategoriesToChoose,
                MonthlyCategoryCapMinor = tier.MonthlyCategoryCapMinor,
                MinPurchaseMinor = tier.MinPurchaseMinor,
                PremiumExtraCategories = tier.PremiumExtraCategories,
                PremiumMonthlyCategoryCapMinor = tier.PremiumMonthlyCategoryCapMinor,
            });
        }
        program.OfferedCategories.AddRange(config.OfferedCategories);
        program.ExcludedMccs.AddRange(config.ExcludedMccs);
        program.Currencies.AddRange(config.Currencies);
        foreach (var (category, rate) in config.CategoryRateOverridesBps) program.CategoryRateOverridesBps[category] = rate;
        return program;
    }

    /// <summary>
    /// Proto → domain; unset numbers take the defaults a bank expects (hold 30 days, margin 20%, expiry 12 months,
    /// maximum accrual 100%). The rounding mode is carried as sent, so ProgramConfig.Validate refuses UNSPECIFIED and
    /// unknown values instead of reading them as EXACT_MINOR.
    /// </summary>
    public static ProgramConfig ToDomain(V1.Program program) => new()
    {
        Tiers = program.Tiers.Select(t => new TierRule(t.TierId, t.MinMonthlySpendMinor, t.BaseRateBps, t.CategoryRateBps, t.CategoriesToChoose,
            t.MonthlyCategoryCapMinor, t.MinPurchaseMinor, t.PremiumExtraCategories, t.PremiumMonthlyCategoryCapMinor)).ToArray(),
        OfferedCategories = [.. program.OfferedCategories],
        ExcludedMccs = [.. program.ExcludedMccs],
        Currencies = program.Currencies.Count == 0 ? ["RUB"] : [.. program.Currencies],
        Rounding = (Domain.RoundingMode)(int)program.Rounding,
        AuthorizationHoldDays = program.AuthorizationHoldDays == 0 ? 30 : program.AuthorizationHoldDays,
        CaptureMarginBps = program.CaptureMarginBps == 0 ? 2_000 : program.CaptureMarginBps,
        ExpiryMonths = program.ExpiryMonths == 0 ? 12 : program.ExpiryMonths,
        ReferralBonusMinor = program.ReferralBonusMinor,
        EffectiveFrom = program.EffectiveFrom is null ? DateTimeOffset.UnixEpoch : Validate.Instant(program.EffectiveFrom, "effective_from"),
        UtcOffsetMinutes = program.UtcOffsetMinutes,
        PremiumMinimumTierId = program.PremiumMinimumTierId,
        ChooseNextMonthByDay = program.ChooseNextMonthByDay == 0 ? 25 : program.ChooseNextMonthByDay,
        MaxAccrualRateBps = program.MaxAccrualRateBps == 0 ? Limits.RateBpsMax : program.MaxAccrualRateBps,
        CategoryRateOverridesBps = program.CategoryRateOverridesBps.ToDictionary(p => p.Key, p => p.Value),
    };
}
