using Grpc.Core;
using LoyaltyGrains.Gateway.Grpc;
using LoyaltyGrains.Persistence;
using LoyaltyGrains.Tests.Durability;
using Npgsql;

namespace LoyaltyGrains.Tests.Failover;

/// <summary>
/// Errors as the real PostgreSQL server raises them: "not here, not now" (retry on a fresh connection) is unavailable
/// and reaches a caller as UNAVAILABLE; an error of the statement itself is not, and stays what it is.
/// </summary>
public sealed class UnavailableClassificationTests
{
    [Theory]
    [InlineData("25006")] // read-only transaction: a standby, or a promoted node not opened for writes yet
    [InlineData("40001")] // serialization failure, also a recovery conflict on a standby
    [InlineData("40P01")] // deadlock detected
    [InlineData("57P01")] // admin shutdown
    [InlineData("57P02")] // crash shutdown
    [InlineData("57P03")] // cannot connect now: starting up, in recovery
    [InlineData("08006")] // connection failure
    [InlineData("53300")] // too many connections
    public async Task Not_here_not_now_errors_are_unavailable(string sqlState)
    {
        var error = await RaisedAsync(sqlState);
        Assert.Equal(sqlState, error.SqlState);
        Assert.True(PostgresFaults.IsUnavailable(error), $"{sqlState} should be unavailable");
        Assert.Equal(StatusCode.Unavailable, ErrorMappingInterceptor.StatusOf(error).StatusCode);
    }

    [Theory]
    [InlineData("23505")] // unique violation
    [InlineData("22012")] // division by zero
    [InlineData("42P01")] // undefined table
    [InlineData("25P02")] // in failed transaction: the statement's own transaction, not the server's state
    public async Task Errors_of_the_statement_itself_are_not_unavailable(string sqlState)
    {
        var error = await RaisedAsync(sqlState);
        Assert.False(PostgresFaults.IsUnavailable(error), $"{sqlState} should not be unavailable");
        Assert.Equal(StatusCode.Internal, ErrorMappingInterceptor.StatusOf(error).StatusCode);
    }

    [Fact]
    public async Task A_write_on_a_read_only_session_is_unavailable()
    {
        // Unpooled: the session setting must not go back to the pool, where other tests would inherit a read-only session.
        var unpooled = new NpgsqlConnectionStringBuilder(TestDatabase.ServerConnectionString()) { Pooling = false }.ConnectionString;
        await using var connection = new NpgsqlConnection(unpooled);
        await connection.OpenAsync();
        await using var readOnly = new NpgsqlCommand("SET default_transaction_read_only = on", connection);
        await readOnly.ExecuteNonQueryAsync();
        await using var write = new NpgsqlCommand("CREATE TEMP TABLE refused (x int)", connection);
        var error = await Assert.ThrowsAsync<PostgresException>(() => write.ExecuteNonQueryAsync());
        Assert.Equal(Contracts.Faults.ReadOnlySqlTransaction, error.SqlState);
        Assert.True(PostgresFaults.IsUnavailable(error));
    }

    [Fact]
    public async Task No_reachable_host_of_a_multi_host_string_is_unavailable()
    {
        // Ports nothing listens on (the discard and an unassigned one), refused at once on loopback.
        await using var connection = new NpgsqlConnection("Host=127.0.0.1:9,127.0.0.1:1;Username=none;Target Session Attributes=read-write;Timeout=2;Pooling=false");
        var error = await Assert.ThrowsAnyAsync<NpgsqlException>(() => connection.OpenAsync());
        Assert.True(PostgresFaults.IsUnavailable(error));
        Assert.Equal(StatusCode.Unavailable, ErrorMappingInterceptor.StatusOf(error).StatusCode);
    }

    /// <summary>The server raises an error with <paramref name="sqlState"/> (RAISE … USING ERRCODE) and Npgsql reports it.</summary>
    private static async Task<PostgresException> RaisedAsync(string sqlState)
    {
        await using var connection = new NpgsqlConnection(TestDatabase.ServerConnectionString());
        await connection.OpenAsync();
        await using var raise = new NpgsqlCommand($"DO $$ BEGIN RAISE EXCEPTION 'raised for the test' USING ERRCODE = '{sqlState}'; END $$", connection);
        return await Assert.ThrowsAsync<PostgresException>(() => raise.ExecuteNonQueryAsync());
    }
}
