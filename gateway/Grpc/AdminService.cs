using Grpc.Core;
using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.Gateway.Grpc;

/// <summary>Admin: the program operator's members, cards and program.</summary>
public sealed class AdminService(IGrainFactory grains, CardRoutes routes) : Admin.AdminBase
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
        var rule = ProtoMapping.ToDomain(request);
        Validate.Id(rule.CampaignId, "campaign_id");
        if (rule.PartnerId.Length > 0 && await grains.PartnerGrain(Validate.Id(rule.PartnerId, "partner_id")).GetPartner() is null)
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"partner_id: partner '{rule.PartnerId}' does not exist; UpsertPartner first"));
        }
        foreach (var merchant in rule.MerchantIds) Validate.Id(merchant, "merchant_ids");
        var errors = rule.Validate(MccCatalogue.Default);
        if (errors.Count > 0) throw new RpcException(new Status(StatusCode.InvalidArgument, string.Join("; ", errors)));
        var status = await grains.CampaignGrain(rule.CampaignId).Upsert(DomainJson.Serialize(rule));
        var reply = ProtoMapping.ToProto(DomainJson.Deserialize<CampaignRule>(status.CampaignJson));
        reply.BudgetSpentMinor = status.BudgetLeasedMinor;
        reply.MembersJoined = status.SlotsLeased;
        return reply;
    }

    public override async Task<Partner> UpsertPartner(Partner request, ServerCallContext context)
    {
        var partnerId = Validate.Id(request.PartnerId, "partner_id");
        if (request.Name.Length is 0 or > 200) throw Validate.Invalid("name", "required, at most 200 characters");
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
        if (errors.Count > 0) throw new RpcException(new Status(StatusCode.InvalidArgument, string.Join("; ", errors)));
        var stored = await grains.GetGrain<IProgramGrain>(IProgramGrain.Key).SetProgram(DomainJson.Serialize(program));
        return ProtoMapping.ToProto(DomainJson.Deserialize<ProgramConfig>(stored));
    }
}
