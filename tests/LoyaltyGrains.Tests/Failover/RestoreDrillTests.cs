using System.Diagnostics;
using System.Globalization;
using LoyaltyGrains.Gateway.V1;
using LoyaltyGrains.Tests.Durability;
using LoyaltyGrains.Tests.Faults;
using Npgsql;
using Xunit.Abstractions;

namespace LoyaltyGrains.Tests.Failover;

/// <summary>
/// The restore runbook of docs/OPERATIONS.md, done for real: WAL archived by archive_command, a base backup taken with
/// pg_basebackup while processors post, a named restore point under load, the server and the silo lost, a new server
/// restored to the restore point, a new silo started on it. The restored database passes loyalty.check_ledger() and
/// loyalty.check_payouts(); balances read through the API equal the restored ledger's sums; every message acknowledged
/// before the restore point is there (a retry is DUPLICATE, identical); every message sent after it is not (a retry is
/// ACCEPTED as new), and the ledger is consistent again after those retries.
/// </summary>
[Collection(FailoverCollection.Name)]
public sealed class RestoreDrillTests(ITestOutputHelper output)
{
    private const int Workers = 16;
    private const string RestorePoint = "loyalty-drill";
    private static readonly TimeSpan Phase = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan CallDeadline = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Point_in_time_restore_taken_under_load_is_consistent_and_decides_retries_as_of_the_restore_point()
    {
        await using var source = await PostgresServer.StartAsync(settings: ["wal_level=replica", "archive_mode=on", "archive_timeout=10"]);
        var archive = await source.OwnedDirectoryAsync("wal-archive");
        // Set after start: the archive directory lives under the server's own directory. An existing file is never overwritten.
        await source.AdminScalarAsync($"ALTER SYSTEM SET archive_command = 'test ! -f {archive}/%f && cp %p {archive}/%f'");
        await source.AdminScalarAsync("SELECT pg_reload_conf()");
        var backupParent = await source.OwnedDirectoryAsync("backups");
        var baseBackup = Path.Combine(backupParent, "base");

        var ports = SiloProcess.FreePorts();
        var (silo, _) = await SiloProcess.StartAsync(source.ConnectionString, ports, SiloProcess.StartTimeout);
        LoadDriver load;
        TimeSpan pointStarted, pointEnded, backupTook;
        try
        {
            var members = await LoadDriver.EnrollAsync(silo.Channel, "drill", Workers);
            load = new LoadDriver(silo.Channel, members, FaultRun.CallDeadline);
            load.Start();
            await Task.Delay(Phase);
            var backupClock = Stopwatch.StartNew();
            await source.RunToolAsync("pg_basebackup", ["-h", "127.0.0.1", "-p", source.Port.ToString(CultureInfo.InvariantCulture), "-U", "postgres",
                "-D", baseBackup, "-X", "stream", "-c", "fast"]);
            backupTook = backupClock.Elapsed;
            await Task.Delay(Phase);
            pointStarted = load.Elapsed;
            await source.AdminScalarAsync($"SELECT pg_create_restore_point('{RestorePoint}')");
            pointEnded = load.Elapsed;
            await Task.Delay(Phase);
            await load.StopAsync(TimeSpan.FromSeconds(5));
            // The segment holding the restore point (and everything after) into the archive before the disaster.
            var segment = (string)(await source.AdminScalarAsync("SELECT pg_walfile_name(pg_switch_wal())"))!;
            var archived = false;
            for (var i = 0; i < 60 && !archived; i++)
            {
                archived = await source.AdminScalarAsync("SELECT last_archived_wal FROM pg_stat_archiver") is string last && string.CompareOrdinal(last, segment) >= 0;
                if (!archived) await Task.Delay(500);
            }
            Assert.True(archived, $"WAL segment {segment} was not archived within 30 s; server log:\n{source.ServerLog}");
        }
        finally
        {
            // The disaster: the silo and the server are gone (killed; the server stopped as by a crash).
            await silo.DisposeAsync();
        }
        await source.StopAsync(immediate: true);

        var restoreClock = Stopwatch.StartNew();
        await using var restored = await PostgresServer.RestoreAsync(baseBackup, archive, [$"recovery_target_name='{RestorePoint}'"]);
        var databaseBack = restoreClock.Elapsed;
        // The runbook's step: the silos listed in the restored membership table are gone; a new silo would wait to reach them.
        await using (var connection = new NpgsqlConnection(restored.ConnectionString))
        {
            await connection.OpenAsync();
            await using var forget = new NpgsqlCommand("DELETE FROM orleansmembershiptable", connection);
            await forget.ExecuteNonQueryAsync();
        }
        await using var newSilo = (await SiloProcess.StartAsync(restored.ConnectionString, SiloProcess.FreePorts(), SiloProcess.StartTimeout)).Silo;
        var rto = restoreClock.Elapsed;

        // Which side of the restore point each acknowledged message is on, from when its attempts ran.
        var attempts = load.Attempts.GroupBy(a => a.TransactionId).ToDictionary(g => g.Key, g => g.ToList());
        var acknowledged = load.Acknowledged.ToList();
        var before = acknowledged.Where(a => attempts[a.TransactionId].Single(t => t.IsAcknowledged).EndedAt < pointStarted).ToList();
        var after = acknowledged.Where(a => attempts[a.TransactionId].Min(t => t.StartedAt) > pointEnded).ToList();
        var around = acknowledged.Except(before).Except(after).ToList();

        var restoredAudit = await LedgerAudit.RunAsync(newSilo.Channel, restored.ConnectionString, load.Members, before);
        var payoutsRestored = await PayoutChecks.ViolationsAsync(restored.ConnectionString);

        // Every message from the restore point on, sent again as the processors would (each member's in its order).
        var processing = new Processing.ProcessingClient(newSilo.Channel);
        var resent = new List<Acknowledged>();
        var afterDuplicate = 0;
        var afterFailed = new List<string>();
        var aroundOutcomes = new Dictionary<string, int>();
        await Task.WhenAll(acknowledged.Where(a => !before.Contains(a)).GroupBy(a => a.MemberId).Select(async messages =>
        {
            foreach (var message in messages)
            {
                var isAfter = after.Contains(message);
                string outcome;
                try
                {
                    var reply = await message.Send(processing, DateTime.UtcNow + CallDeadline);
                    lock (resent) resent.Add(message with { Reply = reply });
                    outcome = reply.Status.ToString().ToUpperInvariant();
                    if (isAfter && reply.Status == PostingStatus.Duplicate) Interlocked.Increment(ref afterDuplicate);
                }
                catch (Grpc.Core.RpcException ex)
                {
                    outcome = Names.Of(ex.StatusCode);
                    if (isAfter) lock (afterFailed) afterFailed.Add($"{message.TransactionId}: {outcome} {ex.Status.Detail}");
                }
                if (!isAfter) lock (aroundOutcomes) aroundOutcomes[outcome] = aroundOutcomes.GetValueOrDefault(outcome) + 1;
            }
        }));
        var finalAudit = await LedgerAudit.RunAsync(newSilo.Channel, restored.ConnectionString, load.Members, [.. before, .. resent]);
        var payoutsFinal = await PayoutChecks.ViolationsAsync(restored.ConnectionString);

        var line = $"{Workers} members; base backup under load took {S(backupTook)}; restore point after {S(pointStarted)} of load; " +
            $"acknowledged {acknowledged.Count}: {before.Count} before the restore point, {after.Count} after, {around.Count} in flight across it; " +
            $"restored: {restoredAudit.Summary}, check_payouts() rows {payoutsRestored.Count}; " +
            $"retries after the restore point: {after.Count - afterDuplicate - afterFailed.Count} ACCEPTED as new, {afterDuplicate} DUPLICATE, {afterFailed.Count} failed; " +
            $"in flight across it: {string.Join(", ", aroundOutcomes.Select(o => $"{o.Key} {o.Value}"))}; " +
            $"after the retries: {finalAudit.Summary}, check_payouts() rows {payoutsFinal.Count}; " +
            $"RTO {S(rto)} (database restored and recovered {S(databaseBack)}, then the silo SERVING); RPO: the restore point (recovery_target_name)";
        TestSummary.Record(output, "restore drill", line);

        var problems = new List<string>();
        if (before.Count == 0 || after.Count == 0) problems.Add("the load did not straddle the restore point (nothing before or nothing after it)");
        if (!restoredAudit.IsClean) problems.Add($"restored database: {restoredAudit.Summary}; {string.Join("; ", restoredAudit.Examples)}");
        if (payoutsRestored.Count > 0 || payoutsFinal.Count > 0) problems.Add($"check_payouts(): {string.Join("; ", payoutsRestored.Concat(payoutsFinal).Take(5))}");
        if (afterDuplicate > 0) problems.Add($"{afterDuplicate} messages sent after the restore point were DUPLICATE: the restore went past its target");
        if (afterFailed.Count > 0) problems.Add($"{afterFailed.Count} retries after the restore point failed: {string.Join("; ", afterFailed.Take(5))}");
        if (!finalAudit.IsClean) problems.Add($"after the retries: {finalAudit.Summary}; {string.Join("; ", finalAudit.Examples)}");
        Assert.True(problems.Count == 0, $"{string.Join("\n", problems)}\n{line}\nsilo log:\n{newSilo.LogTail()}");
    }

    private static string S(TimeSpan time) => $"{time.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s";
}
