using System.Security.Cryptography;
using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace LoyaltyGrains.Gateway.Auth;

/// <summary>
/// Bearer tokens on every <c>loyalty.v1</c> RPC: JwtBearer authentication, role policies per method from
/// <see cref="RpcAccess"/>, the member/partner scope interceptor, per-caller limits and the audit log.
/// Health and reflection stay anonymous.
/// </summary>
public static class AuthSetup
{
    /// <summary>Marks our own token refusals (after the signature checked out) so their reason reaches the client.</summary>
    public const string RejectedPrefix = "loyalty: ";
    public const string ReflectionKey = "Loyalty:Reflection";
    /// <summary>HttpContext.Items key of the exception that refused this request's token.</summary>
    public static readonly object FailureItem = new();

    public const string HmacAlgorithm = SecurityAlgorithms.HmacSha256;
    private static readonly string[] AsymmetricAlgorithms = [SecurityAlgorithms.RsaSha256, SecurityAlgorithms.EcdsaSha256];

    public static IServiceCollection AddLoyaltySecurity(this IServiceCollection services)
    {
        services.AddOptions<LoyaltyAuthOptions>()
            .BindConfiguration(LoyaltyAuthOptions.Section)
            .PostConfigure(options =>
            {
                if (Environment.GetEnvironmentVariable(LoyaltyAuthOptions.SigningKeyVariable) is { Length: > 0 } key) options.SigningKey = key;
            })
            .Validate(options => options.HasKeys,
                $"no token keys: set {LoyaltyAuthOptions.Section}:SigningKey ({LoyaltyAuthOptions.SigningKeyVariable}), :Authority or :PublicKeyPath")
            .Validate(options => { options.SigningKeys(); return true; })
            .ValidateOnStart();
        services.AddOptions<LoyaltyLimitsOptions>().BindConfiguration(LoyaltyLimitsOptions.Section);

        services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme).AddJwtBearer();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new ValidatedTokenCache(sp.GetRequiredService<TimeProvider>()));
        services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme).Configure<IOptions<LoyaltyAuthOptions>, ValidatedTokenCache>((jwt, auth, cache) =>
        {
            Configure(jwt, auth.Value);
            if (!auth.Value.RememberValidatedTokens) return;
            jwt.TokenHandlers.Clear();
            jwt.TokenHandlers.Add(cache);
        });
        services.AddAuthorization();
        services.AddSingleton<IAuthorizationMiddlewareResultHandler, GrpcAuthorizationResultHandler>();

        services.TryAddSingleton<AuditLog>();
        services.AddHostedService(sp => sp.GetRequiredService<AuditLog>());
        services.TryAddSingleton<WatchStreamQuota>();
        services.TryAddSingleton(sp => TlsSettings.From(sp.GetRequiredService<IConfiguration>()));
        // Singletons: resolved from DI the interceptors are not created per call.
        services.TryAddSingleton<AuditInterceptor>();
        services.TryAddSingleton<CallerAccessInterceptor>();
        // Stateless too; left to gRPC it would be built (and its logger resolved) on every call.
        services.TryAddSingleton<Grpc.ErrorMappingInterceptor>();
        services.AddLoyaltyRateLimits();
        services.Configure<GrpcServiceOptions>(options =>
        {
            // Audit outermost: it sees the status the client gets, after error mapping. Scope checks innermost: a grain
            // failure while resolving a card's member is mapped like any other.
            options.Interceptors.Add<AuditInterceptor>();
            var audit = options.Interceptors[^1];
            options.Interceptors.RemoveAt(options.Interceptors.Count - 1);
            options.Interceptors.Insert(0, audit);
            options.Interceptors.Add<CallerAccessInterceptor>();
        });
        return services;
    }

    /// <summary>The validation every node and the benchmark use: signature, iss, aud, exp/nbf with a small skew, known algorithms only.</summary>
    public static TokenValidationParameters ValidationParameters(LoyaltyAuthOptions options)
    {
        var keys = new List<SecurityKey>();
        var algorithms = new List<string>();
        foreach (var secret in options.SigningKeys()) keys.Add(new SymmetricSecurityKey(secret));
        if (keys.Count > 0) algorithms.Add(HmacAlgorithm);
        if (!string.IsNullOrWhiteSpace(options.PublicKeyPath)) keys.Add(LoadPublicKey(options.PublicKeyPath));
        if (!string.IsNullOrWhiteSpace(options.PublicKeyPath) || !string.IsNullOrWhiteSpace(options.Authority)) algorithms.AddRange(AsymmetricAlgorithms);
        return new TokenValidationParameters
        {
            ValidateIssuer = true,
            ValidIssuer = options.Issuer,
            ValidateAudience = true,
            ValidAudience = options.Audience,
            ValidateLifetime = true,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ValidateIssuerSigningKey = true,
            IssuerSigningKeys = keys,
            // Only these: "none" and anything unexpected (HS512, PS256, an HMAC made with a public key) are refused.
            ValidAlgorithms = algorithms,
            ClockSkew = options.ClockSkew,
            NameClaimType = LoyaltyClaims.Subject,
            RoleClaimType = LoyaltyClaims.Role,
        };
    }

    private static void Configure(JwtBearerOptions jwt, LoyaltyAuthOptions auth)
    {
        // Claim names as in the token ("sub", "role", "partner_id"), not mapped to WS-* URIs.
        jwt.MapInboundClaims = false;
        jwt.TokenValidationParameters = ValidationParameters(auth);
        if (!string.IsNullOrWhiteSpace(auth.Authority))
        {
            jwt.Authority = auth.Authority;
            jwt.RequireHttpsMetadata = auth.RequireHttpsMetadata;
            if (!string.IsNullOrWhiteSpace(auth.MetadataAddress)) jwt.MetadataAddress = auth.MetadataAddress;
        }
        jwt.Events = new JwtBearerEvents
        {
            OnTokenValidated = context =>
            {
                var caller = Caller.From(context.Principal);
                // Every action is attributed to someone: a token without a subject is not accepted.
                var problem = caller.Subject.Length == 0 ? "the bearer token has no subject (sub)"
                    : caller.Has(Roles.Partner) && caller.PartnerId.Length == 0 ? "a partner token needs a partner_id claim"
                    : null;
                if (problem is not null)
                {
                    var failure = new SecurityTokenValidationException(RejectedPrefix + problem);
                    context.HttpContext.Items[FailureItem] = failure;
                    context.Fail(failure);
                }
                return Task.CompletedTask;
            },
            // Authentication keeps a failed result to itself; the refusal's message needs the reason.
            OnAuthenticationFailed = context =>
            {
                context.HttpContext.Items[FailureItem] = context.Exception;
                return Task.CompletedTask;
            },
        };
    }

    private static SecurityKey LoadPublicKey(string path)
    {
        var pem = File.ReadAllText(path);
        if (pem.Contains("BEGIN CERTIFICATE", StringComparison.Ordinal))
        {
            var certificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(pem);
            return new X509SecurityKey(certificate);
        }
        // The PEM says "PUBLIC KEY" for both kinds: try EC, then RSA.
        var ec = ECDsa.Create();
        try
        {
            ec.ImportFromPem(pem);
            return new ECDsaSecurityKey(ec);
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            ec.Dispose();
            var rsa = RSA.Create();
            rsa.ImportFromPem(pem);
            return new RsaSecurityKey(rsa);
        }
    }

    /// <summary>
    /// The roles policy and rate-limit budget of each method of a <c>loyalty.v1</c> service, from <see cref="RpcAccess"/>
    /// (methods are read from the endpoints, so none is forgotten; one missing from the table is admin-only).
    /// </summary>
    public static GrpcServiceEndpointConventionBuilder RequireLoyaltyAccess(this GrpcServiceEndpointConventionBuilder builder)
    {
        builder.Add(endpoint =>
        {
            if (endpoint.Metadata.OfType<GrpcMethodMetadata>().FirstOrDefault() is not { } grpc) return;
            var rule = RpcAccess.For(grpc.Method.FullName);
            // No scheme named in the policy: the user the authentication middleware set (the default scheme, JwtBearer)
            // is used as is, instead of authenticating again and merging principals on every call.
            endpoint.Metadata.Add(new AuthorizationPolicyBuilder()
                .RequireRole(LoyaltyClaims.Names(rule.Roles))
                .Build());
            endpoint.Metadata.Add(new EnableRateLimitingAttribute(RateLimits.PolicyName(rule.Rate)));
        });
        return builder;
    }

    /// <summary>Server reflection lists the API to anyone, so it is served only when <c>Loyalty:Reflection</c> is true.</summary>
    public static bool ReflectionEnabled(IEndpointRouteBuilder endpoints) =>
        endpoints.ServiceProvider.GetRequiredService<IConfiguration>().GetValue(ReflectionKey, false);
}
