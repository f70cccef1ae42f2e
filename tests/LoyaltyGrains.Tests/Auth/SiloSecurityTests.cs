using System.Diagnostics;
using Grpc.Core;
using LoyaltyGrains.Gateway.Auth;
using LoyaltyGrains.Gateway.V1;
using LoyaltyGrains.Tests.Durability;
using Microsoft.IdentityModel.JsonWebTokens;
using Npgsql;

namespace LoyaltyGrains.Tests.Auth;

/// <summary>The silo's own security start-up and verbs, run as the real process.</summary>
public sealed class SiloSecurityTests
{
    private static async Task<(int Exit, string Out, string Error)> RunSiloAsync(string arguments, Dictionary<string, string?> environment)
    {
        var dll = EngineProcess.SiloDll();
        var info = new ProcessStartInfo("dotnet", $"\"{dll}\" {arguments}")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        // Nothing inherited decides the outcome: no key from scripts/test.sh, no PostgreSQL.
        info.Environment.Remove(LoyaltyAuthOptions.SigningKeyVariable);
        info.Environment.Remove("LOYALTY_POSTGRES");
        foreach (var (name, value) in environment) info.Environment[name] = value;
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"silo {arguments} did not exit: {await output}{await error}");
        }
        return (process.ExitCode, await output, await error);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void The_development_key_is_created_private_reused_and_refused_when_others_can_read_it()
    {
        var folder = Directory.CreateTempSubdirectory("loyalty-devkey-").FullName;
        try
        {
            var path = Path.Combine(folder, "nested", "dev-signing-key");
            var key = DevelopmentKey.LoadOrCreate(path, out var created);
            Assert.True(created);
            Assert.Equal(32, Convert.FromBase64String(key).Length);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.Equal(key, DevelopmentKey.LoadOrCreate(path, out created));
            Assert.False(created);
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
            Assert.Contains("readable by other users", Assert.Throws<InvalidOperationException>(() => DevelopmentKey.LoadOrCreate(path, out _)).Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task A_node_listening_beyond_loopback_refuses_to_start_with_the_development_key()
    {
        var folder = Directory.CreateTempSubdirectory("loyalty-devkey-").FullName;
        try
        {
            var ports = SiloProcess.FreePorts();
            var (exit, _, error) = await RunSiloAsync("", new()
            {
                ["LOYALTY_LISTEN_ADDRESS"] = "0.0.0.0",
                [DevelopmentKey.FileVariable] = Path.Combine(folder, "dev-signing-key"),
                ["LOYALTY_GRPC_PORT"] = ports.Grpc.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["LOYALTY_METRICS_PORT"] = ports.Metrics.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["LOYALTY_SILO_PORT"] = ports.Silo.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["LOYALTY_GATEWAY_PORT"] = ports.Gateway.ToString(System.Globalization.CultureInfo.InvariantCulture),
            });
            Assert.Equal(1, exit);
            Assert.Contains("Refusing to start", error, StringComparison.Ordinal);
            Assert.Contains(LoyaltyAuthOptions.SigningKeyVariable, error, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task The_token_verb_prints_a_token_the_engine_accepts_and_refuses_incomplete_requests()
    {
        var key = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var (exit, output, error) = await RunSiloAsync("token --role partner --partner coffee-1 --expires-in 15m", new() { [LoyaltyAuthOptions.SigningKeyVariable] = key });
        Assert.True(exit == 0, error);
        var token = output.Trim();
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, AuthSetup.ValidationParameters(new LoyaltyAuthOptions { SigningKey = key }));
        Assert.True(result.IsValid, result.Exception?.Message);
        Assert.Equal(("partner:coffee-1", "partner", "coffee-1"), ((string)result.Claims["sub"], (string)result.Claims["role"], (string)result.Claims["partner_id"]));
        var expires = ((JsonWebToken)result.SecurityToken).ValidTo;
        Assert.InRange(expires, DateTime.UtcNow.AddMinutes(14), DateTime.UtcNow.AddMinutes(16));

        var (refused, _, why) = await RunSiloAsync("token --role app", new() { [LoyaltyAuthOptions.SigningKeyVariable] = key });
        Assert.Equal(2, refused);
        Assert.Contains("--member", why, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_durable_silo_writes_audit_rows_queryable_through_the_view_and_keeps_reflection_off()
    {
        await using var database = await TestDatabase.CreateAsync("audit");
        var (silo, _) = await SiloProcess.StartAsync(database.ConnectionString, SiloProcess.FreePorts(), TimeSpan.FromSeconds(45));
        await using (silo)
        {
            var admin = new Admin.AdminClient(silo.Channel);
            await admin.EnrollMemberAsync(new EnrollMemberRequest { MemberId = "aud-1" });
            await admin.IssueCardAsync(new IssueCardRequest { CardId = "aud-card-1", MemberId = "aud-1" });
            await admin.BlockCardAsync(new BlockCardRequest { CardId = "aud-card-1" });
            var app = new Admin.AdminClient(BearerTokenHandler.Channel($"http://127.0.0.1:{silo.GrpcPort}", EngineProcess.Token("aud-1", [LoyaltyClaims.App])));
            var denied = await Assert.ThrowsAsync<RpcException>(() => app.BlockCardAsync(new BlockCardRequest { CardId = "aud-card-2" }).ResponseAsync);
            Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);

            var reflection = new global::Grpc.Reflection.V1Alpha.ServerReflection.ServerReflectionClient(silo.Channel);
            // Nothing is written: the server answers an unknown service at once, and a write racing that answer would
            // fail as CANCELLED instead of showing the status.
            using var call = reflection.ServerReflectionInfo();
            var off = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext());
            Assert.Equal(StatusCode.Unimplemented, off.StatusCode);

            await using var connection = new NpgsqlConnection(database.ConnectionString);
            await connection.OpenAsync();
            var rows = new List<(string Subject, string Roles, string Method, string Outcome, string Member, string Card)>();
            for (var i = 0; i < 100 && rows.Count < 4; i++)
            {
                rows.Clear();
                await using var query = new NpgsqlCommand(
                    "SELECT subject, roles, method, outcome, member_id, card_id FROM loyalty.audit_log_v WHERE card_id LIKE 'aud-card-%' OR member_id = 'aud-1' OR subject = 'aud-1' ORDER BY id", connection);
                await using var reader = await query.ExecuteReaderAsync();
                while (await reader.ReadAsync()) rows.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.GetString(5)));
                if (rows.Count < 4) await Task.Delay(100);
            }
            Assert.Equal(
            [
                ("tests", "processor,admin", "Admin/EnrollMember", "OK", "aud-1", ""),
                ("tests", "processor,admin", "Admin/IssueCard", "OK", "aud-1", "aud-card-1"),
                ("tests", "processor,admin", "Admin/BlockCard", "OK", "aud-1", "aud-card-1"),
            ], rows.Take(3));
            // The refusal came from authorization, before the request was read: who and what, without the card.
            Assert.Contains(rows, r => r is ("aud-1", "app", "Admin/BlockCard", "PERMISSION_DENIED", _, _));

            await using var tamper = new NpgsqlCommand("UPDATE loyalty.audit SET outcome = 'OK'", connection);
            Assert.Contains("append-only", (await Assert.ThrowsAsync<PostgresException>(() => tamper.ExecuteNonQueryAsync())).MessageText, StringComparison.Ordinal);
        }
    }
}
