using Npgsql;
using NpgsqlTypes;

namespace LoyaltyGrains.Persistence;

/// <summary>One row of loyalty.audit (migration 0006): who called what, with what outcome, from where.</summary>
public readonly record struct AuditRow(
    DateTimeOffset At, string Subject, string Roles, string Method, string Outcome, string MemberId, string CardId, string PartnerId,
    string CampaignId, string TransactionId, long? AmountMinor, string Detail, string Peer, string Node);

/// <summary>The loyalty.audit table: one multi-row INSERT per batch, which is its own transaction (stored whole or not at all).</summary>
public sealed class PostgresAuditTable(string connectionString) : IAsyncDisposable
{
    private const string Insert =
        """
        INSERT INTO loyalty.audit (at, subject, roles, method, outcome, member_id, card_id, partner_id, campaign_id, transaction_id, amount_minor, detail, peer, node)
        SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                             $10::text[], $11::bigint[], $12::text[], $13::text[], $14::text[])
        """;

    private readonly NpgsqlDataSource _source = NpgsqlDataSource.Create(
        new NpgsqlConnectionStringBuilder(connectionString) { MaxPoolSize = 4, ApplicationName = "loyalty-audit" }.ConnectionString);

    public async Task WriteAsync(IReadOnlyList<AuditRow> rows, CancellationToken cancellationToken)
    {
        await using var command = _source.CreateCommand(Insert);
        Add(command, NpgsqlDbType.TimestampTz, rows.Select(r => r.At.UtcDateTime).ToArray());
        Add(command, NpgsqlDbType.Text, rows.Select(r => r.Subject).ToArray());
        Add(command, NpgsqlDbType.Text, rows.Select(r => r.Roles).ToArray());
        Add(command, NpgsqlDbType.Text, rows.Select(r => r.Method).ToArray());
        Add(command, NpgsqlDbType.Text, rows.Select(r => r.Outcome).ToArray());
        Add(command, NpgsqlDbType.Text, rows.Select(r => r.MemberId).ToArray());
        Add(command, NpgsqlDbType.Text, rows.Select(r => r.CardId).ToArray());
        Add(command, NpgsqlDbType.Text, rows.Select(r => r.PartnerId).ToArray());
        Add(command, NpgsqlDbType.Text, rows.Select(r => r.CampaignId).ToArray());
        Add(command, NpgsqlDbType.Text, rows.Select(r => r.TransactionId).ToArray());
        Add(command, NpgsqlDbType.Bigint, rows.Select(r => r.AmountMinor).ToArray());
        Add(command, NpgsqlDbType.Text, rows.Select(r => r.Detail).ToArray());
        Add(command, NpgsqlDbType.Text, rows.Select(r => r.Peer).ToArray());
        Add(command, NpgsqlDbType.Text, rows.Select(r => r.Node).ToArray());
        try
        {
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (Exception ex) when (PostgresFaults.RenewConnectionsIfUnavailable(ex, _source))
        {
            // Never entered: the filter drops dead pooled connections (a failed-over primary) and the caller retries.
        }
    }

    private static void Add<T>(NpgsqlCommand command, NpgsqlDbType type, T[] values) =>
        command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | type, Value = values });

    public ValueTask DisposeAsync() => _source.DisposeAsync();
}
