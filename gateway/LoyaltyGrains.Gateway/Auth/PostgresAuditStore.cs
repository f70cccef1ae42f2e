using LoyaltyGrains.Persistence;

namespace LoyaltyGrains.Gateway.Auth;

/// <summary>The audit log's store in PostgreSQL mode: each record as a row of <see cref="PostgresAuditTable"/> (the SQL lives there).</summary>
public sealed class PostgresAuditStore(string connectionString) : IAuditStore, IAsyncDisposable
{
    private readonly PostgresAuditTable _table = new(connectionString);

    public Task WriteAsync(IReadOnlyList<AuditRecord> records, CancellationToken cancellationToken) =>
        _table.WriteAsync([.. records.Select(r => new AuditRow(r.At, r.Subject, r.Roles, r.Method, r.Outcome, r.MemberId, r.CardId, r.PartnerId,
            r.CampaignId, r.TransactionId, r.AmountMinor, r.Detail, r.Peer, AuditRecord.Node))], cancellationToken);

    public ValueTask DisposeAsync() => _table.DisposeAsync();
}
