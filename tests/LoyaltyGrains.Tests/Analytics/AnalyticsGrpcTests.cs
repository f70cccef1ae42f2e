using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LoyaltyGrains.Analytics;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Gateway.Auth;
using LoyaltyGrains.Gateway.Grpc;
using LoyaltyGrains.Gateway.V1;
using LoyaltyGrains.Tests.Api;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace LoyaltyGrains.Tests.Analytics;

/// <summary>
/// The Analytics service over a real gRPC channel: who may call it (admin and analyst only; an analyst nothing else),
/// bad requests refused naming the field, in-memory mode refused, and in PostgreSQL mode the figures and the replay.
/// </summary>
public sealed class AnalyticsGrpcTests(EngineFixture engine) : IClassFixture<EngineFixture>
{
    private static readonly Timestamp From = Timestamp.FromDateTimeOffset(StatsTests.At(11, 1, 0));
    private static readonly Timestamp To = Timestamp.FromDateTimeOffset(StatsTests.At(10, 20, 0));

    private V1Client Client(params string[] roles) =>
        new(engine.ChannelFor(roles.Length == 0 ? null : engine.Token("analytics-test", roles, roles.Contains(LoyaltyClaims.Partner) ? "p1" : null)));

    private sealed class V1Client(Grpc.Net.Client.GrpcChannel channel)
    {
        public Gateway.V1.Analytics.AnalyticsClient Analytics { get; } = new(channel);
        public Admin.AdminClient Admin { get; } = new(channel);
    }

    [Theory]
    [InlineData("admin", "FailedPrecondition")]
    [InlineData("analyst", "FailedPrecondition")]
    [InlineData("app", "PermissionDenied")]
    [InlineData("processor", "PermissionDenied")]
    [InlineData("partner", "PermissionDenied")]
    [InlineData("", "Unauthenticated")]
    public async Task Only_admins_and_analysts_get_past_access_control_and_in_memory_mode_has_no_ledger_to_read(string role, string expected)
    {
        var client = Client(role.Length == 0 ? [] : [role]);
        var stats = await Assert.ThrowsAsync<RpcException>(() => client.Analytics.GetProgramStatsAsync(new ProgramStatsRequest { From = From, To = To }).ResponseAsync);
        Assert.Equal(expected, stats.StatusCode.ToString());
        var replay = await Assert.ThrowsAsync<RpcException>(() => client.Analytics.ReplayProgramAsync(new ReplayProgramRequest
        {
            Candidate = ProtoMapping.ToProto(ProgramConfig.Default), From = From, To = To,
        }).ResponseAsync);
        Assert.Equal(expected, replay.StatusCode.ToString());
    }

    [Fact]
    public async Task An_analyst_may_not_call_admin_methods()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => Client(LoyaltyClaims.Analyst).Admin.GetProgramAsync(new GetProgramRequest()).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
    }

    [Fact]
    public async Task Bad_requests_are_refused_naming_the_field_before_anything_runs()
    {
        var client = Client(LoyaltyClaims.Analyst);
        var backwards = await Assert.ThrowsAsync<RpcException>(() => client.Analytics.GetProgramStatsAsync(new ProgramStatsRequest { From = To, To = From }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, backwards.StatusCode);
        Assert.StartsWith("to:", backwards.Status.Detail, StringComparison.Ordinal);
        var noCandidate = await Assert.ThrowsAsync<RpcException>(() => client.Analytics.ReplayProgramAsync(new ReplayProgramRequest { From = From, To = To }).ResponseAsync);
        Assert.Equal((StatusCode.InvalidArgument, true), (noCandidate.StatusCode, noCandidate.Status.Detail.StartsWith("candidate:", StringComparison.Ordinal)));
        var badCandidate = ProtoMapping.ToProto(ProgramConfig.Default);
        badCandidate.Tiers.Clear();
        var invalid = await Assert.ThrowsAsync<RpcException>(() => client.Analytics.ReplayProgramAsync(new ReplayProgramRequest { Candidate = badCandidate, From = From, To = To }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, invalid.StatusCode);
        Assert.Contains("program.tiers:", invalid.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task In_postgresql_mode_an_analyst_gets_the_figures_and_a_replay_of_the_programme_in_force_changes_nothing()
    {
        await using var ledger = await StatsTests.HandLedgerAsync();
        var durable = new LedgerEngine(ledger.Database.ConnectionString);
        await durable.InitializeAsync();
        try
        {
            var client = new Gateway.V1.Analytics.AnalyticsClient(durable.ChannelFor(durable.Token("analyst", [LoyaltyClaims.Analyst])));
            var stats = await client.GetProgramStatsAsync(new ProgramStatsRequest { From = From, To = To, Category = "supermarkets" });
            Assert.Equal((2L, 3L, 3_400L), (stats.Figures.ActiveMembers, stats.Figures.Purchases, stats.Figures.CashbackMinor));
            Assert.Equal("2026-11", Assert.Single(stats.Cohorts, c => c.MonthsSinceEnrolment == 1).Cohort);
            var replay = await client.ReplayProgramAsync(new ReplayProgramRequest { Candidate = ProtoMapping.ToProto(ProgramConfig.Default), From = From, To = To });
            Assert.Equal((5L, 4_800L, 4_800L, 0L), (replay.Purchases, replay.ActualMinor, replay.CandidateMinor, replay.DeltaMinor));
            Assert.Equal(3, replay.MostAffected.Count);
        }
        finally
        {
            await durable.DisposeAsync();
        }
    }

    /// <summary>The embedded engine with analytics pointed at a PostgreSQL ledger (the grains stay in memory: analytics read only the database).</summary>
    private sealed class LedgerEngine(string connectionString) : EngineFixture
    {
        protected override void Configure(WebApplicationBuilder builder) => builder.Services.AddSingleton(new AnalyticsDatabase(connectionString));
    }
}
