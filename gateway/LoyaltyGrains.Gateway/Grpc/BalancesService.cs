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
    /// <summary>"s" and a positive long.</summary>
    private const int PageTokenLengthMax = 20;

    public override async Task<Balance> GetBalance(GetBalanceRequest request, ServerCallContext context)
    {
        var memberId = Validate.Id(request.MemberId, "member_id");
        return ProtoMapping.ToBalance(await grains.MemberGrain(memberId).GetBalance());
    }

    /// <summary>Renew the watch well within the grain's watcher lease.</summary>
    public static readonly TimeSpan WatchRenewInterval = TimeSpan.FromSeconds(IMemberGrain.WatchLeaseSeconds / 3);

    public override async Task WatchBalance(GetBalanceRequest request, IServerStreamWriter<Balance> responseStream, ServerCallContext context)
    {
        var memberId = Validate.Id(request.MemberId, "member_id");
        var member = grains.MemberGrain(memberId);
        // Bounded: a client that reads slowly sees the newest balances, not an ever-growing backlog.
        var updates = System.Threading.Channels.Channel.CreateBounded<BalanceView>(new System.Threading.Channels.BoundedChannelOptions(16)
        {
            FullMode = System.Threading.Channels.BoundedChannelFullMode.DropOldest, SingleReader = true,
        });
        var observer = new BalanceWatcher(updates.Writer);
        var reference = grains.CreateObjectReference<IBalanceObserver>(observer);
        try
        {
            var lastSequence = -1L;
            await Send(await member.Watch(reference));
            using var renew = new PeriodicTimer(WatchRenewInterval);
            var renewTick = renew.WaitForNextTickAsync(context.CancellationToken).AsTask();
            while (!context.CancellationToken.IsCancellationRequested)
            {
                var next = updates.Reader.WaitToReadAsync(context.CancellationToken).AsTask();
                var done = await Task.WhenAny(next, renewTick);
                if (done == renewTick)
                {
                    if (!await renewTick) break;
                    // Renewal also re-registers after the member grain moved or re-activated.
                    await Send(await member.Watch(reference));
                    renewTick = renew.WaitForNextTickAsync(context.CancellationToken).AsTask();
                    continue;
                }
                if (!await next) break;
                while (updates.Reader.TryRead(out var view)) await Send(view);
            }

            async Task Send(BalanceView view)
            {
                if (view.Sequence <= lastSequence) return;
                lastSequence = view.Sequence;
                await responseStream.WriteAsync(ProtoMapping.ToBalance(view), context.CancellationToken);
            }
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            member.Unwatch(reference).Ignore();
            grains.DeleteObjectReference<IBalanceObserver>(reference);
            GC.KeepAlive(observer);
        }
    }

    private sealed class BalanceWatcher(System.Threading.Channels.ChannelWriter<BalanceView> writer) : IBalanceObserver
    {
        public Task BalanceChanged(BalanceView balance)
        {
            writer.TryWrite(balance);
            return Task.CompletedTask;
        }
    }

    public override async Task<Balance> ChooseCategories(ChooseCategoriesRequest request, ServerCallContext context)
    {
        var memberId = Validate.Id(request.MemberId, "member_id");
        var month = Validate.Month(request.Month, "month");
        var categories = Validate.Categories(request.Categories, "categories", Domain.Limits.ChosenCategoriesCountMax);
        return ProtoMapping.ToBalance(await grains.MemberGrain(memberId).ChooseCategories(month.ToString(), [.. categories]));
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
        if (token.Length > PageTokenLengthMax || !token.StartsWith(PageTokenPrefix, StringComparison.Ordinal)
            || !long.TryParse(token.AsSpan(1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var before)
            || before <= 0)
        {
            throw Validate.Invalid("page_token", "not a token returned by GetStatement");
        }
        return before;
    }
}
