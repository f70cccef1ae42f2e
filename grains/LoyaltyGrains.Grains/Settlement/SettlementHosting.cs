using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Orleans.Hosting;
using Orleans.Streams;

namespace LoyaltyGrains.Grains.Settlement;

public static class SettlementHosting
{
    /// <summary>
    /// The settlement store (a PostgreSQL one registered before this wins), the partner-event stream over its outbox
    /// (implicit subscriptions only: no pub-sub state to store) and the lag metrics.
    /// </summary>
    public static IServiceCollection AddPartnerSettlement(this IServiceCollection services)
    {
        services.TryAddSingleton<InMemoryPartnerSettlement>();
        services.TryAddSingleton<IPartnerSettlementStore>(sp => sp.GetRequiredService<InMemoryPartnerSettlement>());
        services.TryAddSingleton(sp => OutboxStreamSettings.From(sp.GetService<IConfiguration>()));
        services.AddSingleton<IHostedService, PayoutDeliveryMetrics>();

        var stream = new SiloPersistentStreamConfigurator(PartnerStreams.ProviderName, configure => configure(services), OutboxQueueAdapterFactory.Create);
        stream.ConfigureStreamPubSub(StreamPubSubType.ImplicitOnly);
        stream.ConfigurePullingAgent(options => options.Configure<OutboxStreamSettings>((agent, settings) =>
        {
            agent.GetQueueMsgsTimerPeriod = settings.PollInterval;
            agent.MaxEventDeliveryTime = settings.MaxDeliveryTime;
        }));
        return services;
    }
}
