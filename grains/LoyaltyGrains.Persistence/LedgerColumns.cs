using System.Linq.Expressions;
using System.Reflection;
using LoyaltyGrains.Domain;
using Npgsql;
using NpgsqlTypes;

namespace LoyaltyGrains.Persistence;

/// <summary>
/// The one declaration of loyalty.ledger's columns: name, SQL type, and the <see cref="LedgerEntry"/> property each one
/// holds with its conversion. The batch insert (its column list and unnest array parameters), the writers' column
/// buffers and every reader derive from this table, in this order, so a column is added or changed in one place.
/// </summary>
public static class LedgerColumns
{
    internal static readonly LedgerColumn[] All =
    [
        Text("member_id", e => e.MemberId),
        Bigint("sequence", e => e.Sequence),
        Text("message_id", e => e.MessageId),
        new LedgerColumn<EntryKind, short>("kind", "smallint", NpgsqlDbType.Smallint, e => e.Kind, kind => (short)kind, (r, i) => (EntryKind)r.GetInt16(i)),
        Text("card_id", e => e.CardId),
        Text("purchase_id", e => e.PurchaseId),
        Bigint("amount_minor", e => e.AmountMinor),
        Bigint("pending_delta_minor", e => e.PendingDeltaMinor),
        Bigint("available_delta_minor", e => e.AvailableDeltaMinor),
        Bigint("pending_after_minor", e => e.PendingAfterMinor),
        Bigint("available_after_minor", e => e.AvailableAfterMinor),
        new LedgerColumn<AccrualLine[], string>("breakdown", "text", NpgsqlDbType.Text, e => e.Breakdown, BreakdownCodec.Encode, (r, i) => BreakdownCodec.Decode(r.GetString(i))),
        Integer("mcc", e => e.Mcc),
        Text("category", e => e.Category),
        Text("merchant_id", e => e.MerchantId),
        Text("currency", e => e.Currency),
        Text("partner_id", e => e.PartnerId),
        Timestamp("occurred_at", e => e.OccurredAt),
        Timestamp("recorded_at", e => e.RecordedAt),
        Bigint("fingerprint", e => e.Fingerprint),
        Integer("purchase_month", e => e.PurchaseMonth),
        Bigint("category_cap_delta_minor", e => e.CategoryCapDeltaMinor),
        Bigint("spend_delta_minor", e => e.SpendDeltaMinor),
        Timestamp("lot_expires_at", e => e.LotExpiresAt),
        Text("detail", e => e.Detail),
        // Derived from the breakdown when written (migration 0010), so SQL filters on columns, never on the JSON text.
        // NULL in rows an engine older than 0010 wrote during a rolling upgrade: SQL then reads the breakdown as jsonb.
        Derived("has_partner_line", e => BreakdownCodec.HasPartnerLine(e.Breakdown)),
        Derived("has_campaign_line", e => BreakdownCodec.HasCampaignLine(e.Breakdown)),
    ];

    /// <summary>The one-row insert (its own parameters $1..$n in column order): benches and tools that write a row by hand.</summary>
    public static NpgsqlCommand InsertOne(LedgerEntry entry, NpgsqlConnection connection, NpgsqlTransaction? transaction = null)
    {
        var command = new NpgsqlCommand(
            $"INSERT INTO loyalty.ledger ({Names()}) VALUES ({string.Join(", ", All.Select((column, i) => $"${i + 1}::{column.SqlType}"))})",
            connection, transaction);
        foreach (var column in All) command.Parameters.Add(column.ParameterOf(entry));
        return command;
    }

    /// <summary>Every column's name and SQL type, in table order (what the schema must have: checked by a test).</summary>
    public static IReadOnlyList<(string Name, string SqlType)> Declared => [.. All.Select(column => (column.Name, column.SqlType))];

    /// <summary>The column list, optionally qualified by a table alias: <c>l.member_id, l.sequence, …</c>.</summary>
    public static string Names(string alias = "") =>
        string.Join(", ", All.Select(column => alias.Length == 0 ? column.Name : $"{alias}.{column.Name}"));

    /// <summary>The batch statement's array parameter of a column: <c>$3::text[]</c> (parameters are numbered as the table).</summary>
    internal static string ArrayParameter(string name)
    {
        var index = Array.FindIndex(All, column => column.Name == name);
        if (index < 0) throw new ArgumentException($"loyalty.ledger has no column '{name}'", nameof(name));
        return $"${index + 1}::{All[index].SqlType}[]";
    }

    /// <summary>Every column's array parameter, in order: the body of <c>unnest(…)</c>.</summary>
    internal static string ArrayParameters() => string.Join(", ", All.Select(column => ArrayParameter(column.Name)));

    /// <summary>One row of a reader whose columns are <see cref="Names"/> in order.</summary>
    internal static LedgerEntry Read(NpgsqlDataReader reader)
    {
        // The entry is filled before anyone else sees it; its required members are all columns of the table.
        var entry = new LedgerEntry { MessageId = "", Kind = default };
        for (var i = 0; i < All.Length; i++) All[i].Read(reader, i, entry);
        return entry;
    }

    private static DerivedLedgerColumn<bool> Derived(string name, Func<LedgerEntry, bool> value) =>
        new(name, "boolean", NpgsqlDbType.Boolean, value);

    private static LedgerColumn<string, string> Text(string name, Expression<Func<LedgerEntry, string>> property) =>
        new(name, "text", NpgsqlDbType.Text, property, value => value, (r, i) => r.GetString(i));

