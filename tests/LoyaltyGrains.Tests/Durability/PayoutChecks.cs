using Npgsql;

namespace LoyaltyGrains.Tests.Durability;

/// <summary>Runs the operators' settlement check, loyalty.check_payouts(), and returns its rows.</summary>
public static class PayoutChecks
{
    public static async Task<List<(string Partner, string Problem)>> ViolationsAsync(string connectionString)
    {
        var violations = new List<(string, string)>();
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT partner_id, day::text || ': ' || problem FROM loyalty.check_payouts()", connection);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) violations.Add((reader.GetString(0), reader.GetString(1)));
        return violations;
    }
}
