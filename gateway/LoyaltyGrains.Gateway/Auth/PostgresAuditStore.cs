using Npgsql;
using NpgsqlTypes;

namespace LoyaltyGrains.Gateway.Auth;

/// <summary>The loyalty.audit table (migration 0006): one multi-row INSERT per batch, in its own transaction.</summary>
public sealed class PostgresAuditStore(string connectionString) : IAuditStore, IAsyncDisposable
{
    private const string Insert =
        """
        INSERT INTO loyalty.audit (at, subject, roles, method, outcome, member_id, card_id, partner_id, campaign_id, transaction_id, amount_minor, detail, peer, node)
        SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                             $10::text[], $11::bigint[], $12::text[], $13::text[], $14::text[])
        """;

    private readonly NpgsqlDataSource _source = NpgsqlDataSource.Create(
        new NpgsqlConnectionStringBuilder(connectionString) { MaxPoolSize = 4, ApplicationName = "loyalty-audit" }.ConnectionString);

    public async Task WriteAsync(IReadOnlyList<AuditRecord> records, CancellationToken cancellationToken)
    {
        await using var command = _source.CreateCommand(Insert);
        Add(command, NpgsqlDbType.TimestampTz, records.Select(r => r.At.UtcDateTime).ToArray());
        Add(command, NpgsqlDbType.Text, records.Select(r => r.Subject).ToArray());
        Add(command, NpgsqlDbType.Text, records.Select(r => r.Roles).ToArray());
        Add(command, NpgsqlDbType.Text, records.Select(r => r.Method).ToArray());
        Add(command, NpgsqlDbType.Text, records.Select(r => r.Outcome).ToArray());
        Add(command, NpgsqlDbType.Text, records.Select(r => r.MemberId).ToArray());
        Add(command, NpgsqlDbType.Text, records.Select(r => r.CardId).ToArray());
        Add(command, NpgsqlDbType.Text, records.Select(r => r.PartnerId).ToArray());
        Add(command, NpgsqlDbType.Text, records.Select(r => r.CampaignId).ToArray());
        Add(command, NpgsqlDbType.Text, records.Select(r => r.TransactionId).ToArray());
        Add(command, NpgsqlDbType.Bigint, records.Select(r => r.AmountMinor).ToArray());
        Add(command, NpgsqlDbType.Text, records.Select(r => r.Detail).ToArray());
        Add(command, NpgsqlDbType.Text, records.Select(r => r.Peer).ToArray());
        Add(command, NpgsqlDbType.Text, records.Select(_ => AuditRecord.Node).ToArray());
        // A single statement is its own transaction: the batch is stored whole or not at all.
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static void Add<T>(NpgsqlCommand command, NpgsqlDbType type, T[] values) =>
        command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | type, Value = values });

    public ValueTask DisposeAsync() => _source.DisposeAsync();
}
