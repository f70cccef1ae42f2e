using Grpc.Core;
using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.Gateway.Grpc;

/// <summary>Admin: the program operator's members, cards and program.</summary>
public sealed class AdminService(IGrainFactory grains, CardRoutes routes, TimeProvider clock) : Admin.AdminBase
{
    public override async Task<Member> EnrollMember(EnrollMemberRequest request, ServerCallContext context)
    {
        var memberId = Validate.Id(request.MemberId, "member_id");
        var referredBy = Validate.OptionalId(request.ReferredBy, "referred_by");
        var tier = Validate.OptionalId(request.Tier, "tier");
        if (referredBy.Length > 0 && !await grains.MemberGrain(referredBy).IsEnrolled())
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"referred_by: member '{referredBy}' is not enrolled"));
        }
        return ProtoMapping.ToMember(await grains.MemberGrain(memberId).Enroll(request.Premium, referredBy, tier));
    }

    public override async Task<Card> IssueCard(IssueCardRequest request, ServerCallContext context)
    {
        var cardId = Validate.Id(request.CardId, "card_id");
        var memberId = Validate.Id(request.MemberId, "member_id");
        var card = await grains.CardGrain(cardId).Issue(memberId);
        routes.Learn(card.CardId, card.MemberId);
        return ProtoMapping.ToCard(card);
    }

    public override async Task<Card> BlockCard(BlockCardRequest request, ServerCallContext context)
    {
        var cardId = Validate.Id(request.CardId, "card_id");
        return ProtoMapping.ToCard(await grains.CardGrain(cardId).Block());
    }

    public override async Task<Campaign> UpsertCampaign(Campaign request, ServerCallContext context)
    {
        // Every field first (INVALID_ARGUMENT), then what must exist (NOT_FOUND), then the write.
        Validate.Id(request.CampaignId, "campaign_id");
        var rule = ProtoMapping.ToDomain(request);
        var errors = rule.Validate(MccCatalogue.Default);
        if (errors.Count > 0) throw Validate.Invalid(errors);
        var now = clock.GetUtcNow();
        if (rule.EndsAt > now + Limits.CampaignEndsAheadMax)
        {
            throw Validate.Invalid("ends_at", $"{rule.EndsAt:O} is more than {Limits.CampaignEndsAheadMax.TotalDays:0} days ahead");
        }
        if (rule.MinTier.Length > 0 && !await IsTierInForceOrScheduledAsync(rule.MinTier, now))
        {
            throw Validate.Invalid("min_tier", $"{Echo.Quote(rule.MinTier)} is not a tier of the programme in force or scheduled");
        }
        if (rule.PartnerId.Length > 0 && await grains.PartnerGrain(rule.PartnerId).GetPartner() is null)
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"partner_id: partner '{rule.PartnerId}' does not exist; UpsertPartner first"));
        }
        var status = await grains.CampaignGrain(rule.CampaignId).Upsert(DomainJson.Serialize(rule));
        var reply = ProtoMapping.ToProto(DomainJson.Deserialize<CampaignRule>(status.CampaignJson));
        reply.BudgetSpentMinor = status.BudgetLeasedMinor;
        reply.MembersJoined = status.SlotsLeased;
        return reply;
    }

    /// <summary>
    /// A campaign's minimum tier must be reachable: a tier of the version in force now or of one already scheduled
    /// (a campaign for a tier that a new version introduces may be set up before that version takes effect).
    /// </summary>
    private async Task<bool> IsTierInForceOrScheduledAsync(string tierId, DateTimeOffset now)
    {
        var versions = (await grains.GetGrain<IProgramGrain>(IProgramGrain.Key).GetVersions()).Select(DomainJson.Deserialize<ProgramConfig>).ToArray();
        var history = new ProgramHistory(versions);
        return history.At(now).FindTier(tierId) is not null || versions.Any(v => v.EffectiveFrom > now && v.FindTier(tierId) is not null);
    }

    public override async Task<Partner> UpsertPartner(Partner request, ServerCallContext context)
    {
        var partnerId = Validate.Id(request.PartnerId, "partner_id");
        Validate.Name(request.Name, "name");
        var info = await grains.PartnerGrain(partnerId).Upsert(request.Name);
        return new Partner { PartnerId = info.PartnerId, Name = info.Name };
    }

    public override async Task<V1.Program> GetProgram(GetProgramRequest request, ServerCallContext context)
    {
        var versions = await grains.GetGrain<IProgramGrain>(IProgramGrain.Key).GetVersions();
        return ProtoMapping.ToProto(DomainJson.Deserialize<ProgramConfig>(versions[^1]));
    }

    public override async Task<V1.Program> SetProgram(V1.Program request, ServerCallContext context)
    {
        var program = ProtoMapping.ToDomain(request);
        var errors = program.Validate(MccCatalogue.Default);
        if (errors.Count > 0) throw Validate.Invalid(errors);
        // A version scheduled far ahead would refuse every change before it (none may precede it): at most a year.
        var latest = clock.GetUtcNow() + Limits.ProgramEffectiveAheadMax;
        if (program.EffectiveFrom > latest)
        {
            throw Validate.Invalid("effective_from", $"{program.EffectiveFrom:O} is more than {Limits.ProgramEffectiveAheadMax.TotalDays:0} days ahead");
        }
        var stored = await grains.GetGrain<IProgramGrain>(IProgramGrain.Key).SetProgram(DomainJson.Serialize(program));
        return ProtoMapping.ToProto(DomainJson.Deserialize<ProgramConfig>(stored));
    }
}
