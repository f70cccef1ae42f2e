using System.Collections;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace LoyaltyGrains.Domain;

/// <summary>
/// A map for the few items a member usually holds (one or two open purchases, one month, a handful of recent messages):
/// its entries in one array searched linearly, with a hash index only once it holds more than <see cref="IndexFrom"/>.
/// A one-entry <see cref="Dictionary{TKey,TValue}"/> costs ~200 B (object, buckets, entries); this costs ~40 B plus the
/// entry. Serialized as a JSON object, exactly as the dictionary it replaces, so stored snapshots read either way.
/// Removal moves the last entry into the hole: enumeration order is deterministic (a replay gives the same order) but
/// not insertion order.
/// </summary>
[JsonConverter(typeof(CompactDictionaryJsonConverterFactory))]
public sealed class CompactDictionary<TKey, TValue> : IReadOnlyDictionary<TKey, TValue> where TKey : notnull
{
    /// <summary>Up to this many entries a linear search over one array beats hashing and costs no index.</summary>
    public const int IndexFrom = 8;

    private static readonly EqualityComparer<TKey> KeyComparer = EqualityComparer<TKey>.Default;

    private KeyValuePair<TKey, TValue>[] _entries = [];
    private int _count;
    private Dictionary<TKey, int>? _index;

    public int Count => _count;

    public TValue this[TKey key]
    {
        get => TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"key '{key}' is not in the map");
        set
        {
            var at = IndexOf(key);
            if (at >= 0)
            {
                _entries[at] = new(key, value);
                return;
            }
            if (_count == _entries.Length) Array.Resize(ref _entries, _count == 0 ? 1 : _count * 2);
            _entries[_count] = new(key, value);
            _index?.Add(key, _count);
            _count++;
            if (_index is null && _count > IndexFrom) BuildIndex();
        }
    }

    public IEnumerable<TKey> Keys
    {
        get
        {
            for (var i = 0; i < _count; i++) yield return _entries[i].Key;
        }
    }

    public IEnumerable<TValue> Values
    {
        get
        {
            for (var i = 0; i < _count; i++) yield return _entries[i].Value;
        }
    }

    public bool ContainsKey(TKey key) => IndexOf(key) >= 0;

    public bool TryGetValue(TKey key, [MaybeNullWhen(false)] out TValue value)
    {
        var at = IndexOf(key);
        if (at < 0)
        {
            value = default;
            return false;
        }
        value = _entries[at].Value;
        return true;
    }

    public bool Remove(TKey key)
    {
        var at = IndexOf(key);
        if (at < 0) return false;
        var last = _count - 1;
        _index?.Remove(key);
        if (at != last)
        {
            _entries[at] = _entries[last];
            if (_index is not null) _index[_entries[at].Key] = at;
        }
        _entries[last] = default;
        _count = last;
        // Give memory back after a burst: a member pruned to a few items holds a few slots, not its peak.
        if (_count * 4 <= _entries.Length && _entries.Length > 4) Array.Resize(ref _entries, _entries.Length / 2);
        if (_count <= IndexFrom / 2) _index = null;
        return true;
    }

    public IEnumerator<KeyValuePair<TKey, TValue>> GetEnumerator()
    {
        for (var i = 0; i < _count; i++) yield return _entries[i];
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private int IndexOf(TKey key)
    {
        if (_index is not null) return _index.TryGetValue(key, out var at) ? at : -1;
        for (var i = 0; i < _count; i++)
        {
            if (KeyComparer.Equals(_entries[i].Key, key)) return i;
        }
        return -1;
    }

    private void BuildIndex()
    {
        _index = new Dictionary<TKey, int>(_count * 2, KeyComparer);
        for (var i = 0; i < _count; i++) _index[_entries[i].Key] = i;
    }
}

/// <summary>A set of the few ids a member usually holds (campaigns joined or activated, referrals credited); see <see cref="CompactDictionary{TKey,TValue}"/>.</summary>
[JsonConverter(typeof(CompactSetJsonConverter))]
public sealed class CompactSet : IReadOnlySet<string>
{
    private readonly CompactDictionary<string, bool> _items = new();

