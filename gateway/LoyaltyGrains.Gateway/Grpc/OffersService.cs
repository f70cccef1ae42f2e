using Grpc.Core;
using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.Gateway.Grpc;

/// <summary>Offers: what a member would earn (no side effects), club offers, activation, partner payouts.</summary>
public sealed class OffersService(IGrainFactory grains) : Offers.OffersBase
{
    public override async Task<EligibilityReply> CheckEligibility(CheckEligibilityRequest request, ServerCallContext context)
    {
        if (request.CardId.Length == 0 && request.MemberId.Length == 0) throw Validate.Invalid("member_id", "card_id or member_id is required");
        var cardId = Validate.OptionalId(request.CardId, "card_id");
        var merchantId = Validate.Id(request.MerchantId, "merchant_id");
        var mcc = Validate.Mcc(request.Mcc, "mcc");
        var amount = Validate.PositiveAmount(request.AmountMinor, "amount_minor");
        var memberId = request.MemberId.Length > 0
            ? Validate.Id(request.MemberId, "member_id")
            : (await grains.CardGrain(cardId).GetCard()).MemberId;
        var eligibility = await grains.MemberGrain(memberId).Quote(merchantId, mcc, amount);
        var reply = new EligibilityReply { MemberId = memberId, ExpectedAccrualMinor = eligibility.ExpectedAccrualMinor };
        foreach (var item in eligibility.Breakdown) reply.Breakdown.Add(ProtoMapping.ToLine(item));
        foreach (var campaignId in eligibility.CampaignIds)
        {
            var status = await grains.CampaignGrain(campaignId).GetStatus();
            reply.Offers.Add(ProtoMapping.ToProto(DomainJson.Deserialize<CampaignRule>(status.CampaignJson)));
        }
        return reply;
    }

    public override async Task<OfferList> ListOffers(ListOffersRequest request, ServerCallContext context)
    {
        var memberId = Validate.Id(request.MemberId, "member_id");
        return ToList(await grains.MemberGrain(memberId).ListOffers());
    }

    public override async Task<OfferList> ActivateOffer(ActivateOfferRequest request, ServerCallContext context)
    {
        var memberId = Validate.Id(request.MemberId, "member_id");
        var campaignId = Validate.Id(request.CampaignId, "campaign_id");
        return ToList(await grains.MemberGrain(memberId).ActivateOffer(campaignId));
    }

    public override async Task<PayoutStatement> GetPayouts(GetPayoutsRequest request, ServerCallContext context)
    {
        var partnerId = Validate.Id(request.PartnerId, "partner_id");
        var (fromDay, toDay) = PayoutMapping.Days(request);
        var report = await grains.GetGrain<IPartnerSettlementGrain>(GrainKeys.PartnerPrefix + partnerId).GetPayouts(fromDay, toDay);
        return PayoutMapping.ToStatement(report);
    }

    private static OfferList ToList(OfferListing listing)
    {
        var list = new OfferList();
        for (var i = 0; i < listing.CampaignsJson.Length; i++)
        {
            var offer = ProtoMapping.ToProto(DomainJson.Deserialize<CampaignRule>(listing.CampaignsJson[i]));
            offer.BudgetSpentMinor = listing.Usage[i].BudgetSpentMinor;
            offer.MembersJoined = listing.Usage[i].MembersJoined;
            list.Offers.Add(offer);
        }
        list.ActivatedCampaignIds.AddRange(listing.ActivatedCampaignIds);
        return list;
    }
}
