using LoyaltyGrains.Gateway.Auth;
using LoyaltyGrains.Gateway.Grpc;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace LoyaltyGrains.Gateway;

public static class GatewayExtensions
{
    /// <summary>gRPC services, error mapping, bearer-token security (Auth/), health and reflection. Needs an IGrainFactory (silo or Orleans client).</summary>
    public static IServiceCollection AddLoyaltyGateway(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<CardRoutes>(_ => new CardRoutes());
        services.AddOptions<GatewayLimits>().BindConfiguration(GatewayLimits.Section)
            .Validate(limits => limits.PostingAgeMax > TimeSpan.Zero, $"{GatewayLimits.Section}:PostingAgeMax must be positive")
            .ValidateOnStart();
        services.AddGrpc(options =>
        {
            options.Interceptors.Add<ErrorMappingInterceptor>();
            options.EnableDetailedErrors = false;
            options.MaxReceiveMessageSize = 1024 * 1024;
        });
        // Health per service as well as overall (""): each loyalty.v1 service needs the same things (the engine, and in
        // durable mode the database and the cluster), so each reports every check.
        services.AddGrpcHealthChecks(options =>
        {
            foreach (var service in ServiceNames) options.Services.Map(service, _ => true);
        }).AddCheck("engine", () => Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Healthy());
        services.AddGrpcReflection();
        services.AddLoyaltySecurity();
        services.AddGatewayMetrics();
        return services;
    }

    /// <summary>The gRPC health service names: overall ("") and each service of loyalty.v1.</summary>
    public static readonly string[] ServiceNames =
    [
        "", V1.Processing.Descriptor.FullName, V1.Balances.Descriptor.FullName, V1.Offers.Descriptor.FullName, V1.Admin.Descriptor.FullName,
        V1.Analytics.Descriptor.FullName,
    ];

    public static IEndpointRouteBuilder MapLoyaltyGateway(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGrpcService<ProcessingService>().RequireLoyaltyAccess();
        endpoints.MapGrpcService<BalancesService>().RequireLoyaltyAccess();
        endpoints.MapGrpcService<AdminService>().RequireLoyaltyAccess();
        endpoints.MapGrpcService<OffersService>().RequireLoyaltyAccess();
        endpoints.MapGrpcService<AnalyticsService>().RequireLoyaltyAccess();
        endpoints.MapGrpcHealthChecksService().AllowAnonymous();
        if (AuthSetup.ReflectionEnabled(endpoints)) endpoints.MapGrpcReflectionService().AllowAnonymous();
        endpoints.UseLoyaltyRateLimits();
        return endpoints;
    }
}
