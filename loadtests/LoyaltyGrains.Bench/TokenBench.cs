using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using LoyaltyGrains.Gateway.Auth;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace LoyaltyGrains.Bench;

/// <summary>
/// CPU per bearer-token validation, with the engine's own validation settings (<see cref="AuthSetup.ValidationParameters"/>)
/// and the handler JwtBearer uses (JsonWebTokenHandler): HS256 with a configured key, RS256 and ES256 with a PEM
/// public key. Process CPU time over N validations of one realistic processor token, after a warm-up.
/// </summary>
internal static class TokenBench
{
    public static async Task<int> RunAsync(Args options)
    {
        var count = int.Parse(options.Get("--count") ?? "200000", CultureInfo.InvariantCulture);
        var threads = int.Parse(options.Get("--threads") ?? "1", CultureInfo.InvariantCulture);
        var folder = Directory.CreateTempSubdirectory("loyalty-token-bench-").FullName;
        try
        {
            Console.WriteLine($"token validation: {count:N0} validations per algorithm on {threads} thread(s), {Environment.ProcessorCount} cores, .NET {Environment.Version}");
            Console.WriteLine($"{"algorithm",-10} {"CPU µs/validation",18} {"wall µs/validation",19} {"validations/s",14} {"token bytes",12}");
            foreach (var algorithm in (options.Get("--alg") ?? "HS256,RS256,ES256").Split(','))
            {
                var (auth, credentials) = Setup(algorithm, folder);
                var parameters = AuthSetup.ValidationParameters(auth);
                var token = Mint(auth, credentials);
                var handler = new JsonWebTokenHandler();
                var check = await handler.ValidateTokenAsync(token, parameters);
                if (!check.IsValid) throw new InvalidOperationException($"{algorithm}: the benchmark's own token does not validate: {check.Exception?.Message}");
                await ValidateManyAsync(handler, token, parameters, Math.Max(1_000, count / 10), threads);
                var process = Process.GetCurrentProcess();
                process.Refresh();
                var cpuBefore = process.TotalProcessorTime;
                var wall = Stopwatch.StartNew();
                await ValidateManyAsync(handler, token, parameters, count, threads);
                wall.Stop();
                process.Refresh();
                var cpu = process.TotalProcessorTime - cpuBefore;
                Console.WriteLine($"{algorithm,-10} {cpu.TotalMicroseconds / count,18:0.00} {wall.Elapsed.TotalMicroseconds * threads / count,19:0.00} {count / wall.Elapsed.TotalSeconds,14:N0} {token.Length,12}");
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
        return 0;
    }

    private static async Task ValidateManyAsync(JsonWebTokenHandler handler, string token, TokenValidationParameters parameters, int count, int threads)
    {
        var failures = 0;
        await Task.WhenAll(Enumerable.Range(0, threads).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < count / threads; i++)
            {
                if (!(await handler.ValidateTokenAsync(token, parameters)).IsValid) Interlocked.Increment(ref failures);
            }
        })));
        if (failures > 0) throw new InvalidOperationException($"{failures} validations failed");
    }

    /// <summary>The engine's options for one algorithm, and the credentials an issuer would sign with.</summary>
    private static (LoyaltyAuthOptions Auth, SigningCredentials Credentials) Setup(string algorithm, string folder)
    {
        switch (algorithm)
        {
            case "HS256":
                var secret = RandomNumberGenerator.GetBytes(32);
                return (new LoyaltyAuthOptions { SigningKey = Convert.ToBase64String(secret) }, new SigningCredentials(new SymmetricSecurityKey(secret), SecurityAlgorithms.HmacSha256));
            case "RS256":
                var rsa = RSA.Create(2048);
                var rsaPath = Path.Combine(folder, "rsa.pem");
                File.WriteAllText(rsaPath, rsa.ExportSubjectPublicKeyInfoPem());
                return (new LoyaltyAuthOptions { PublicKeyPath = rsaPath }, new SigningCredentials(new RsaSecurityKey(rsa), SecurityAlgorithms.RsaSha256));
            case "ES256":
                var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                var ecPath = Path.Combine(folder, "ec.pem");
                File.WriteAllText(ecPath, ec.ExportSubjectPublicKeyInfoPem());
                return (new LoyaltyAuthOptions { PublicKeyPath = ecPath }, new SigningCredentials(new ECDsaSecurityKey(ec), SecurityAlgorithms.EcdsaSha256));
            default:
                throw new ArgumentException($"--alg: {algorithm} is not HS256, RS256 or ES256");
        }
    }

    /// <summary>A processor token as the token command makes them (sub, two roles, jti, iat/nbf/exp, iss, aud).</summary>
    private static string Mint(LoyaltyAuthOptions auth, SigningCredentials credentials)
    {
        var now = DateTime.UtcNow;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = auth.Issuer, Audience = auth.Audience, IssuedAt = now, NotBefore = now, Expires = now.AddHours(1),
            Claims = new Dictionary<string, object> { ["sub"] = "processor-1", ["role"] = new[] { "processor", "admin" }, ["jti"] = "0123456789abcdef" },
            SigningCredentials = credentials,
        });
    }
}
