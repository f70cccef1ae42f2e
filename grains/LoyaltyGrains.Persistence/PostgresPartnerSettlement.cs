using LoyaltyGrains.Contracts;
using LoyaltyGrains.Grains.Settlement;
using Npgsql;

namespace LoyaltyGrains.Persistence;

/// <summary>
/// Settlement on PostgreSQL: the outbox the ledger's batch insert fills (loyalty.partner_outbox) and the partners' day
/// totals (loyalty.partner_payouts). Applying events is one statement that deletes them from the outbox and adds what
/// it deleted to the totals, so whatever is redelivered after a crash, or by two silos at once, counts once.
/// </summary>
public sealed class PostgresPartnerSettlement(string connectionString) : IPartnerSettlementStore, IAsyncDisposable
{
    private readonly NpgsqlDataSource _source = NpgsqlDataSource.Create(PostgresHosting.Tune(connectionString));

    public async Task<IReadOnlyList<PartnerEvent>> ReadUndeliveredAsync(int max, int queue, int queueCount, IReadOnlyCollection<long> skipEvents, CancellationToken cancellationToken)
    {
        await using var command = _source.CreateCommand($"""
            SELECT event_id, partner_id, recorded_at, accrued_minor, clawed_back_minor, redeemed_minor
              FROM loyalty.partner_outbox
             WHERE {PartnerStreams.QueueOfSql("partner_id", "$3")} = $2
               AND event_id <> ALL($4)
             ORDER BY event_id
             LIMIT $1
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = max });
        command.Parameters.Add(new NpgsqlParameter { Value = queue });
        command.Parameters.Add(new NpgsqlParameter { Value = queueCount });
        command.Parameters.Add(new NpgsqlParameter { Value = skipEvents.ToArray() });
        var events = new List<PartnerEvent>();
        try
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                events.Add(new PartnerEvent(reader.GetInt64(0), reader.GetString(1), reader.GetFieldValue<DateTime>(2),
                    reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5)));
            }
        }
        catch (Exception ex) when (PostgresFaults.RenewConnectionsIfUnavailable(ex, _source))
        {
            throw;
        }
        return events;
    }

    public async Task<int> ApplyAsync(string partnerId, IReadOnlyList<PartnerEvent> events, CancellationToken cancellationToken)
    {
        // One statement, one implicit transaction: the delete decides what is new, and only that is added.
        await using var command = _source.CreateCommand("""
            WITH gone AS (
                DELETE FROM loyalty.partner_outbox
                 WHERE event_id = ANY($2) AND partner_id = $1
                RETURNING (recorded_at AT TIME ZONE 'UTC')::date AS day, accrued_minor, clawed_back_minor, redeemed_minor),
            days AS (
                SELECT day, sum(accrued_minor) AS accrued_minor, sum(clawed_back_minor) AS clawed_back_minor,
                       sum(redeemed_minor) AS redeemed_minor, count(*) AS events
                  FROM gone GROUP BY day),
            applied AS (
                INSERT INTO loyalty.partner_payouts AS p (partner_id, day, accrued_minor, clawed_back_minor, redeemed_minor, events, updated_at)
                SELECT $1, day, accrued_minor, clawed_back_minor, redeemed_minor, events, now() FROM days
                ON CONFLICT (partner_id, day) DO UPDATE
                   SET accrued_minor = p.accrued_minor + excluded.accrued_minor,
                       clawed_back_minor = p.clawed_back_minor + excluded.clawed_back_minor,
                       redeemed_minor = p.redeemed_minor + excluded.redeemed_minor,
                       events = p.events + excluded.events,
                       updated_at = excluded.updated_at)
            SELECT coalesce(sum(events), 0)::integer FROM days
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = partnerId });
        command.Parameters.Add(new NpgsqlParameter { Value = events.Select(e => e.EventId).ToArray() });
        try
        {
            return (int)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
        catch (Exception ex) when (PostgresFaults.RenewConnectionsIfUnavailable(ex, _source))
        {
            throw;
        }
    }

    public async Task<IReadOnlyList<PayoutDay>> ReadPayoutsAsync(string partnerId, DateTime fromDay, DateTime toDay, CancellationToken cancellationToken)
    {
        await using var command = _source.CreateCommand("""
            SELECT day, accrued_minor, clawed_back_minor, redeemed_minor, events
              FROM loyalty.partner_payouts
             WHERE partner_id = $1 AND day >= $2 AND day < $3
             ORDER BY day
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = partnerId });
        command.Parameters.Add(new NpgsqlParameter { Value = DateOnly.FromDateTime(fromDay) });
        command.Parameters.Add(new NpgsqlParameter { Value = DateOnly.FromDateTime(toDay) });
        var days = new List<PayoutDay>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var day = reader.GetFieldValue<DateOnly>(0).ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc);
            days.Add(new PayoutDay(day, reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4)));
        }
        return days;
    }

    public async Task<(long Events, DateTime? OldestRecordedAtUtc)> UndeliveredAsync(string? partnerId, CancellationToken cancellationToken)
    {
        await using var command = _source.CreateCommand("""
            SELECT count(*), min(recorded_at) FROM loyalty.partner_outbox WHERE $1::text IS NULL OR partner_id = $1
            """);
        command.Parameters.Add(new NpgsqlParameter<string?> { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text, TypedValue = partnerId });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        return (reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetFieldValue<DateTime>(1));
    }

    public ValueTask DisposeAsync() => _source.DisposeAsync();
}
