using Microsoft.AspNetCore.Mvc;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace TrainingService.Server.Access;

/// <summary>
/// The key in the OpenAPI document: two security schemes (a bearer token, and the <c>X-Api-Key</c> header for tools that
/// cannot set Authorization), so Swagger UI's "Authorize" sends a key, and on every operation that needs a role the
/// requirement, the role in its description, and its 401, 403 and 404 problems.
/// </summary>
public static class ApiKeyDocs
{
    public const string BearerScheme = "bearer";
    public const string HeaderScheme = "apiKeyHeader";

    public static void AddApiKeyDocs(this IServiceCollection services) => services.ConfigureSwaggerGen(c =>
    {
        c.AddSecurityDefinition(BearerScheme, new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            BearerFormat = "ts_<id>_<secret>",
            Description = "An API key: Authorization: Bearer ts_…",
        });
        c.AddSecurityDefinition(HeaderScheme, new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.ApiKey,
            In = ParameterLocation.Header,
            Name = ApiKeyAuthentication.KeyHeader,
            Description = "The same key in the X-Api-Key header, for tools that cannot set Authorization.",
        });
        c.OperationFilter<RequiredRoleFilter>();
    });
}

/// <summary>Reads each operation's <see cref="RequiredRole"/> (set by <see cref="AccessSetup.RequireRole"/>).</summary>
internal sealed class RequiredRoleFilter : IOperationFilter
{
    private static readonly (int Status, string Description)[] Refusals =
    [
        (StatusCodes.Status401Unauthorized, "No API key (auth.missing_key), or one that is malformed, unknown, revoked or has the wrong secret (auth.invalid_key)."),
        (StatusCodes.Status403Forbidden, "The key's role is below the one this operation requires (auth.forbidden, with requiredRole)."),
        (StatusCodes.Status404NotFound, "No such resource in the caller's tenant (another tenant's id answers exactly the same)."),
    ];

    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        var role = context.ApiDescription.ActionDescriptor.EndpointMetadata.OfType<RequiredRole>().FirstOrDefault();
        if (role is null)
        {
            return;
        }
        operation.Security =
        [
            new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiKeyDocs.BearerScheme, context.Document)] = [] },
            new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiKeyDocs.HeaderScheme, context.Document)] = [] },
        ];
        string requires = $"Requires role: {role.Role.Name()} (or above).";
        operation.Description = string.IsNullOrEmpty(operation.Description) ? requires : $"{operation.Description}\n\n{requires}";
        operation.Responses ??= [];
        var problem = context.SchemaGenerator.GenerateSchema(typeof(ProblemDetails), context.SchemaRepository);
        foreach (var (status, description) in Refusals)
        {
            string key = status.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (operation.Responses.TryGetValue(key, out var existing) && existing is OpenApiResponse documented)
            {
                documented.Description = description;
                continue;
            }
            operation.Responses[key] = new OpenApiResponse
            {
                Description = description,
                Content = new Dictionary<string, IOpenApiMediaType> { ["application/problem+json"] = new OpenApiMediaType { Schema = problem } },
            };
        }
    }
}
