using Grpc.Core;
using LoyaltyGrains.Contracts;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.Gateway.Grpc;

/// <summary>Balances: what mobile apps read and choose. Reads come from the member grain's memory.</summary>
public sealed class BalancesService(IGrainFactory grains) : Balances.BalancesBase
{
    public const int StatementPageSizeDefault = 50;
    public const int StatementPageSizeMax = 200;
    private const string PageTokenPrefix = "s";

    public override async Task<Balance> GetBalance(GetBalanceRequest request, ServerCallContext context)
    {
        var memberId = Validate.Id(request.MemberId, "member_id");
        return ProtoMapping.ToBalance(await grains.MemberGrain(memberId).GetBalance());
    }

    public override async Task<Balance> ChooseCategories(ChooseCategoriesRequest request, ServerCallContext context)
    {
        var memberId = Validate.Id(request.MemberId, "member_id");
        if (request.Month.Length == 0) throw Validate.Invalid("month", "required, in the form YYYY-MM");
        return ProtoMapping.ToBalance(await grains.MemberGrain(memberId).ChooseCategories(request.Month, [.. request.Categories]));
    }

    public override async Task<PostingReply> Redeem(RedeemRequest request, ServerCallContext context)
    {
        var transactionId = Validate.Id(request.TransactionId, "transaction_id");
        var memberId = Validate.Id(request.MemberId, "member_id");
        var partnerId = Validate.Id(request.PartnerId, "partner_id");
        var amount = Validate.PositiveAmount(request.AmountMinor, "amount_minor");
        if (await grains.PartnerGrain(partnerId).GetPartner() is null)
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"partner_id: partner '{partnerId}' does not exist"));
        }
        return ProtoMapping.ToReply(await grains.MemberGrain(memberId).Redeem(transactionId, partnerId, amount));
    }

    public override async Task<Statement> GetStatement(GetStatementRequest request, ServerCallContext context)
    {
        var memberId = Validate.Id(request.MemberId, "member_id");
        if (request.PageSize is < 0 or > StatementPageSizeMax) throw Validate.Invalid("page_size", $"must be 0 (default {StatementPageSizeDefault}) to {StatementPageSizeMax}");
        var before = ParsePageToken(request.PageToken);
        var page = await grains.MemberGrain(memberId).GetStatement(request.PageSize == 0 ? StatementPageSizeDefault : request.PageSize, before);
        var statement = new Statement { NextPageToken = page.NextBeforeSequence > 0 ? PageTokenPrefix + page.NextBeforeSequence.ToString(System.Globalization.CultureInfo.InvariantCulture) : "" };
        foreach (var line in page.Entries) statement.Entries.Add(ProtoMapping.ToEntry(line));
        return statement;
    }

    /// <summary>A page token is the ledger sequence to read below: stable while new entries arrive on top.</summary>
    private static long ParsePageToken(string token)
    {
        if (token.Length == 0) return 0;
        if (!token.StartsWith(PageTokenPrefix, StringComparison.Ordinal)
            || !long.TryParse(token.AsSpan(1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var before)
            || before <= 0)
        {
            throw Validate.Invalid("page_token", "not a token returned by GetStatement");
        }
        return before;
    }
}
