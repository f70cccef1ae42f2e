using Grpc.Core;
using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.Gateway.Grpc;

/// <summary>Admin: the program operator's members, cards and program.</summary>
public sealed class AdminService(IGrainFactory grains) : Admin.AdminBase
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
        return ProtoMapping.ToCard(await grains.CardGrain(cardId).Issue(memberId));
    }

    public override async Task<Card> BlockCard(BlockCardRequest request, ServerCallContext context)
    {
        var cardId = Validate.Id(request.CardId, "card_id");
        return ProtoMapping.ToCard(await grains.CardGrain(cardId).Block());
    }

    public override async Task<V1.Program> GetProgram(GetProgramRequest request, ServerCallContext context)
    {
        var versions = await grains.GetGrain<IProgramGrain>(IProgramGrain.Key).GetVersions();
        return ProtoMapping.ToProto(ProgramJson.Deserialize(versions[^1]));
    }

    public override async Task<V1.Program> SetProgram(V1.Program request, ServerCallContext context)
    {
        var program = ProtoMapping.ToDomain(request);
        var errors = program.Validate(MccCatalogue.Default);
        if (errors.Count > 0) throw new RpcException(new Status(StatusCode.InvalidArgument, string.Join("; ", errors)));
        var stored = await grains.GetGrain<IProgramGrain>(IProgramGrain.Key).SetProgram(ProgramJson.Serialize(program));
        return ProtoMapping.ToProto(ProgramJson.Deserialize(stored));
    }
}
