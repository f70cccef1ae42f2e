using Google.Protobuf.Collections;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LoyaltyGrains.Analytics;
using LoyaltyGrains.Analytics.Replay;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Gateway.V1;
using Microsoft.Extensions.DependencyInjection;
using V1Stats = LoyaltyGrains.Gateway.V1.ProgramStats;

namespace LoyaltyGrains.Gateway.Grpc;

/// <summary>
/// Analytics: programme figures and what-if replay, straight from the PostgreSQL ledger (docs/ANALYTICS.md). Needs the
/// node's <see cref="AnalyticsDatabase"/> (registered in PostgreSQL mode); without it every call is FAILED_PRECONDITION.
/// </summary>
public sealed class AnalyticsService(IServiceProvider services) : V1.Analytics.AnalyticsBase
{
    private AnalyticsDatabase Database => services.GetService<AnalyticsDatabase>()
        ?? throw new RpcException(new Status(StatusCode.FailedPrecondition, "analytics needs the PostgreSQL ledger (durable mode); this node runs in memory"));

    public override async Task<V1Stats> GetProgramStats(ProgramStatsRequest request, ServerCallContext context)
    {
        var stats = new StatsRequest(Validate.Instant(request.From, "from"), Validate.Instant(request.To, "to"))
        {
            Tier = request.Tier, Category = request.Category, Partner = request.PartnerId, Campaign = request.CampaignId,
            UtcOffsetMinutes = request.HasUtcOffsetMinutes ? request.UtcOffsetMinutes : ProgramCalendar.DefaultUtcOffsetMinutes,
        };
        var errors = stats.Validate();
        if (errors.Count > 0) throw Validate.Invalid(errors);
        var database = Database;
        var result = await StatsQuery.RunAsync(database.Source, stats, context.CancellationToken);
        return ToProto(result);
    }

