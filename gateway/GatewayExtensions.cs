using LoyaltyGrains.Gateway.Auth;
using LoyaltyGrains.Gateway.Grpc;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace LoyaltyGrains.Gateway;

public static class GatewayExtensions
{
    /// <summary>gRPC services, error mapping, bearer-token security (gateway/Auth), health and reflection. Needs an IGrainFactory (silo or Orleans client).</summary>
    public static IServiceCollection AddLoyaltyGateway(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<CardRoutes>(_ => new CardRoutes());
        services.AddGrpc(options =>
        {
            options.Interceptors.Add<ErrorMappingInterceptor>();
            options.EnableDetailedErrors = false;
            options.MaxReceiveMessageSize = 1024 * 1024;
        });
        services.AddGrpcHealthChecks().AddCheck("engine", () => Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Healthy());
        services.AddGrpcReflection();
        services.AddLoyaltySecurity();
        return services;
    }

    public static IEndpointRouteBuilder MapLoyaltyGateway(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGrpcService<ProcessingService>().RequireLoyaltyAccess();
        endpoints.MapGrpcService<BalancesService>().RequireLoyaltyAccess();
        endpoints.MapGrpcService<AdminService>().RequireLoyaltyAccess();
        endpoints.MapGrpcService<OffersService>().RequireLoyaltyAccess();
        endpoints.MapGrpcHealthChecksService().AllowAnonymous();
        if (AuthSetup.ReflectionEnabled(endpoints)) endpoints.MapGrpcReflectionService().AllowAnonymous();
        endpoints.UseLoyaltyRateLimits();
        return endpoints;
    }
}
