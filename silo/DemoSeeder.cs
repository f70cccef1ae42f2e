using LoyaltyGrains.Cli;
using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Silo;

/// <summary>Seeds the embedded default's demo members and cards once the silo serves (idempotent).</summary>
public sealed class DemoSeeder(IGrainFactory grains, IHostApplicationLifetime lifetime, TimeProvider clock, ILogger<DemoSeeder> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource();
        using var registration = lifetime.ApplicationStarted.Register(() => started.TrySetResult());
        await started.Task.WaitAsync(stoppingToken);
        var month = MonthKey.Of(clock.GetUtcNow(), ProgramConfig.Default.UtcOffsetMinutes).ToString();
        foreach (var (memberId, premium, cardId, categories) in DemoDay.Members)
        {
            await grains.MemberGrain(memberId).Enroll(premium, "", "");
            await grains.CardGrain(cardId).Issue(memberId);
            await grains.MemberGrain(memberId).ChooseCategories(month, categories);
        }
        logger.LogInformation("Demo data seeded: members {Members}; try: dotnet run --project silo -c Release -- demo",
            string.Join(", ", DemoDay.Members.Select(m => $"{m.MemberId} ({m.CardId})")));
    }
}
