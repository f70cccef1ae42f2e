using Npgsql;

namespace LoyaltyGrains.Tests.Durability;

/// <summary>Runs the operators' invariant check, loyalty.check_ledger(), and returns its violations.</summary>
public static class LedgerChecks
{
    public static async Task<List<(string MemberId, string Problem)>> ViolationsAsync(string connectionString)
    {
        var violations = new List<(string, string)>();
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT member_id, problem FROM loyalty.check_ledger()", connection);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) violations.Add((reader.GetString(0), reader.GetString(1)));
        return violations;
    }
}
