using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace LoyaltyGrains.Grains.Settlement;

/// <summary>
/// Names of the partner-event stream and how partners are spread over its queues. A partner's events travel on the
/// stream <c>(Namespace, partner id)</c> of the provider <see cref="ProviderName"/>; the partner grain subscribes
/// implicitly. The queue of a partner is a hash of its id that C# and SQL compute alike (the first 32 bits of MD5 of the
/// UTF-8 id), so the queue reader can select its partners' rows in the outbox table.
/// </summary>
public static class PartnerStreams
{
    public const string ProviderName = "partner-settlement";
    public const string Namespace = "partner-events";

    /// <summary>Outbox queues: each is read by one pulling agent, on whichever silo the balancer gives it to.</summary>
    public const int QueueCountDefault = 4;

    /// <summary>The queue (0..count-1) of a partner.</summary>
    public static int QueueOf(string partnerId, int queueCount)
    {
        Span<byte> hash = stackalloc byte[MD5.HashSizeInBytes];
        // A spread, not a security measure: MD5 only because PostgreSQL computes it built in.
#pragma warning disable CA5351
        MD5.HashData(Encoding.UTF8.GetBytes(partnerId), hash);
#pragma warning restore CA5351
        return (int)((BinaryPrimitives.ReadUInt32BigEndian(hash) & 0x7fff_ffffu) % (uint)queueCount);
    }

    /// <summary>The same as <see cref="QueueOf"/>, in SQL over a text column (PostgreSQL's md5 hashes the UTF-8 bytes).</summary>
    public static string QueueOfSql(string column, string queueCountParameter) =>
        $"((('x' || substr(md5({column}), 1, 8))::bit(32)::integer & 2147483647) % {queueCountParameter})";
}
