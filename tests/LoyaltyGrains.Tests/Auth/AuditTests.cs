using System.Collections.Concurrent;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LoyaltyGrains.Contracts;
using LoyaltyGrains.Gateway.Auth;
using LoyaltyGrains.Gateway.V1;
using LoyaltyGrains.Tests.Api;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace LoyaltyGrains.Tests.Auth;

/// <summary>An audit store in memory that can be held shut (to fill the queue) and reopened.</summary>
public sealed class RecordingAuditStore : IAuditStore
{
    private volatile TaskCompletionSource _open = Open();

    public ConcurrentQueue<AuditRecord> Records { get; } = new();

    public void Hold() => _open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Release() => _open.TrySetResult();

    public async Task WriteAsync(IReadOnlyList<AuditRecord> records, CancellationToken cancellationToken)
    {
        await _open.Task.WaitAsync(cancellationToken);
        foreach (var record in records) Records.Enqueue(record);
    }

    private static TaskCompletionSource Open()
    {
        var open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        open.SetResult();
        return open;
    }
}

/// <summary>The engine with an audit store in memory, a small queue and a short wait for it.</summary>
public sealed class AuditedEngineFixture : EngineFixture
{
    public RecordingAuditStore Store { get; } = new();

    protected override void Configure(WebApplicationBuilder builder)
    {
        builder.Configuration["Loyalty:Audit:QueueCapacity"] = "3";
        builder.Configuration["Loyalty:Audit:DurableWait"] = "00:00:00.200";
        builder.Services.AddSingleton<IAuditStore>(Store);
    }
}