    private static LedgerColumn<long, long> Bigint(string name, Expression<Func<LedgerEntry, long>> property) =>
        new(name, "bigint", NpgsqlDbType.Bigint, property, value => value, (r, i) => r.GetInt64(i));

    private static LedgerColumn<int, int> Integer(string name, Expression<Func<LedgerEntry, int>> property) =>
        new(name, "integer", NpgsqlDbType.Integer, property, value => value, (r, i) => r.GetInt32(i));

    // Npgsql writes timestamptz from UTC DateTime; read back as DateTimeOffset at offset 0.
    private static LedgerColumn<DateTimeOffset, DateTime> Timestamp(string name, Expression<Func<LedgerEntry, DateTimeOffset>> property) =>
        new(name, "timestamptz", NpgsqlDbType.TimestampTz, property, value => value.UtcDateTime, (r, i) => r.GetFieldValue<DateTimeOffset>(i));
}

/// <summary>One column of loyalty.ledger: its name and SQL type, and how a writer buffers it and a reader fills it.</summary>
internal abstract class LedgerColumn(string name, string sqlType)
{
    public string Name { get; } = name;

    public string SqlType { get; } = sqlType;

    /// <summary>A writer's reusable buffer for this column's values in one batch: one array parameter.</summary>
    public abstract ILedgerColumnBuffer NewBuffer();

    /// <summary>Sets the entry's property from the reader's column at <paramref name="ordinal"/>.</summary>
    public abstract void Read(NpgsqlDataReader reader, int ordinal, LedgerEntry entry);

    /// <summary>This column's value of one entry, as a parameter.</summary>
    public abstract NpgsqlParameter ParameterOf(LedgerEntry entry);
}

internal interface ILedgerColumnBuffer
{
    NpgsqlParameter Parameter { get; }

    void Clear();

    void Add(LedgerEntry entry);
}

/// <summary>A column holding property <typeparamref name="TValue"/> as database type <typeparamref name="TDb"/>.</summary>
internal sealed class LedgerColumn<TValue, TDb> : LedgerColumn
{
    private readonly NpgsqlDbType _type;
    private readonly Func<LedgerEntry, TValue> _get;
    private readonly Action<LedgerEntry, TValue> _set;
    private readonly Func<TValue, TDb> _toDb;
    private readonly Func<NpgsqlDataReader, int, TValue> _read;

    public LedgerColumn(string name, string sqlType, NpgsqlDbType type, Expression<Func<LedgerEntry, TValue>> property,
        Func<TValue, TDb> toDb, Func<NpgsqlDataReader, int, TValue> read) : base(name, sqlType)
    {
        var info = property.Body is MemberExpression { Member: PropertyInfo p } ? p
            : throw new ArgumentException($"column '{name}': expected a property of LedgerEntry, got {property}", nameof(property));
        _type = type;
        _get = info.GetMethod!.CreateDelegate<Func<LedgerEntry, TValue>>();
        // The init accessor, called only by Read on an entry not yet handed out (a reader builds each entry in place).
        _set = info.SetMethod!.CreateDelegate<Action<LedgerEntry, TValue>>();
        _toDb = toDb;
        _read = read;
    }

    public override ILedgerColumnBuffer NewBuffer() => new Buffer(this);

    public override void Read(NpgsqlDataReader reader, int ordinal, LedgerEntry entry) => _set(entry, _read(reader, ordinal));

    public override NpgsqlParameter ParameterOf(LedgerEntry entry) => new NpgsqlParameter<TDb> { NpgsqlDbType = _type, TypedValue = _toDb(_get(entry)) };

    private sealed class Buffer(LedgerColumn<TValue, TDb> column) : ILedgerColumnBuffer
    {
        private readonly List<TDb> _values = new(256);

        public NpgsqlParameter Parameter { get; } = new NpgsqlParameter<List<TDb>> { NpgsqlDbType = NpgsqlDbType.Array | column._type };

        public void Clear()
        {
            _values.Clear();
            ((NpgsqlParameter<List<TDb>>)Parameter).TypedValue = _values;
        }

        public void Add(LedgerEntry entry) => _values.Add(column._toDb(column._get(entry)));
    }
}

/// <summary>
/// A column computed from the entry when it is written (a fact about its breakdown that SQL filters on); the entry does
/// not hold it, so a reader skips it.
/// </summary>
internal sealed class DerivedLedgerColumn<TDb>(string name, string sqlType, NpgsqlDbType type, Func<LedgerEntry, TDb> value) : LedgerColumn(name, sqlType)
{
    private readonly NpgsqlDbType _type = type;
    private readonly Func<LedgerEntry, TDb> _value = value;

    public override ILedgerColumnBuffer NewBuffer() => new Buffer(this);

    public override void Read(NpgsqlDataReader reader, int ordinal, LedgerEntry entry)
    {
    }

    public override NpgsqlParameter ParameterOf(LedgerEntry entry) => new NpgsqlParameter<TDb> { NpgsqlDbType = _type, TypedValue = _value(entry) };

    private sealed class Buffer(DerivedLedgerColumn<TDb> column) : ILedgerColumnBuffer
    {
        private readonly List<TDb> _values = new(256);

        public NpgsqlParameter Parameter { get; } = new NpgsqlParameter<List<TDb>> { NpgsqlDbType = NpgsqlDbType.Array | column._type };

        public void Clear()
        {
            _values.Clear();
            ((NpgsqlParameter<List<TDb>>)Parameter).TypedValue = _values;
        }

        public void Add(LedgerEntry entry) => _values.Add(column._value(entry));
    }
}
