using LoyaltyGrains.Grains.Ledger;
using LoyaltyGrains.Grains.Settlement;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace LoyaltyGrains.Grains;

public static class HostingExtensions
{
    /// <summary>Silo services the grains need. A ledger registered before this call (PostgreSQL) wins over the in-memory one.</summary>
    public static IServiceCollection AddLoyaltyGrains(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ILedger, InMemoryLedger>();
        services.AddPartnerSettlement();
        services.AddSingleton<RulesProvider>();
        services.AddSingleton<IRulesProvider>(sp => sp.GetRequiredService<RulesProvider>());
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<RulesProvider>());
        services.AddSingleton<CampaignBudgets>();
        services.AddSingleton<ICampaignBudget>(sp => sp.GetRequiredService<CampaignBudgets>());
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<CampaignBudgets>());
        return services;
    }
}
