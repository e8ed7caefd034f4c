using Microsoft.AspNetCore.Http.HttpResults;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Access;

/// <summary><c>POST /api/keys</c>: a key to create. Admins create keys of their own tenant; owners of any, created on first use.</summary>
public sealed record CreateKeyRequest
{
    /// <summary>The tenant (1–64 of a–z, 0–9, '-', '_'); default: the caller's.</summary>
    public string? Tenant { get; init; }
    /// <summary><c>viewer</c>, <c>member</c>, <c>admin</c> or (owners only) <c>owner</c>.</summary>
    public string? Role { get; init; }
    /// <summary>What the key is for, e.g. "ci" or "alice's laptop" (1–256 characters).</summary>
    public string? Name { get; init; }
}

/// <summary>A created key: <see cref="Key"/> is shown this once.</summary>
public sealed record CreatedKeyResponse(string Id, string Key, string Tenant, string Role, string Name);

/// <summary><c>GET /api/me</c>.</summary>
public sealed record MeResponse(string? KeyId, string Tenant, string Role);

/// <summary>Keys: create (shown once), list (never secrets), revoke (every process drops it at once), and who am I.</summary>
public static class KeyEndpoints
{
    public static IEndpointRouteBuilder MapKeyEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/keys").WithTags("Keys");
        group.MapPost("/", Create).WithName("CreateKey").RequireRole(Role.Admin)
            .WithSummary("Create an API key (the secret is in this response only)")
            .WithJsonExample(new { tenant = "vision-team", role = "member", name = "ci" });
        group.MapGet("/", List).WithName("ListKeys").RequireRole(Role.Admin)
            .WithSummary("Keys of the caller's tenant (owners: every tenant, or ?tenant=), never their secrets");
        group.MapDelete("/{id}", Revoke).WithName("RevokeKey").RequireRole(Role.Admin)
            .WithSummary("Revoke a key; every API process refuses it from the moment this returns");
        app.MapGet("/api/me", Me).WithTags("Keys").WithName("Me").RequireRole(Role.Viewer).WithSummary("The caller's key id, tenant and role");
        return app;
    }

    private static async Task<Results<Created<CreatedKeyResponse>, ProblemHttpResult>> Create(CreateKeyRequest request, HttpContext http,
        KeyStore store, ILogger<KeyStore> logger, CancellationToken cancellationToken)
    {
        var caller = http.Caller();
        if (Check(request, caller) is { } problem)
        {
            return problem.ToResult();
        }
        string tenant = request.Tenant ?? caller.Tenant;
        Roles.TryParse(request.Role, out var role);
        var (id, key, hash) = ApiKeyFormat.Create();
        if (!await store.CreateAsync(id, hash, tenant, role, request.Name!, caller.KeyId ?? "local", createTenant: caller.Role == Role.Owner, cancellationToken))
        {
            return Problems.NotFound("auth.unknown_tenant", $"No tenant '{tenant}'.");
        }
        logger.LogInformation("Key {KeyId} ({Role}) created for tenant {Tenant} by {CreatedBy}", id, role.Name(), tenant, caller.KeyId ?? "local");
        return TypedResults.Created($"/api/keys/{id}", new CreatedKeyResponse(id, key, tenant, role.Name(), request.Name!));
    }

    /// <summary>What a create request can get wrong, in field order; an admin may not leave its tenant or make an owner.</summary>
    private static ApiProblem? Check(CreateKeyRequest request, Caller caller)
    {
        if (request.Tenant is not null && !TenantName.IsValid(request.Tenant))
        {
            return ApiProblem.BadRequest("auth.invalid_tenant", "tenant must be 1–64 lowercase letters, digits, '-' or '_', starting with a letter or digit.", "tenant");
        }
        if (!Roles.TryParse(request.Role, out var role))
        {
            return ApiProblem.BadRequest("auth.invalid_role", "role must be viewer, member, admin or owner.", "role");
        }
        if (string.IsNullOrWhiteSpace(request.Name) || request.Name.Length > 256)
        {
            return ApiProblem.BadRequest("auth.invalid_key_name", "name must be 1–256 characters and not blank.", "name");
        }
        if (caller.Role != Role.Owner && request.Tenant is not null && request.Tenant != caller.Tenant)
        {
            return ApiProblem.Forbidden("auth.forbidden", "An admin creates keys of its own tenant only.", "tenant");
        }
        if (role > caller.Role)
        {
            return ApiProblem.Forbidden("auth.forbidden", $"A {caller.Role.Name()} cannot create a key with role {role.Name()}.", "role");
        }
        return null;
    }

    private static async Task<Ok<List<KeyInfo>>> List(HttpContext http, KeyStore store, string? tenant, CancellationToken cancellationToken)
    {
        var caller = http.Caller();
        return TypedResults.Ok(await store.ListAsync(caller.Role == Role.Owner ? tenant : caller.Tenant, cancellationToken));
    }

    private static async Task<Results<Ok<KeyInfo>, ProblemHttpResult>> Revoke(string id, HttpContext http, KeyStore store, KeyCache cache,
        ILogger<KeyStore> logger, CancellationToken cancellationToken)
    {
        var caller = http.Caller();
        var revoked = id.Length <= 32 ? await store.RevokeAsync(id, caller.Role == Role.Owner ? null : caller.Tenant, caller.KeyId ?? "local", cancellationToken) : null;
        if (revoked is null)
        {
            return Problems.NotFound("auth.key_not_found", $"No key {id}.");
        }
        cache.Evict(id);
        logger.LogInformation("Key {KeyId} of tenant {Tenant} revoked by {RevokedBy}", id, revoked.Tenant, caller.KeyId ?? "local");
        return TypedResults.Ok(revoked);
    }

    private static Ok<MeResponse> Me(HttpContext http)
    {
        var caller = http.Caller();
        return TypedResults.Ok(new MeResponse(caller.KeyId, caller.Tenant, caller.Role.Name()));
    }
}
