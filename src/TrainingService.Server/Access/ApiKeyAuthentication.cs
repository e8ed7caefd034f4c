using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using TrainingService.Server.Configuration;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Access;

/// <summary>What a route needs, for the 403 problem and the OpenAPI document; set by <see cref="AccessSetup.RequireRole"/>.</summary>
public sealed record RequiredRole(Role Role);

/// <summary>
/// Reads <c>Authorization: Bearer ts_…</c> (or <c>X-Api-Key</c>) and turns it into a <see cref="Caller"/>. Every way a
/// presented key can be wrong (malformed, unknown, wrong secret, revoked) gets the same 401 problem after the same work
/// (a SHA-256 and a constant-time comparison), so neither the answer nor its timing tells a key id that exists from one
/// that does not. A missing key is a 401 of its own code. In no-auth mode every caller is the local owner.
/// </summary>
public sealed class ApiKeyAuthentication(IOptionsMonitor<AuthenticationSchemeOptions> schemeOptions, ILoggerFactory loggerFactory,
    UrlEncoder encoder, KeyCache keys, IOptions<AuthOptions> auth) : AuthenticationHandler<AuthenticationSchemeOptions>(schemeOptions, loggerFactory, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string KeyHeader = "X-Api-Key";

    private static readonly byte[] NoHash = new byte[32];

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (auth.Value.Mode == AuthMode.None)
        {
            return Success(Caller.Local(auth.Value.OwnerTenant));
        }
        string? presented = Presented(Request);
        if (presented is null)
        {
            return AuthenticateResult.NoResult();
        }
        bool wellFormed = ApiKeyFormat.TryParse(presented, out string id, out string secret);
        var key = wellFormed ? await keys.FindAsync(id, Context.RequestAborted) : null;
        bool matches = ApiKeyFormat.Matches(wellFormed ? secret : presented, key?.SecretHash ?? NoHash);
        if (key is null || key.Revoked || !matches)
        {
            return AuthenticateResult.Fail("The API key is not valid.");
        }
        return Success(new Caller(key.Id, key.Tenant, key.Role));
    }

    private AuthenticateResult Success(Caller caller)
    {
        Context.Features.Set(caller);
        return AuthenticateResult.Success(new AuthenticationTicket(caller.ToPrincipal(SchemeName), SchemeName));
    }

    /// <summary>The key a request presents: a bearer token, else the X-Api-Key header; any other Authorization is a bad key.</summary>
    private static string? Presented(HttpRequest request)
    {
        string? authorization = request.Headers.Authorization.FirstOrDefault();
        if (authorization is not null)
        {
            return authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? authorization[7..].Trim() : authorization;
        }
        return request.Headers[KeyHeader].FirstOrDefault();
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        bool presented = Presented(Request) is not null;
        Response.Headers.WWWAuthenticate = "Bearer realm=\"TrainingService\"";
        var problem = presented
            ? ApiProblem.Unauthorized("auth.invalid_key",
                "The API key is not valid: it is malformed, unknown, revoked, or its secret is wrong.")
            : ApiProblem.Unauthorized("auth.missing_key",
                $"This needs an API key: send 'Authorization: Bearer ts_…' (or '{KeyHeader}: ts_…').");
        await problem.ToResult().ExecuteAsync(Context);
    }

    protected override async Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        var needed = Context.GetEndpoint()?.Metadata.GetMetadata<RequiredRole>()?.Role ?? Role.Owner;
        var caller = Caller.FromPrincipal(Context.User);
        var problem = ApiProblem.Forbidden("auth.forbidden",
            $"This needs the {needed.Name()} role; this key is {caller?.Role.Name() ?? "unknown"}.",
            extensions: new Dictionary<string, object?> { ["requiredRole"] = needed.Name() });
        await problem.ToResult().ExecuteAsync(Context);
    }
}
