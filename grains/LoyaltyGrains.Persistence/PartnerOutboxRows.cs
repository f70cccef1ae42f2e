using LoyaltyGrains.Domain;
using Npgsql;
using NpgsqlTypes;

namespace LoyaltyGrains.Persistence;

/// <summary>
/// A ledger batch's partner events, as seven more array parameters of the batch's one INSERT: a CTE puts them in
/// loyalty.partner_outbox in the same implicit transaction as the rows, so an event commits exactly when its entry does
/// (and a recovered batch, found committed, already has its events). A batch without partner lines sends empty arrays.
/// Measured cost: docs/SETTLEMENT.md.
/// </summary>
internal sealed class PartnerOutboxRows
{
    private readonly List<PartnerShare> _shares = new(4);
    private readonly List<string> _partner = new(16), _member = new(16);
    private readonly List<long> _sequence = new(16), _accrued = new(16), _clawedBack = new(16), _redeemed = new(16);
    private readonly List<DateTime> _recordedAt = new(16);

    public NpgsqlParameter[] Parameters { get; }

    public PartnerOutboxRows()
    {
        Parameters =
        [
            new NpgsqlParameter<List<string>> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, TypedValue = _partner },
            new NpgsqlParameter<List<string>> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, TypedValue = _member },
            new NpgsqlParameter<List<long>> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint, TypedValue = _sequence },
            new NpgsqlParameter<List<DateTime>> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz, TypedValue = _recordedAt },
            new NpgsqlParameter<List<long>> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint, TypedValue = _accrued },
            new NpgsqlParameter<List<long>> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint, TypedValue = _clawedBack },
            new NpgsqlParameter<List<long>> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint, TypedValue = _redeemed },
        ];
    }

    /// <summary>The CTE, its parameters numbered from <paramref name="first"/>.</summary>
    public static string Cte(int first) => $"""
        events AS (
            INSERT INTO loyalty.partner_outbox (partner_id, member_id, sequence, recorded_at, accrued_minor, clawed_back_minor, redeemed_minor)
            SELECT * FROM unnest(${first}::text[], ${first + 1}::text[], ${first + 2}::bigint[], ${first + 3}::timestamptz[],
                                 ${first + 4}::bigint[], ${first + 5}::bigint[], ${first + 6}::bigint[]))
        """;

    public void Clear()
    {
        _partner.Clear();
        _member.Clear();
        _sequence.Clear();
        _recordedAt.Clear();
        _accrued.Clear();
        _clawedBack.Clear();
        _redeemed.Clear();
    }

    public void Add(LedgerEntry entry)
    {
        if (!PartnerShares.Counts(entry.Kind)) return;
        _shares.Clear();
        PartnerShares.Of(entry, _shares);
        foreach (var share in _shares)
        {
            _partner.Add(share.PartnerId);
            _member.Add(entry.MemberId);
            _sequence.Add(entry.Sequence);
            _recordedAt.Add(entry.RecordedAt.UtcDateTime);
            _accrued.Add(share.AccruedMinor);
            _clawedBack.Add(share.ClawedBackMinor);
            _redeemed.Add(share.RedeemedMinor);
        }
    }
}
