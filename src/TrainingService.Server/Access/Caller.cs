using System.Security.Claims;

namespace TrainingService.Server.Access;

/// <summary>
/// Who is calling: the key (null in no-auth mode), its tenant and its role. Every read and write of tenant data is scoped
/// to <see cref="Tenant"/>; endpoints get it with <see cref="CallerExtensions.Caller"/>.
/// </summary>
public sealed record Caller(string? KeyId, string Tenant, Role Role)
{
    public const string TenantClaim = "ts:tenant";
    public const string RoleClaim = "ts:role";
    public const string KeyClaim = "ts:key";

    /// <summary>The one caller of no-auth mode.</summary>
    public static Caller Local(string tenant) => new(null, tenant, Role.Owner);

    public bool IsAtLeast(Role role) => Role >= role;

    public ClaimsPrincipal ToPrincipal(string scheme)
    {
        var claims = new List<Claim> { new(TenantClaim, Tenant), new(RoleClaim, Role.Name()) };
        if (KeyId is not null)
        {
            claims.Add(new Claim(KeyClaim, KeyId));
        }
        return new ClaimsPrincipal(new ClaimsIdentity(claims, scheme));
    }

    public static Caller? FromPrincipal(ClaimsPrincipal principal) =>
        principal.FindFirst(TenantClaim)?.Value is { } tenant && Roles.TryParse(principal.FindFirst(RoleClaim)?.Value, out var role)
            ? new Caller(principal.FindFirst(KeyClaim)?.Value, tenant, role)
            : null;
}

public static class CallerExtensions
{
    /// <summary>
    /// The authenticated caller. Every API route requires authorization (a fallback policy covers any route that forgets),
    /// so a handler that runs has one; its absence is a bug, not a client error.
    /// </summary>
    public static Caller Caller(this HttpContext context) =>
        context.Features.Get<Caller>() ?? Access.Caller.FromPrincipal(context.User)
        ?? throw new InvalidOperationException($"No caller on {context.Request.Path}: the route is missing its RequireRole.");
}
