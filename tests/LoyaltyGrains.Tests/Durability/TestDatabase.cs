using Npgsql;

namespace LoyaltyGrains.Tests.Durability;

/// <summary>
/// A fresh database on the test PostgreSQL server (scripts/test.sh starts one and sets LOYALTY_TEST_POSTGRES).
/// Tests that need PostgreSQL fail, never skip, when it is missing.
/// </summary>
public sealed class TestDatabase : IAsyncDisposable
{
    public const string Variable = "LOYALTY_TEST_POSTGRES";

    private readonly string _serverConnectionString;

    private TestDatabase(string serverConnectionString, string name, string connectionString)
    {
        _serverConnectionString = serverConnectionString;
        Name = name;
        ConnectionString = connectionString;
    }

    public string Name { get; }
    public string ConnectionString { get; }

    public static string ServerConnectionString() =>
        Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException($"{Variable} is not set: run the tests with scripts/test.sh, which starts a throwaway PostgreSQL");

    public static async Task<TestDatabase> CreateAsync(string prefix)
    {
        var server = ServerConnectionString();
        var name = $"{prefix}_{Guid.NewGuid():N}".ToLowerInvariant();
        await using (var connection = new NpgsqlConnection(server))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await create.ExecuteNonQueryAsync();
        }
        var builder = new NpgsqlConnectionStringBuilder(server) { Database = name };
        return new TestDatabase(server, name, builder.ConnectionString);
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(_serverConnectionString);
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{Name}\" WITH (FORCE)", connection);
        await drop.ExecuteNonQueryAsync();
    }
}
