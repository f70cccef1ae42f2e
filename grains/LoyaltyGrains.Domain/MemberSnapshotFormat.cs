using System.Text.Json;

namespace LoyaltyGrains.Domain;

/// <summary>
/// How a member's projection is stored as a snapshot: JSON of <see cref="MemberState"/> with stable names. Version 1
/// (no version field) held dictionaries and a member id in every idempotency record; version 2 holds compact maps
/// written in the same JSON shape; version 3 adds to each idempotency record the purchase it was about (records without
/// it leave memory by age only). All three read. A snapshot that cannot be read (damaged, another member's, or written
/// by a newer engine) is no error: the caller rebuilds the member from the ledger, which is the truth.
/// </summary>
public static class MemberSnapshotFormat
{
    public const int Version = 3;

    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.General);

    public static byte[] Write(MemberState state)
    {
        state.FormatVersion = Version;
        return JsonSerializer.SerializeToUtf8Bytes(state, Options);
    }

    /// <summary>The member as the snapshot holds it, or null when the snapshot cannot be used (replay the ledger instead).</summary>
    public static MemberState? TryRead(ReadOnlySpan<byte> json, string memberId)
    {
        if (json.IsEmpty) return null;
        try
        {
            var state = JsonSerializer.Deserialize<MemberState>(json, Options);
            return state is not null && state.MemberId == memberId && state.FormatVersion <= Version && state.Sequence >= 0 ? state : null;
        }
        catch (JsonException)
        {
            return null;
        }
        catch (NotSupportedException)
        {
            return null;
        }
    }
}
