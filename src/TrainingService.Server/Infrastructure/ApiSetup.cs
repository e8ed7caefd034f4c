using System.Reflection;
using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.OpenApi;
using Npgsql;

namespace TrainingService.Server.Infrastructure;

public static class ApiSetup
{
    /// <summary>JSON conventions, problem details, the exception handler, Swagger and the database health check.</summary>
    public static IServiceCollection AddApiBasics(this IServiceCollection services)
    {
        services.Configure<JsonOptions>(o => ApiJson.ConfigureRequests(o.SerializerOptions));
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        // Problems the framework writes itself (unknown route, wrong method) get a code too.
        services.AddProblemDetails(o => o.CustomizeProblemDetails = context =>
        {
            if (!context.ProblemDetails.Extensions.ContainsKey("code"))
            {
                context.ProblemDetails.Extensions["code"] = context.ProblemDetails.Status switch
                {
                    404 => "route.not_found",
                    405 => "request.method_not_allowed",
                    413 => "request.too_large",
                    415 => "request.unsupported_media_type",
                    400 => "request.invalid",
                    var status => $"http.{status}",
                };
            }
        });
        services.AddExceptionHandler<ApiExceptionHandler>();
        services.AddEndpointsApiExplorer();
        services.AddSwaggerGen(c =>
        {
            c.SwaggerDoc("v1", new OpenApiInfo
            {
                Title = "TrainingService",
                Version = "v1",
                Description = "Upload tabular datasets, train linear models and small MLPs with ILGPU kernels, and read loss histories.",
            });
            c.OperationFilter<RequestExampleFilter>();
            var xml = Path.Combine(AppContext.BaseDirectory, $"{Assembly.GetExecutingAssembly().GetName().Name}.xml");
            if (File.Exists(xml))
            {
                c.IncludeXmlComments(xml);
            }
        });
        services.AddHealthChecks().AddCheck<PostgresHealthCheck>("postgres", tags: ["ready"]);
        return services;
    }

    /// <summary>Security headers and error handling first, then the health endpoints (every role serves these).</summary>
    public static WebApplication UseApiBasics(this WebApplication app)
    {
        app.UseSecurityHeaders();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false, ResponseWriter = WriteHealth }).AllowAnonymous();
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains("ready"), ResponseWriter = WriteHealth })
            .AllowAnonymous();
        return app;
    }

    /// <summary>The OpenAPI document and Swagger UI at /swagger: API processes only (a worker answers health endpoints alone).</summary>
    public static WebApplication UseApiDocs(this WebApplication app)
    {
        app.UseSwagger();
        app.UseSwaggerUI(o => o.DocumentTitle = "TrainingService API");
        return app;
    }

    // Statuses, descriptions and numbers only: the endpoint is public, so exception text (hosts, ports) goes to the log.
    private static Task WriteHealth(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(JsonSerializer.Serialize(new
        {
            status = report.Status.ToString().ToLowerInvariant(),
            checks = report.Entries.ToDictionary(e => e.Key, e => new
            {
                status = e.Value.Status.ToString().ToLowerInvariant(),
                description = e.Value.Description,
                data = e.Value.Data.Count > 0 ? e.Value.Data : null,
            }),
        }, ApiJson.Options));
    }
}

internal sealed class PostgresHealthCheck(NpgsqlDataSource dataSource, ILogger<PostgresHealthCheck> logger) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await using var command = dataSource.CreateCommand("SELECT 1");
            await command.ExecuteScalarAsync(cancellationToken);
            return HealthCheckResult.Healthy("PostgreSQL answers.");
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            logger.LogWarning(e, "Readiness: PostgreSQL is unreachable");
            return HealthCheckResult.Unhealthy("PostgreSQL is unreachable.");
        }
    }
}
