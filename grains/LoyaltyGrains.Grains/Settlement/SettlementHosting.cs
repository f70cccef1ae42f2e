using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace LoyaltyGrains.Grains.Settlement;

public static class SettlementHosting
{
    /// <summary>The settlement store (a PostgreSQL one registered before this wins) and this silo's delivery pump.</summary>
    public static IServiceCollection AddPartnerSettlement(this IServiceCollection services)
    {
        services.TryAddSingleton<InMemoryPartnerSettlement>();
        services.TryAddSingleton<IPartnerSettlementStore>(sp => sp.GetRequiredService<InMemoryPartnerSettlement>());
        services.AddSingleton<IHostedService, PartnerEventPump>();
        return services;
    }
}
