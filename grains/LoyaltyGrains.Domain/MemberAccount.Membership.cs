namespace LoyaltyGrains.Domain;

/// <summary>Enrolment, tiers, chosen categories, campaign activation and referrals.</summary>
public sealed partial class MemberAccount
{
    /// <summary>Rule "tier": the month's frozen tier, or the one its first event would freeze (previous month's spend, premium).</summary>
    public TierRule TierFor(ProgramConfig program, MonthKey month) => TierOfMonth.Resolve(program,
        State.Months.GetValueOrDefault(month.Value)?.TierId ?? "", State.Months.GetValueOrDefault(month.Previous().Value)?.CapturedSpendMinor ?? 0,
        State.Premium);

    public MonthState Month(int month) =>
        State.Months.TryGetValue(month, out var state) ? state : State.Months[month] = new MonthState();

    public Result<MemberState> Enroll(EnrollCommand command, ProgramConfig program, DateTimeOffset now)
    {
        if (State.Enrolled)
        {
            var same = State.Premium == command.Premium && State.ReferredBy == command.ReferredBy
                && (command.TierId.Length == 0 || command.TierId == State.TierId);
            return same ? State : Fail(RejectionKind.AlreadyExists, $"member_id '{MemberId}' is already enrolled with other settings");
        }
        if (command.TierId.Length > 0 && program.FindTier(command.TierId) is null)
        {
            return Fail(RejectionKind.InvalidArgument, $"tier: '{command.TierId}' is not a tier of program version {program.Version}");
        }
        if (command.ReferredBy == MemberId) return Fail(RejectionKind.InvalidArgument, "referred_by: a member cannot refer itself");
        var tier = command.TierId.Length > 0 ? command.TierId : program.EntryTier.TierId;
        Record(new LedgerEntry
        {
            MessageId = "enroll:" + MemberId, Kind = EntryKind.Enroll, OccurredAt = now, RecordedAt = now,
            Detail = EnrollDetail(tier, command.Premium, command.ReferredBy), PurchaseMonth = command.TierId.Length > 0 ? program.MonthOf(now).Value : 0,
        });
        return State;
    }

    public Result<MemberState> ChooseCategories(ChooseCategoriesCommand command, ProgramHistory programs, DateTimeOffset now)
    {
        if (!State.Enrolled) return NotEnrolled();
        var program = programs.At(now);
        var currentMonth = program.MonthOf(now);
        if (command.Month < currentMonth || command.Month > currentMonth.Next())
        {
            return Fail(RejectionKind.FailedPrecondition, $"month: categories can be chosen for {currentMonth} or {currentMonth.Next()} only, not {command.Month}");
        }
        // Rule "choice deadline": next month's categories are picked by the program's day of this month.
        if (command.Month == currentMonth.Next() && now.ToOffset(TimeSpan.FromMinutes(program.UtcOffsetMinutes)).Day > program.ChooseNextMonthByDay)
        {
            return Fail(RejectionKind.FailedPrecondition, $"month: categories for {command.Month} had to be chosen by the {program.ChooseNextMonthByDay}th of {currentMonth}");
        }
        Touch(program, now);
        var tier = TierFor(program, command.Month);
        var allowed = tier.CategoriesToChooseFor(State.Premium);
        if (command.Categories.Count > allowed)
        {
            return Fail(RejectionKind.InvalidArgument, $"categories: tier '{tier.TierId}' allows {allowed} categories, {command.Categories.Count} given");
        }
        var distinct = new HashSet<string>(StringComparer.Ordinal);
        foreach (var category in command.Categories)
        {
            if (!program.OfferedCategories.Contains(category))
            {
                return Fail(RejectionKind.InvalidArgument, $"categories: '{category}' is not offered this month");
            }
            if (!distinct.Add(category)) return Fail(RejectionKind.InvalidArgument, $"categories: '{category}' is given twice");
        }
        // Read, not created: only Apply adds months, so a replay holds the same ones (month pruning depends on them).
        var monthState = State.Months.GetValueOrDefault(command.Month.Value);
        var sorted = distinct.Order(StringComparer.Ordinal).ToArray();
        if ((monthState?.ChosenCategories ?? []).SequenceEqual(sorted)) return State;
        // Rule "category lock": once a purchase of the month earned category cashback, the choice is final.
        if (monthState?.CategoryCapUsedMinor > 0)
        {
            return Fail(RejectionKind.FailedPrecondition, $"month: categories for {command.Month} are locked: a purchase already earned category cashback");
        }
        Record(new LedgerEntry
        {
            MessageId = $"choose:{MemberId}:{command.Month}:{State.Sequence + 1}",
            Kind = EntryKind.ChooseCategories, OccurredAt = now, RecordedAt = now, PurchaseMonth = command.Month.Value,
            Detail = string.Join(',', sorted),
        });
        return State;
    }