public sealed class AuditTests(AuditedEngineFixture engine) : IClassFixture<AuditedEngineFixture>
{
    private static readonly Timestamp At = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-1));

    private AuditRecord[] Of(string method, Func<AuditRecord, bool> match) => [.. engine.Store.Records.Where(r => r.Method == method && match(r))];

    [Fact]
    public async Task Admin_calls_and_redemptions_are_recorded_with_who_what_and_outcome_and_postings_are_not()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var member = "au-" + run;
        var ops = engine.ChannelFor(engine.Token("ops-" + run, [LoyaltyClaims.Admin]));
        var admin = new Admin.AdminClient(ops);
        await admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = member, Premium = true });
        await admin.IssueCardAsync(new IssueCardRequest { CardId = "card-" + member, MemberId = member });
        await admin.UpsertPartnerAsync(new Partner { PartnerId = "shop-" + run, Name = "Shop" });
        var processing = new Processing.ProcessingClient(engine.ChannelFor(engine.Token("proc-" + run, [LoyaltyClaims.Processor])));
        await processing.CaptureAsync(new CaptureRequest { TransactionId = "c-" + run, CardId = "card-" + member, AmountMinor = 100_000, Mcc = 5411, MerchantId = "m", OccurredAt = At });
        var app = new Balances.BalancesClient(engine.ChannelFor(engine.Token(member, [LoyaltyClaims.App])));
        await app.RedeemAsync(new RedeemRequest { TransactionId = "r-" + run, MemberId = member, PartnerId = "shop-" + run, AmountMinor = 500 });
        var overdraw = await Assert.ThrowsAsync<RpcException>(() => app.RedeemAsync(new RedeemRequest { TransactionId = "r2-" + run, MemberId = member, PartnerId = "shop-" + run, AmountMinor = 1_000_000 }).ResponseAsync);
        await admin.BlockCardAsync(new BlockCardRequest { CardId = "card-" + member });

        var enroll = Assert.Single(Of("Admin/EnrollMember", r => r.MemberId == member));
        Assert.Equal(("ops-" + run, "admin", "OK"), (enroll.Subject, enroll.Roles, enroll.Outcome));
        Assert.Contains("premium=True", enroll.Detail, StringComparison.Ordinal);
        Assert.Single(Of("Admin/IssueCard", r => r.CardId == "card-" + member && r.MemberId == member && r.Outcome == "OK"));
        var block = Assert.Single(Of("Admin/BlockCard", r => r.CardId == "card-" + member));
        Assert.Equal((member, "OK"), (block.MemberId, block.Outcome));
        var redeem = Assert.Single(Of("Balances/Redeem", r => r.TransactionId == "r-" + run));
        Assert.Equal((member, "app", member, "shop-" + run, 500L, "OK"), (redeem.Subject, redeem.Roles, redeem.MemberId, redeem.PartnerId, redeem.AmountMinor!.Value, redeem.Outcome));
        Assert.Equal(AuditRecord.StatusName(overdraw.StatusCode), Assert.Single(Of("Balances/Redeem", r => r.TransactionId == "r2-" + run)).Outcome);
        Assert.DoesNotContain(engine.Store.Records, r => r.Method.StartsWith("Processing/", StringComparison.Ordinal));
        Assert.All(engine.Store.Records, r => Assert.True(r.At > DateTimeOffset.UtcNow.AddMinutes(-5)));
    }

    [Fact]
    public async Task Refused_audited_calls_are_recorded_too()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var (victim, intruder) = ("victim-" + run, "intruder-" + run);
        var admin = new Admin.AdminClient(engine.Channel);
        foreach (var member in new[] { victim, intruder }) await admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = member });
        await admin.UpsertPartnerAsync(new Partner { PartnerId = "p-" + run, Name = "P" });

        // Wrong role: refused by authorization, before the request is read.
        var app = engine.ChannelFor(engine.Token(intruder, [LoyaltyClaims.App]));
        await Assert.ThrowsAsync<RpcException>(() => new Admin.AdminClient(app).BlockCardAsync(new BlockCardRequest { CardId = "card-x" }).ResponseAsync);
        // Someone else's member: refused by the scope check, with the ids it asked for.
        await Assert.ThrowsAsync<RpcException>(() => new Balances.BalancesClient(app).RedeemAsync(new RedeemRequest
        {
            TransactionId = "steal-" + run, MemberId = victim, PartnerId = "p-" + run, AmountMinor = 100,
        }).ResponseAsync);
        // No token at all.
        await Assert.ThrowsAsync<RpcException>(() => new Admin.AdminClient(engine.ChannelFor(null)).SetProgramAsync(new LoyaltyGrains.Gateway.V1.Program()).ResponseAsync);

        await WaitForAsync(() => engine.Store.Records.Any(r => r.Method == "Admin/SetProgram" && r.Outcome == "UNAUTHENTICATED"));
        var block = Assert.Single(Of("Admin/BlockCard", r => r.Subject == intruder));
        Assert.Equal(("PERMISSION_DENIED", "app"), (block.Outcome, block.Roles));
        var steal = Assert.Single(Of("Balances/Redeem", r => r.TransactionId == "steal-" + run));
        Assert.Equal((intruder, victim, "PERMISSION_DENIED"), (steal.Subject, steal.MemberId, steal.Outcome));
    }

    [Fact]
    public async Task A_full_audit_queue_refuses_audited_calls_before_they_run_and_loses_no_record()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var grains = engine.Services.GetRequiredService<IGrainFactory>();
        var admin = new Admin.AdminClient(engine.Channel);
        engine.Store.Hold();
        try
        {
            // Three slots: these complete (each waits 200 ms for the store, then replies) and stay queued.
            for (var i = 0; i < 3; i++) await admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = $"q{i}-{run}" });
            var refused = await Assert.ThrowsAsync<RpcException>(() => admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = "q3-" + run }).ResponseAsync);
            Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
            Assert.False(await grains.MemberGrain("q3-" + run).IsEnrolled());
            // Calls that are not audited go on meanwhile.
            await new Balances.BalancesClient(engine.Channel).GetBalanceAsync(new GetBalanceRequest { MemberId = "q0-" + run });
        }
        finally
        {
            engine.Store.Release();
        }
        await WaitForAsync(() => Enumerable.Range(0, 3).All(i => engine.Store.Records.Any(r => r.MemberId == $"q{i}-{run}")));
        await admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = "q3-" + run });
        Assert.True(await grains.MemberGrain("q3-" + run).IsEnrolled());
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        for (var i = 0; i < 100 && !condition(); i++) await Task.Delay(50);
        Assert.True(condition());
    }
}