    public override async Task<ProgramReplay> ReplayProgram(ReplayProgramRequest request, ServerCallContext context)
    {
        if (request.Candidate is null) throw Validate.Invalid("candidate", "required: the programme to replay (as SetProgram takes it)");
        var replay = new WhatIfRequest(ProtoMapping.ToDomain(request.Candidate), Validate.Instant(request.From, "from"), Validate.Instant(request.To, "to"))
        {
            TopMembers = request.HasTopMembers ? request.TopMembers : 20,
            LookbackMonths = request.HasLookbackMonths ? request.LookbackMonths : 1,
        };
        var errors = replay.Validate(MccCatalogue.Default);
        if (errors.Count > 0) throw Validate.Invalid(errors);
        var database = Database;
        if (!database.TryEnterReplay())
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, "a replay is already running on this node; retry when it ends"));
        }
        try
        {
            return ToProto(await WhatIfReplay.RunAsync(database.Source, replay, MccCatalogue.Default, cancellationToken: context.CancellationToken));
        }
        finally
        {
            database.ExitReplay();
        }
    }

    private static V1Stats ToProto(LoyaltyGrains.Analytics.ProgramStats stats)
    {
        var s = stats.Summary;
        var reply = new V1Stats
        {
            Figures = new StatsFigures
            {
                ActiveMembers = s.ActiveMembers, Purchases = s.Purchases, RepeatMembers = s.RepeatMembers, CapturedMinor = s.CapturedMinor,
                NetSpendMinor = s.NetSpendMinor, CashbackMinor = s.CashbackMinor, AccruedMinor = s.AccruedMinor, RedeemedMinor = s.RedeemedMinor,
                ExpiredMinor = s.ExpiredMinor, AvailableMinor = s.AvailableMinor, PendingMinor = s.PendingMinor, LiabilityMinor = s.LiabilityMinor,
                Expiring30DaysMinor = s.Expiring30Minor, Expiring60DaysMinor = s.Expiring60Minor, Expiring90DaysMinor = s.Expiring90Minor,
                AverageCheckMinor = s.AverageCheckMinor, PurchasesPerActiveMemberX100 = Ratio.Divide(checked(s.Purchases * 100), s.ActiveMembers),
                RepeatRateBps = s.RepeatRateBps, EffectiveRateBps = s.EffectiveRateBps, RedemptionRateBps = s.RedemptionRateBps,
            },
        };
        Groups(reply.ByCategory, stats.ByCategory);
        Groups(reply.ByTier, stats.ByTier);
        Groups(reply.ByCampaign, stats.ByCampaign);
        Groups(reply.ByFunder, stats.ByFunder);
        foreach (var c in stats.CostByMonth)
        {
            reply.CostByMonth.Add(new V1.MonthCategoryCost { Month = Month(c.Month), Category = c.Category, NetSpendMinor = c.NetSpendMinor, CashbackMinor = c.CashbackMinor });
        }
        foreach (var r in stats.Retention)
        {
            reply.Retention.Add(new V1.MonthRetention { Month = Month(r.Month), ActiveMembers = r.ActiveMembers, ActiveNextMonth = r.RetainedNextMonth, RetentionBps = r.RetentionBps });
        }
        foreach (var c in stats.Cohorts)
        {
            reply.Cohorts.Add(new V1.CohortCell
            {
                Cohort = Month(c.CohortMonth), MonthsSinceEnrolment = c.MonthsSinceEnrolment, CohortSize = c.CohortSize, ActiveMembers = c.ActiveMembers, ActiveBps = c.ActiveBps,
            });
        }
        return reply;
    }

    private static void Groups(RepeatedField<V1.StatsGroup> target, IEnumerable<LoyaltyGrains.Analytics.StatsGroup> groups)
    {
        foreach (var g in groups)
        {
            target.Add(new V1.StatsGroup
            {
                Key = g.Key, Purchases = g.Purchases, ActiveMembers = g.ActiveMembers, NetSpendMinor = g.NetSpendMinor, CashbackMinor = g.CashbackMinor,
                EffectiveRateBps = g.EffectiveRateBps,
            });
        }
    }

    private static ProgramReplay ToProto(WhatIfResult result)
    {
        var b = result.Behaviour;
        var reply = new ProgramReplay
        {
            Purchases = result.Purchases, NetSpendMinor = result.SpendMinor, ActualMinor = result.ActualMinor, CandidateMinor = result.CandidateMinor,
            DeltaMinor = result.DeltaMinor, DeltaBps = result.DeltaBps,
            PurchasesEarningMore = b.PurchasesEarningMore, PurchasesEarningLess = b.PurchasesEarningLess, PurchasesUnchanged = b.PurchasesUnchanged,
            MembersEarningMore = b.MembersEarningMore, MembersEarningLess = b.MembersEarningLess, MembersUnchanged = b.MembersUnchanged,
            ActualCategoryPurchases = b.ActualCategoryPurchases, CandidateCategoryPurchases = b.CandidateCategoryPurchases,
            TierMonthsChanged = b.TierMonthsChanged, RowsRead = result.Run.RowsRead, Members = result.Run.Members,
            CarriedRows = result.Run.CarriedRows, CarriedMinor = result.Run.CarriedMinor, ElapsedMs = (long)result.Run.Elapsed.TotalMilliseconds,
            ReplayedFrom = Timestamp.FromDateTimeOffset(result.ReplayedFrom),
        };
        Deltas(reply.ByCategory, result.ByCategory);
        Deltas(reply.ByTier, result.ByTier);
        Deltas(reply.ByFunder, result.ByFunder);
        Deltas(reply.ByCampaign, result.ByCampaign);
        Deltas(reply.ByRule, result.ByRule);
        Deltas(reply.ByMonth, result.ByMonth);
        foreach (var m in result.MostAffected)
        {
            reply.MostAffected.Add(new V1.MemberDelta { MemberId = m.MemberId, Purchases = m.Purchases, ActualMinor = m.ActualMinor, CandidateMinor = m.CandidateMinor, DeltaMinor = m.DeltaMinor });
        }
        return reply;
    }

    private static void Deltas(RepeatedField<V1.DeltaGroup> target, IEnumerable<LoyaltyGrains.Analytics.Replay.DeltaGroup> groups)
    {
        foreach (var g in groups)
        {
            target.Add(new V1.DeltaGroup
            {
                Key = g.Key, Purchases = g.Purchases, ActualMinor = g.ActualMinor, CandidateMinor = g.CandidateMinor, DeltaMinor = g.DeltaMinor, DeltaBps = g.DeltaBps,
            });
        }
    }

    private static string Month(int month) => new MonthKey(month).ToString();
}
