using System.CommandLine;
using LoyaltyGrains.Gateway.Auth;

namespace LoyaltyGrains.Cli;

/// <summary>
/// `token`: prints a bearer token signed with this machine's configured (or development) key, for grpcurl and scripts:
/// <c>grpcurl -plaintext -H "authorization: Bearer $(dotnet run --project silo -c Release -- token --role admin)" …</c>
/// Only the token goes to stdout.
/// </summary>
public static class TokenVerb
{
    public static Command Create()
    {
        var roles = new Option<string[]>("--role")
        {
            Description = "processor, app (needs --member: the token speaks for that member), partner (needs --partner), admin, analyst (Analytics only); " +
                "repeat it or separate roles with commas",
            Required = true,
            HelpName = "ROLE[,ROLE]",
            Arity = ArgumentArity.OneOrMore,
        };
        var member = new Option<string>("--member") { Description = "the member an app token speaks for (its subject)", HelpName = "ID" };
        var partner = new Option<string>("--partner") { Description = "the partner a partner token speaks for", HelpName = "ID" };
        var subject = new Option<string>("--subject") { Description = "who the audit log names (default: the member, else partner:<id>, else your user name)", HelpName = "NAME" };
        var expiresIn = CliOptions.Duration("--expires-in", "how long the token is valid", TimeSpan.FromHours(1));
        var command = new Command("token",
            "Print a bearer token signed with LOYALTY_AUTH_SIGNING_KEY, Loyalty:Auth:SigningKey, else the development key the engine uses. Only the token goes to stdout.")
        {
            roles, member, partner, subject, expiresIn,
        };
        command.SetAction(parsed =>
        {
            var roleList = parsed.GetRequiredValue(roles)
                .SelectMany(r => r.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
            var memberId = parsed.GetValue(member);
            var partnerId = parsed.GetValue(partner);
            var name = parsed.GetValue(subject);
            if (roleList.Count == 0) throw new CommandLineException("--role needs a role");
            foreach (var role in roleList)
            {
                if (LoyaltyClaims.Parse(role) == Roles.None) throw new CommandLineException($"--role: unknown role '{role}' (processor, app, partner, admin, analyst)");
            }
            if (roleList.Contains(LoyaltyClaims.App) && memberId is null) throw new CommandLineException("an app token needs --member (it may act only for that member)");
            if (roleList.Contains(LoyaltyClaims.Partner) && partnerId is null) throw new CommandLineException("a partner token needs --partner");
            if (memberId is not null && name is not null && name != memberId) throw new CommandLineException("--member is the token's subject; leave out --subject");
            name ??= memberId ?? (partnerId is not null ? "partner:" + partnerId : Environment.UserName);
            var lifetime = parsed.GetValue(expiresIn);

            var configuration = CliOptions.Configuration();
            SigningKeySource key;
            try
            {
                key = SigningKeySource.Resolve(configuration);
            }
            catch (InvalidOperationException ex)
            {
                throw new CommandLineException(ex.Message);
            }
            if (key.Key is null) throw new CommandLineException($"no signing key here: this engine trusts {key.Description}; get tokens from it");
            string token;
            try
            {
                token = LoyaltyTokens.Mint(key.Options(configuration), new TokenRequest(name, roleList, partnerId, lifetime));
            }
            catch (InvalidOperationException ex)
            {
                throw new CommandLineException(ex.Message);
            }
            parsed.InvocationConfiguration.Output.WriteLine(token);
            parsed.InvocationConfiguration.Error.WriteLine($"token: sub={name} role={string.Join(',', roleList)}{(partnerId is null ? "" : " partner_id=" + partnerId)}, " +
                $"expires {DateTimeOffset.UtcNow + lifetime:u}, signed with {(key.Development ? "the development key in " + key.DevelopmentKeyFile : key.Description)}");
            return LoyaltyCommandLine.Success;
        });
        return command;
    }
}
