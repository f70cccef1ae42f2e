using Grpc.Core;
using Grpc.Core.Interceptors;
using LoyaltyGrains.Gateway.V1;
using Microsoft.Extensions.Logging;

namespace LoyaltyGrains.Gateway.Auth;

/// <summary>
/// Audits the calls <see cref="RpcAccess"/> marks (every Admin call, Balances.Redeem): takes a queue slot before the
/// call runs (none free: UNAVAILABLE, nothing changed), then records who, what and the outcome the client gets, and
/// replies once the record is stored. Other calls pass straight through: no audit cost on the processing path.
/// </summary>
public sealed class AuditInterceptor(AuditLog audit, TimeProvider clock, ILogger<AuditInterceptor> logger) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        if (RpcAccess.Find(context.Method) is not { Audited: true }) return await continuation(request, context);
        if (!audit.TryReserve())
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "the audit log is backed up; nothing was changed, retry later"));
        }
        var status = Status.DefaultSuccess;
        TResponse? response = default;
        try
        {
            response = await continuation(request, context);
            return response;
        }
        catch (RpcException ex)
        {
            status = ex.Status;
            throw;
        }
        catch (Exception ex)
        {
            status = new Status(StatusCode.Unknown, ex.GetType().Name);
            throw;
        }
        finally
        {
            var record = Describe(Caller.From(context.GetHttpContext().User), context, request, response, status);
            var stored = audit.RecordAsync(record);
            if (!stored.IsCompleted && await Task.WhenAny(stored, Task.Delay(audit.DurableWait, clock)) != stored)
            {
                // The record stays queued (and is in the log); the reply is not held hostage by a slow audit store.
                logger.LogWarning("audit record of {Method} by {Subject} not stored within {Wait}; replying anyway", record.Method, record.Subject, audit.DurableWait);
            }
        }
    }

    private AuditRecord Describe(Caller caller, ServerCallContext context, object request, object? response, Status status)
    {
        var record = new AuditRecord(clock.GetUtcNow(), caller.Subject, LoyaltyClaims.Format(caller.Roles), RpcAccess.ShortName(context.Method),
            AuditRecord.StatusName(status.StatusCode), "", "", "", "", "", null, Truncate(status.Detail), context.Peer);
        record = request switch
        {
            RedeemRequest r => record with { MemberId = r.MemberId, PartnerId = r.PartnerId, TransactionId = r.TransactionId, AmountMinor = r.AmountMinor },
            EnrollMemberRequest r => record with { MemberId = r.MemberId, Detail = Join(record.Detail, $"premium={r.Premium} tier={r.Tier} referred_by={r.ReferredBy}") },
            IssueCardRequest r => record with { MemberId = r.MemberId, CardId = r.CardId },
            BlockCardRequest r => record with { CardId = r.CardId },
            Campaign r => record with { CampaignId = r.CampaignId, PartnerId = r.PartnerId, AmountMinor = r.BudgetMinor },
            Partner r => record with { PartnerId = r.PartnerId },
            _ => record,
        };
        // What the reply adds: the member a blocked card belongs to, the program version a change created.
        return response switch
        {
            Card card when record.MemberId.Length == 0 => record with { MemberId = card.MemberId },
            V1.Program program => record with { Detail = Join(record.Detail, $"version={program.Version}") },
            _ => record,
        };
    }

    private static string Join(string a, string b) => a.Length == 0 ? b : a + "; " + b;

    private static string Truncate(string text) => text.Length <= 500 ? text : text[..500];
}
