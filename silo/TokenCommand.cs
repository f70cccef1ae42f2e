using System.Globalization;
using LoyaltyGrains.Gateway.Auth;

namespace LoyaltyGrains.Silo;

/// <summary>
/// `token`: prints a bearer token signed with this machine's configured (or development) key, for grpcurl and scripts:
/// <c>grpcurl -plaintext -H "authorization: Bearer $(dotnet run --project silo -c Release -- token --role admin)" …</c>
/// Only the token goes to stdout.
/// </summary>
public static class TokenCommand
{
    public const string Usage = """
        usage: token --role ROLE[,ROLE] [--role ROLE] [--member ID] [--partner ID] [--subject NAME] [--expires-in 1h]
          roles: processor, app (needs --member: the token speaks for that member), partner (needs --partner), admin, analyst (Analytics only)
          --subject   who the audit log names (default: the member, else partner:<id>, else your user name)
          --expires-in  30s, 15m, 1h, 7d                                                        [1h]
        The key: LOYALTY_AUTH_SIGNING_KEY, Loyalty:Auth:SigningKey, else the development key the engine uses.
        """;

    public static int Run(string[] args)
    {
        try
        {
            var roles = new List<string>();
            string? member = null, partner = null, subject = null;
            var lifetime = TimeSpan.FromHours(1);
            for (var i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
                switch (args[i])
                {
                    case "--role": roles.AddRange(Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)); break;
                    case "--member": member = Next(); break;
                    case "--partner": partner = Next(); break;
                    case "--subject": subject = Next(); break;
                    case "--expires-in": lifetime = ParseLifetime(Next()); break;
                    case "-h" or "--help": Console.WriteLine(Usage); return 0;
                    default: throw new ArgumentException($"unknown option {args[i]}");
                }
            }
            if (roles.Count == 0) throw new ArgumentException("--role is required");
            foreach (var role in roles)
            {
                if (LoyaltyClaims.Parse(role) == Roles.None) throw new ArgumentException($"unknown role '{role}'");
            }
            if (roles.Contains(LoyaltyClaims.App) && member is null) throw new ArgumentException("an app token needs --member (it may act only for that member)");
            if (roles.Contains(LoyaltyClaims.Partner) && partner is null) throw new ArgumentException("a partner token needs --partner");
            if (member is not null && subject is not null && subject != member) throw new ArgumentException("--member is the token's subject; leave out --subject");
            subject ??= member ?? (partner is not null ? "partner:" + partner : Environment.UserName);

            var configuration = new ConfigurationBuilder()
                .SetBasePath(AppContext.BaseDirectory)
                .AddJsonFile("appsettings.json", optional: true)
                .AddEnvironmentVariables()
                .Build();
            var key = SigningKeySource.Resolve(configuration);
            if (key.Key is null) throw new ArgumentException($"no signing key here: this engine trusts {key.Description}; get tokens from it");
            var options = key.Options(configuration);
            Console.WriteLine(LoyaltyTokens.Mint(options, new TokenRequest(subject, roles, partner, lifetime)));
            Console.Error.WriteLine($"token: sub={subject} role={string.Join(',', roles)}{(partner is null ? "" : " partner_id=" + partner)}, " +
                $"expires {DateTimeOffset.UtcNow + lifetime:u}, signed with {(key.Development ? "the development key in " + key.DevelopmentKeyFile : key.Description)}");
            return 0;
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"token: {ex.Message}\n{Usage}");
            return 2;
        }
    }

    /// <summary>"30s", "15m", "1h", "7d".</summary>
    public static TimeSpan ParseLifetime(string text)
    {
        if (text.Length >= 2 && double.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value > 0)
        {
            switch (text[^1])
            {
                case 's': return TimeSpan.FromSeconds(value);
                case 'm': return TimeSpan.FromMinutes(value);
                case 'h': return TimeSpan.FromHours(value);
                case 'd': return TimeSpan.FromDays(value);
            }
        }
        throw new ArgumentException($"--expires-in: '{text}' is not a duration like 30s, 15m, 1h, 7d");
    }
}
