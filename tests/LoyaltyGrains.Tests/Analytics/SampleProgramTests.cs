using Google.Protobuf;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Gateway.Grpc;

namespace LoyaltyGrains.Tests.Analytics;

/// <summary>The programme files under docs/samples read as SetProgram documents, are valid, and say what their names say.</summary>
public sealed class SampleProgramTests
{
    private static ProgramConfig Read(string name)
    {
        var folder = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(folder, "LoyaltyGrains.sln"))) folder = Path.GetDirectoryName(folder) ?? throw new FileNotFoundException("repository root not found");
        var json = File.ReadAllText(Path.Combine(folder, "docs", "samples", name));
        var program = ProtoMapping.ToDomain(new JsonParser(JsonParser.Settings.Default.WithIgnoreUnknownFields(false)).Parse<Gateway.V1.Program>(json));
        Assert.Empty(program.Validate(MccCatalogue.Default));
        return program;
    }

    [Fact]
    public void The_default_programme_file_is_the_engines_default_programme()
    {
        Assert.Equal(ProtoMapping.ToProto(ProgramConfig.Default), ProtoMapping.ToProto(Read("program-default.json")));
    }

    [Fact]
    public void The_candidate_changes_only_supermarkets_to_three_percent_and_gives_fuel_seven()
    {
        var candidate = ProtoMapping.ToProto(Read("candidate-supermarkets-3-fuel-7.json"));
        var expected = ProtoMapping.ToProto(ProgramConfig.Default);
        expected.CategoryRateOverridesBps["supermarkets"] = 300;
        expected.CategoryRateOverridesBps["fuel"] = 700;
        Assert.Equal(expected, candidate);
    }
}
