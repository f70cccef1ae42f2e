using Grpc.Core;
using Grpc.Core.Interceptors;
using LoyaltyGrains.Contracts;
using Microsoft.Extensions.Logging;

namespace LoyaltyGrains.Gateway.Grpc;

/// <summary>
/// Turns grain refusals and infrastructure failures into precise gRPC statuses, in one place; and hands the caller's
/// deadline to the grains (they stop waiting on the database when it passes) while not waiting past it here either.
/// </summary>
public sealed class ErrorMappingInterceptor(ILogger<ErrorMappingInterceptor> logger) : Interceptor
{
    /// <summary>Status details are cut to this length: a refused value is never echoed back whole.</summary>
    public const int DetailLengthMax = 512;

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        CallDeadline.Set(context.Deadline);
        try
        {
            var call = continuation(request, context);
            // Without a deadline the grain call's own bounds apply; with one, stop waiting when it passes.
            return context.Deadline == DateTime.MaxValue ? await call : await call.WaitAsync(context.CancellationToken);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw ToRpc(ex, context, logger);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        CallDeadline.Set(context.Deadline);
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw ToRpc(ex, context, logger);
        }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        CallDeadline.Set(context.Deadline);
        try
        {
            await continuation(requestStream, responseStream, context);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw ToRpc(ex, context, logger);
        }
    }

    private static RpcException ToRpc(Exception ex, ServerCallContext context, ILogger logger)
    {
        if (ex is OperationCanceledException && context.CancellationToken.IsCancellationRequested)
        {
            // The caller's deadline passed or it went away; it does not read this status.
            return new RpcException(new Status(context.Deadline <= DateTime.UtcNow ? StatusCode.DeadlineExceeded : StatusCode.Cancelled,
                "the call ended before the engine answered; retry with the same transaction_id"));
        }
        var status = StatusOf(ex);
        if (status.StatusCode == StatusCode.Internal)
        {
            logger.LogError(ex, "{Method} failed: {Status}", context.Method, status.StatusCode);
        }
        else if (status.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
        {
            // Expected during an outage, which the database layer logs once; per call this would flood the log.
            logger.LogDebug(ex, "{Method}: {Status}", context.Method, status.StatusCode);
        }
        return new RpcException(status);
    }

    public static Status StatusOf(Exception ex)
    {
        var status = StatusOfCore(ex);
        return status.Detail.Length <= DetailLengthMax ? status : new Status(status.StatusCode, status.Detail[..DetailLengthMax] + "…");
    }

    private static Status StatusOfCore(Exception ex) => ex switch
    {
        RpcException rpc => rpc.Status,
        LoyaltyUnavailableException unavailable => new Status(StatusCode.Unavailable, unavailable.Message),
        LoyaltyRejectedException rejected => new Status(rejected.Code switch
        {
            RejectionCode.InvalidArgument => StatusCode.InvalidArgument,
            RejectionCode.NotFound => StatusCode.NotFound,
            RejectionCode.AlreadyExists => StatusCode.AlreadyExists,
            RejectionCode.FailedPrecondition => StatusCode.FailedPrecondition,
            RejectionCode.PermissionDenied => StatusCode.PermissionDenied,
            RejectionCode.Aborted => StatusCode.Aborted,
            RejectionCode.ResourceExhausted => StatusCode.ResourceExhausted,
            _ => StatusCode.Internal,
        }, rejected.Message),
        // A grain call that timed out has an unknown outcome: the processor retries with the same transaction_id.
        TimeoutException => new Status(StatusCode.DeadlineExceeded, "the outcome is unknown; retry with the same transaction_id"),
        OperationCanceledException => new Status(StatusCode.Cancelled, "cancelled"),
        Orleans.Runtime.SiloUnavailableException or Orleans.Runtime.OrleansMessageRejectionException or Orleans.Runtime.ClientNotAvailableException
            => new Status(StatusCode.Unavailable, "the engine is temporarily unavailable; retry with the same transaction_id"),
        _ when Faults.IsUnavailable(ex) => new Status(StatusCode.Unavailable, "the database is unreachable; retry with the same transaction_id"),
        _ => new Status(StatusCode.Internal, "internal error; retry with the same transaction_id is safe"),
    };
}
