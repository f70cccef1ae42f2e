using Grpc.Core;
using Grpc.Core.Interceptors;
using LoyaltyGrains.Contracts;
using Microsoft.Extensions.Logging;

namespace LoyaltyGrains.Gateway.Grpc;

/// <summary>Turns grain refusals and infrastructure failures into precise gRPC statuses, in one place.</summary>
public sealed class ErrorMappingInterceptor(ILogger<ErrorMappingInterceptor> logger) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw ToRpc(ex, context.Method, logger);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw ToRpc(ex, context.Method, logger);
        }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(requestStream, responseStream, context);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw ToRpc(ex, context.Method, logger);
        }
    }

    public static RpcException ToRpc(Exception ex, string method, ILogger logger)
    {
        var status = StatusOf(ex);
        if (status.StatusCode is StatusCode.Internal or StatusCode.Unavailable or StatusCode.DeadlineExceeded)
        {
            logger.LogError(ex, "{Method} failed: {Status}", method, status.StatusCode);
        }
        return new RpcException(status);
    }

    public static Status StatusOf(Exception ex) => ex switch
    {
        RpcException rpc => rpc.Status,
        LoyaltyRejectedException rejected => new Status(rejected.Code switch
        {
            RejectionCode.InvalidArgument => StatusCode.InvalidArgument,
            RejectionCode.NotFound => StatusCode.NotFound,
            RejectionCode.AlreadyExists => StatusCode.AlreadyExists,
            RejectionCode.FailedPrecondition => StatusCode.FailedPrecondition,
            RejectionCode.PermissionDenied => StatusCode.PermissionDenied,
            RejectionCode.Aborted => StatusCode.Aborted,
            _ => StatusCode.Internal,
        }, rejected.Message),
        // A grain call that timed out has an unknown outcome: the processor retries with the same transaction_id.
        TimeoutException => new Status(StatusCode.DeadlineExceeded, "the outcome is unknown; retry with the same transaction_id"),
        OperationCanceledException => new Status(StatusCode.Cancelled, "cancelled"),
        Orleans.Runtime.SiloUnavailableException or Orleans.Runtime.OrleansMessageRejectionException or Orleans.Runtime.ClientNotAvailableException
            => new Status(StatusCode.Unavailable, "the engine is temporarily unavailable; retry with the same transaction_id"),
        _ => new Status(StatusCode.Internal, "internal error; retry with the same transaction_id is safe"),
    };
}