    /// <summary>Opts in to a campaign that requires activation (partner clubs). Idempotent.</summary>
    public Result<MemberState> ActivateCampaign(CampaignRule campaign, DateTimeOffset now)
    {
        if (!State.Enrolled) return NotEnrolled();
        if (now >= campaign.EndsAt) return Fail(RejectionKind.FailedPrecondition, $"campaign_id: campaign '{campaign.CampaignId}' has ended");
        if (!campaign.RequiresActivation || State.ActivatedCampaigns?.Contains(campaign.CampaignId) == true) return State;
        Record(new LedgerEntry
        {
            MessageId = $"activate:{MemberId}:{campaign.CampaignId}", Kind = EntryKind.ActivateCampaign,
            OccurredAt = now, RecordedAt = now, Detail = campaign.CampaignId, PartnerId = campaign.PartnerId,
        });
        return State;
    }

    /// <summary>Credits this member, as referrer, for a referred member's first captured purchase. Idempotent.</summary>
    public Result<MemberState> CreditReferral(string referredMemberId, ProgramConfig program, DateTimeOffset now)
    {
        if (!State.Enrolled) return NotEnrolled();
        if (State.ReferralsCredited?.Contains(referredMemberId) == true || program.ReferralBonusMinor == 0) return State;
        Touch(program, now);
        Record(ReferralEntry($"referral:{MemberId}:{referredMemberId}", referredMemberId, program, now));
        return State;
    }

    private void FreezeTier(ProgramConfig program, MonthKey month, DateTimeOffset now)
    {
        if (State.Months.TryGetValue(month.Value, out var monthState) && monthState.TierId.Length > 0) return;
        Record(new LedgerEntry
        {
            MessageId = $"tier:{MemberId}:{month}", Kind = EntryKind.TierAssigned,
            OccurredAt = now, RecordedAt = now, PurchaseMonth = month.Value, Detail = TierFor(program, month).TierId,
        });
    }

    /// <summary>Rule "referral": a referred member's first captured purchase earns it the referral bonus, once.</summary>
    private void EarnReferral(ProgramConfig program, DateTimeOffset now)
    {
        if (State.ReferredBy.Length == 0 || State.ReferralEarned || program.ReferralBonusMinor == 0) return;
        Record(ReferralEntry($"referral:{MemberId}", MemberId, program, now));
    }

    private LedgerEntry ReferralEntry(string messageId, string referredMemberId, ProgramConfig program, DateTimeOffset now) => new()
    {
        MessageId = messageId, Kind = EntryKind.ReferralBonus, OccurredAt = now,
        RecordedAt = now, Detail = referredMemberId, AmountMinor = program.ReferralBonusMinor, AvailableDeltaMinor = program.ReferralBonusMinor,
        Breakdown = [new AccrualLine("referral", program.ReferralBonusMinor)], LotExpiresAt = LotExpiry(program, now),
    };

    private static string EnrollDetail(string tier, bool premium, string referredBy) => $"{tier}|{(premium ? "premium" : "")}|{referredBy}";

    private static (string Tier, bool Premium, string ReferredBy) ParseEnrollDetail(string detail)
    {
        var parts = detail.Split('|');
        return (parts[0], parts.Length > 1 && parts[1] == "premium", parts.Length > 2 ? parts[2] : "");
    }
}