    public CompactSet()
    {
    }

    public CompactSet(IEnumerable<string> items)
    {
        foreach (var item in items) Add(item);
    }

    public int Count => _items.Count;

    public bool Add(string item)
    {
        if (_items.ContainsKey(item)) return false;
        _items[item] = true;
        return true;
    }

    public bool Remove(string item) => _items.Remove(item);

    public bool Contains(string item) => _items.ContainsKey(item);

    public IEnumerator<string> GetEnumerator() => _items.Keys.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public bool IsProperSubsetOf(IEnumerable<string> other) => new HashSet<string>(this, StringComparer.Ordinal).IsProperSubsetOf(other);

    public bool IsProperSupersetOf(IEnumerable<string> other) => new HashSet<string>(this, StringComparer.Ordinal).IsProperSupersetOf(other);

    public bool IsSubsetOf(IEnumerable<string> other) => new HashSet<string>(this, StringComparer.Ordinal).IsSubsetOf(other);

    public bool IsSupersetOf(IEnumerable<string> other) => other.All(Contains);

    public bool Overlaps(IEnumerable<string> other) => other.Any(Contains);

    public bool SetEquals(IEnumerable<string> other) => new HashSet<string>(this, StringComparer.Ordinal).SetEquals(other);
}

/// <summary>Writes a <see cref="CompactDictionary{TKey,TValue}"/> as a JSON object (string or integer keys), as a dictionary is written.</summary>
public sealed class CompactDictionaryJsonConverterFactory : JsonConverterFactory
{
    public override bool CanConvert(Type typeToConvert) => typeToConvert.IsGenericType && typeToConvert.GetGenericTypeDefinition() == typeof(CompactDictionary<,>);

    public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options)
    {
        var arguments = typeToConvert.GetGenericArguments();
        if (arguments[0] != typeof(string) && arguments[0] != typeof(int))
        {
            throw new NotSupportedException($"CompactDictionary keys are strings or integers, not {arguments[0].Name}");
        }
        return (JsonConverter)Activator.CreateInstance(typeof(Converter<,>).MakeGenericType(arguments))!;
    }

    private sealed class Converter<TKey, TValue> : JsonConverter<CompactDictionary<TKey, TValue>> where TKey : notnull
    {
        public override CompactDictionary<TKey, TValue> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType != JsonTokenType.StartObject) throw new JsonException($"expected a JSON object for {typeToConvert.Name}");
            var map = new CompactDictionary<TKey, TValue>();
            while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
            {
                var name = reader.GetString() ?? throw new JsonException("null key");
                var key = typeof(TKey) == typeof(int) ? (TKey)(object)int.Parse(name, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) : (TKey)(object)name;
                reader.Read();
                map[key] = JsonSerializer.Deserialize<TValue>(ref reader, options)!;
            }
            return map;
        }

        public override void Write(Utf8JsonWriter writer, CompactDictionary<TKey, TValue> value, JsonSerializerOptions options)
        {
            writer.WriteStartObject();
            foreach (var (key, item) in value)
            {
                writer.WritePropertyName(key is int number ? number.ToString(CultureInfo.InvariantCulture) : (string)(object)key);
                JsonSerializer.Serialize(writer, item, options);
            }
            writer.WriteEndObject();
        }
    }
}

/// <summary>Writes a <see cref="CompactSet"/> as a JSON array, as a hash set is written.</summary>
public sealed class CompactSetJsonConverter : JsonConverter<CompactSet>
{
    public override CompactSet Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        new(JsonSerializer.Deserialize<string[]>(ref reader, options) ?? []);

    public override void Write(Utf8JsonWriter writer, CompactSet value, JsonSerializerOptions options)
    {
        writer.WriteStartArray();
        foreach (var item in value) writer.WriteStringValue(item);
        writer.WriteEndArray();
    }
}
