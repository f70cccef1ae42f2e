using System.Text.Json;
using System.Text.Json.Nodes;
using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Tests.Domain;

/// <summary>
/// The member's compact in-memory layout and its snapshot format: snapshots written before it still read into the same
/// member, a snapshot that cannot be read is reported so the member is rebuilt from its ledger, and the compact map
/// behaves as the dictionary it replaced at every size.
/// </summary>
public sealed class MemberSnapshotTests
{
    private static readonly ProgramHistory Programs = ProgramHistory.Of(ProgramConfig.Default);
    private static readonly DateTimeOffset T0 = new(2026, 11, 20, 9, 0, 0, TimeSpan.Zero);
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.General);

    /// <summary>
    /// A snapshot as the engine wrote it before the compact layout (dictionaries, no format version, the member id in
    /// every idempotency record), taken from that engine after exactly the messages of <see cref="SameMessages"/>.
    /// </summary>
    private const string SnapshotBeforeCompactLayout = """
{"MemberId":"old","Enrolled":true,"Premium":true,"TierId":"standard","ReferredBy":"","EnrolledAt":"2026-11-20T09:00:00+00:00","Sequence":10,"AvailableMinor":6900,"PendingMinor":750,"Purchases":{"a1":{"PurchaseId":"a1","CardId":"card-1","Mcc":5411,"Category":"supermarkets","MerchantId":"shop","Currency":"RUB","OccurredAt":"2026-11-20T09:00:00+00:00","Month":202611,"State":2,"AuthorizedMinor":100000,"RemainingAuthorizedMinor":0,"AuthorizedLines":[],"PendingLines":[],"CategoryReservedMinor":4400,"CaptureId":"c1","CapturedMinor":90000,"CapturedLines":[{"Rule":"base","AmountMinor":1350,"RateBps":150,"PartnerId":"","IsCategoryLine":false},{"Rule":"category:supermarkets","AmountMinor":4950,"RateBps":550,"PartnerId":"","IsCategoryLine":true}],"RefundedMinor":10000,"ClawedLines":[{"Rule":"base","AmountMinor":150,"RateBps":150,"PartnerId":"","IsCategoryLine":false},{"Rule":"category:supermarkets","AmountMinor":550,"RateBps":550,"PartnerId":"","IsCategoryLine":true}],"CapturedAt":"2026-11-20T11:00:00+00:00"},"a2":{"PurchaseId":"a2","CardId":"card-1","Mcc":5812,"Category":"restaurants","MerchantId":"cafe","Currency":"RUB","OccurredAt":"2026-11-20T10:00:00+00:00","Month":202611,"State":1,"AuthorizedMinor":50000,"RemainingAuthorizedMinor":50000,"AuthorizedLines":[{"Rule":"base","AmountMinor":750,"RateBps":150,"PartnerId":"","IsCategoryLine":false}],"PendingLines":[{"Rule":"base","AmountMinor":750,"RateBps":150,"PartnerId":"","IsCategoryLine":false}],"CategoryReservedMinor":0,"CaptureId":"","CapturedMinor":0,"CapturedLines":[],"RefundedMinor":0,"ClawedLines":[],"CapturedAt":"0001-01-01T00:00:00+00:00"},"f1":{"PurchaseId":"f1","CardId":"card-1","Mcc":5411,"Category":"supermarkets","MerchantId":"shop","Currency":"RUB","OccurredAt":"2026-11-20T12:00:00+00:00","Month":202611,"State":2,"AuthorizedMinor":0,"RemainingAuthorizedMinor":0,"AuthorizedLines":[],"PendingLines":[],"CategoryReservedMinor":1100,"CaptureId":"f1","CapturedMinor":20000,"CapturedLines":[{"Rule":"base","AmountMinor":300,"RateBps":150,"PartnerId":"","IsCategoryLine":false},{"Rule":"category:supermarkets","AmountMinor":1100,"RateBps":550,"PartnerId":"","IsCategoryLine":true}],"RefundedMinor":0,"ClawedLines":[{"Rule":"base","AmountMinor":0,"RateBps":150,"PartnerId":"","IsCategoryLine":false},{"Rule":"category:supermarkets","AmountMinor":0,"RateBps":550,"PartnerId":"","IsCategoryLine":true}],"CapturedAt":"2026-11-20T12:00:00+00:00"}},"CaptureToPurchase":{"c1":"a1","f1":"f1"},"Months":{"202611":{"TierId":"silver","ChosenCategories":["supermarkets"],"CategoryCapUsedMinor":5500,"CapturedSpendMinor":100000}},"ParkedReversals":{"never":[{"TransactionId":"v1","CardId":"card-1","AmountMinor":0,"RecordedAt":"2026-11-20T12:00:00+00:00"}]},"Processed":{"a1":{"Fingerprint":-9077420776637413891,"Sequence":4,"RecordedAt":"2026-11-20T09:00:00+00:00","MemberId":"old","CardId":"card-1","AccruedMinor":7000,"PendingAfterMinor":7000,"AvailableAfterMinor":0,"Breakdown":[{"Rule":"base","AmountMinor":1500,"RateBps":150,"PartnerId":"","IsCategoryLine":false},{"Rule":"category:supermarkets","AmountMinor":5500,"RateBps":550,"PartnerId":"","IsCategoryLine":true}]},"a2":{"Fingerprint":2913186977972560424,"Sequence":5,"RecordedAt":"2026-11-20T10:00:00+00:00","MemberId":"old","CardId":"card-1","AccruedMinor":750,"PendingAfterMinor":7750,"AvailableAfterMinor":0,"Breakdown":[{"Rule":"base","AmountMinor":750,"RateBps":150,"PartnerId":"","IsCategoryLine":false}]},"c1":{"Fingerprint":5704059385356606914,"Sequence":6,"RecordedAt":"2026-11-20T11:00:00+00:00","MemberId":"old","CardId":"card-1","AccruedMinor":6300,"PendingAfterMinor":750,"AvailableAfterMinor":6300,"Breakdown":[{"Rule":"base","AmountMinor":1350,"RateBps":150,"PartnerId":"","IsCategoryLine":false},{"Rule":"category:supermarkets","AmountMinor":4950,"RateBps":550,"PartnerId":"","IsCategoryLine":true}]},"f1":{"Fingerprint":-5734885622681087827,"Sequence":7,"RecordedAt":"2026-11-20T12:00:00+00:00","MemberId":"old","CardId":"card-1","AccruedMinor":1400,"PendingAfterMinor":750,"AvailableAfterMinor":7700,"Breakdown":[{"Rule":"base","AmountMinor":300,"RateBps":150,"PartnerId":"","IsCategoryLine":false},{"Rule":"category:supermarkets","AmountMinor":1100,"RateBps":550,"PartnerId":"","IsCategoryLine":true}]},"v1":{"Fingerprint":-7700211894088913710,"Sequence":8,"RecordedAt":"2026-11-20T12:00:00+00:00","MemberId":"old","CardId":"card-1","AccruedMinor":0,"PendingAfterMinor":750,"AvailableAfterMinor":7700,"Breakdown":[]},"r1":{"Fingerprint":1868469140566419545,"Sequence":9,"RecordedAt":"2026-11-20T13:00:00+00:00","MemberId":"old","CardId":"card-1","AccruedMinor":-700,"PendingAfterMinor":750,"AvailableAfterMinor":7000,"Breakdown":[{"Rule":"base","AmountMinor":-150,"RateBps":150,"PartnerId":"","IsCategoryLine":false},{"Rule":"category:supermarkets","AmountMinor":-550,"RateBps":550,"PartnerId":"","IsCategoryLine":true}]},"d1":{"Fingerprint":-9194734365888203881,"Sequence":10,"RecordedAt":"2026-11-20T14:00:00+00:00","MemberId":"old","CardId":"","AccruedMinor":-100,"PendingAfterMinor":750,"AvailableAfterMinor":6900,"Breakdown":[{"Rule":"redeem","AmountMinor":-100,"RateBps":0,"PartnerId":"partner-1","IsCategoryLine":false}]}},"Lots":[{"ExpiresAt":"2027-11-20T21:00:00+00:00","AmountMinor":6900}],"Redemptions":{"d1":{"PartnerId":"partner-1","AmountMinor":100,"RestoredMinor":0,"RedeemedAt":"2026-11-20T14:00:00+00:00"}},"ReferralEarned":false}
""";

    /// <summary>The messages the old snapshot above was taken after: enrol, choose, two authorizations, a capture, a force post, a parked reversal, a refund, a redemption.</summary>
    private static (MemberAccount Account, List<LedgerEntry> Rows) SameMessages()
    {
        var rows = new List<LedgerEntry>();
        var a = new MemberAccount("old");
        void Take()
        {
            rows.AddRange(a.Uncommitted);
            a.ClearUncommitted();
        }
        Assert.True(a.Enroll(new EnrollCommand("old", true, "", ""), ProgramConfig.Default, T0).IsOk);
        Take();
        Assert.True(a.ChooseCategories(new ChooseCategoriesCommand(ProgramConfig.Default.MonthOf(T0), ["supermarkets"]), Programs, T0).IsOk);
        Take();
        Assert.True(a.Authorize(new AuthorizeCommand("a1", "card-1", 100_000, "RUB", 5411, "shop", T0), Programs, MccCatalogue.Default, T0).IsOk);
        Take();
        Assert.True(a.Authorize(new AuthorizeCommand("a2", "card-1", 50_000, "RUB", 5812, "cafe", T0.AddHours(1)), Programs, MccCatalogue.Default, T0.AddHours(1)).IsOk);
        Take();
        Assert.True(a.Capture(new CaptureCommand("c1", "a1", "card-1", 90_000, T0.AddHours(2), -1, "", ""), Programs, MccCatalogue.Default, T0.AddHours(2)).IsOk);
        Take();
        Assert.True(a.Capture(new CaptureCommand("f1", "", "card-1", 20_000, T0.AddHours(3), 5411, "shop", ""), Programs, MccCatalogue.Default, T0.AddHours(3)).IsOk);
        Take();
        Assert.True(a.Reverse(new ReverseCommand("v1", "never", "card-1", 0, T0.AddHours(3)), Programs, T0.AddHours(3)).IsOk);
        Take();
        Assert.True(a.Refund(new RefundCommand("r1", "c1", "card-1", 10_000, T0.AddHours(4)), Programs, T0.AddHours(4)).IsOk);
        Take();
        Assert.True(a.Redeem(new RedeemCommand("d1", "partner-1", 100), Programs, T0.AddHours(5)).IsOk);
        Take();
        return (a, rows);
    }

    /// <summary>The state as JSON with object keys sorted and the format version left out: what the member is, not how it was written.</summary>
    private static string Canonical(MemberState state)
    {
        var node = JsonSerializer.SerializeToNode(state, Json)!.AsObject();
        node.Remove(nameof(MemberState.FormatVersion));
        return Sort(node)!.ToJsonString();
    }

    private static string WithoutRecordPurchases(string canonical)
    {
        var node = JsonNode.Parse(canonical)!.AsObject();
        foreach (var (_, record) in node["Processed"]!.AsObject()) record!.AsObject().Remove(nameof(ProcessedMessage.PurchaseId));
        return node.ToJsonString();
    }

    private static JsonNode? Sort(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, Sort(p.Value?.DeepClone())))),
        JsonArray a => new JsonArray([.. a.Select(v => Sort(v?.DeepClone()))]),
        _ => node?.DeepClone(),
    };

    [Fact]
    public void A_snapshot_written_before_the_compact_layout_reads_into_the_same_member_and_decides_the_same()
    {
        var old = MemberSnapshotFormat.TryRead(System.Text.Encoding.UTF8.GetBytes(SnapshotBeforeCompactLayout), "old");
        Assert.NotNull(old);
        Assert.Equal(0, old.FormatVersion);
        var (live, rows) = SameMessages();
        // Version 3 records name their purchase; older snapshots' records do not (they leave memory by age only).
        Assert.Equal(WithoutRecordPurchases(Canonical(live.State)), WithoutRecordPurchases(Canonical(old)));
        var replayed = new MemberAccount("old");
        foreach (var row in rows) replayed.Apply(row);
        Assert.Equal(Canonical(live.State), Canonical(replayed.State));

        // The same next messages on the member read from the old snapshot and on the live one: same replies, same rows.
        var fromOld = new MemberAccount(old);
        var at = T0.AddHours(6);
        foreach (var account in new[] { live, fromOld })
        {
            Assert.True(account.Capture(new CaptureCommand("c2", "a2", "card-1", 50_000, at, -1, "", ""), Programs, MccCatalogue.Default, at).IsOk);
            Assert.True(account.Refund(new RefundCommand("r2", "f1", "card-1", 5_000, at), Programs, at).IsOk);
            Assert.True(account.Authorize(new AuthorizeCommand("never", "card-1", 70_000, "RUB", 5411, "shop", at), Programs, MccCatalogue.Default, at).IsOk);
        }
        Assert.Equal(JsonSerializer.Serialize(live.Uncommitted, Json), JsonSerializer.Serialize(fromOld.Uncommitted, Json));
        var retry = fromOld.Authorize(new AuthorizeCommand("a1", "card-1", 100_000, "RUB", 5411, "shop", T0), Programs, MccCatalogue.Default, at);
        Assert.True(retry.IsOk && retry.Value!.Duplicate);
        Assert.Equal(("old", "card-1", 7_000L, 7_000L), (retry.Value.MemberId, retry.Value.CardId, retry.Value.AccruedMinor, retry.Value.PendingAfterMinor));
    }

    [Fact]
    public void A_snapshot_round_trips_with_its_format_version()
    {
        var (live, _) = SameMessages();
        var bytes = MemberSnapshotFormat.Write(live.State);
        var read = MemberSnapshotFormat.TryRead(bytes, "old");
        Assert.NotNull(read);
        Assert.Equal(MemberSnapshotFormat.Version, read.FormatVersion);
        Assert.Equal(Canonical(live.State), Canonical(read));
    }

    [Theory]
    [InlineData("{\"MemberId\":\"old\",\"Purchases\":[1,2]}")]
    [InlineData("{\"MemberId\":\"old\",\"Sequence\":\"ten\"}")]
    [InlineData("not json")]
    [InlineData("{\"MemberId\":\"someone-else\",\"Sequence\":3}")]
    [InlineData("{\"FormatVersion\":99,\"MemberId\":\"old\",\"Sequence\":3}")]
    [InlineData("")]
    public void A_snapshot_that_cannot_be_used_is_reported_and_the_ledger_rebuilds_the_member(string snapshot)
    {
        Assert.Null(MemberSnapshotFormat.TryRead(System.Text.Encoding.UTF8.GetBytes(snapshot), "old"));
        // What the grain then does: the whole ledger from the start gives the member.
        var (live, rows) = SameMessages();
        var rebuilt = new MemberAccount(new MemberState { MemberId = "old" });
        foreach (var row in rows) rebuilt.Apply(row);
        Assert.Equal(Canonical(live.State), Canonical(rebuilt.State));
    }

    [Fact]
    public void The_compact_map_behaves_as_a_dictionary_below_and_above_its_index_threshold()
    {
        var random = new Random(7);
        for (var round = 0; round < 50; round++)
        {
            var compact = new CompactDictionary<string, int>();
            var reference = new Dictionary<string, int>(StringComparer.Ordinal);
            var keys = random.Next(1, 3 * CompactDictionary<string, int>.IndexFrom);
            for (var step = 0; step < 400; step++)
            {
                var key = "k" + random.Next(keys);
                switch (random.Next(4))
                {
                    case 0 or 1:
                        compact[key] = step;
                        reference[key] = step;
                        break;
                    case 2:
                        Assert.Equal(reference.Remove(key), compact.Remove(key));
                        break;
                    default:
                        Assert.Equal(reference.TryGetValue(key, out var expected), compact.TryGetValue(key, out var actual));
                        Assert.Equal(expected, actual);
                        break;
                }
                Assert.Equal(reference.Count, compact.Count);
            }
            Assert.Equal(reference.OrderBy(p => p.Key, StringComparer.Ordinal), compact.OrderBy(p => p.Key, StringComparer.Ordinal));
            var json = JsonSerializer.Serialize(compact, Json);
            Assert.Equal(JsonSerializer.Deserialize<Dictionary<string, int>>(json, Json)!.OrderBy(p => p.Key), reference.OrderBy(p => p.Key));
            var back = JsonSerializer.Deserialize<CompactDictionary<string, int>>(JsonSerializer.Serialize(reference, Json), Json)!;
            Assert.Equal(reference.OrderBy(p => p.Key, StringComparer.Ordinal), back.OrderBy(p => p.Key, StringComparer.Ordinal));
        }
        var months = new CompactDictionary<int, string> { [202611] = "a", [202612] = "b" };
        Assert.Equal("{\"202611\":\"a\",\"202612\":\"b\"}", JsonSerializer.Serialize(months, Json));
        Assert.Equal("b", JsonSerializer.Deserialize<CompactDictionary<int, string>>("{\"202612\":\"b\"}", Json)![202612]);
    }
}
