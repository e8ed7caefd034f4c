using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using TrainingService.Server.Configuration;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Access;

/// <summary>Set by <see cref="BrowserAccess.ChecksItsOwnMediaType"/>: the route reads a body other than JSON and refuses the rest itself.</summary>
public sealed record OwnMediaTypeCheck;

/// <summary>
/// What a browser may do with the API. Cross-site request forgery needs a request a page can make without the user's
/// credential reaching its script: keys travel only in headers a page on another origin cannot set without a preflight
/// (which CORS refuses unless <see cref="Configuration.CorsOptions.AllowedOrigins"/> names it), and a state-changing route
/// takes JSON only (415 otherwise), so a form post or <c>text/plain</c> beacon is refused even where it carries something.
/// In no-auth mode there is no key to withhold, so a state-changing request from a foreign <c>Origin</c> is refused too.
/// </summary>
public static class BrowserAccess
{
    /// <summary>Headers a page on an allowed origin may send and read.</summary>
    private static readonly string[] RequestHeaders = ["Authorization", ApiKeyAuthentication.KeyHeader, "Content-Type", "If-None-Match", "Idempotency-Key", "Last-Event-ID"];
    private static readonly string[] ResponseHeaders = ["ETag", "Location", "Retry-After", "WWW-Authenticate"];

    public static IServiceCollection AddBrowserAccess(this IServiceCollection services)
    {
        services.AddCors();
        services.AddOptions<Microsoft.AspNetCore.Cors.Infrastructure.CorsOptions>().Configure<IOptions<CorsOptions>>((cors, allowed) =>
            cors.AddDefaultPolicy(policy => policy.WithOrigins(allowed.Value.AllowedOrigins.Select(o => o.TrimEnd('/')).ToArray())
                .WithMethods("GET", "POST", "DELETE").WithHeaders(RequestHeaders).WithExposedHeaders(ResponseHeaders)
                .SetPreflightMaxAge(allowed.Value.PreflightMaxAge)));
        return services;
    }

    /// <summary>CORS (only when origins are allowed; it answers preflights before authentication), for UseAccess.</summary>
    public static void UseCrossOrigin(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<CorsOptions>>().Value.AllowedOrigins.Length > 0)
        {
            app.UseCors();
        }
    }

    /// <summary>After authorization, so a request without a key is a 401 whatever its body.</summary>
    public static void UseForgeryChecks(this WebApplication app)
    {
        var auth = app.Services.GetRequiredService<IOptions<AuthOptions>>().Value;
        var allowed = new HashSet<string>(app.Services.GetRequiredService<IOptions<CorsOptions>>().Value.AllowedOrigins.Select(o => o.TrimEnd('/')),
            StringComparer.OrdinalIgnoreCase);
        app.Use((context, next) =>
            IsUnauthenticatedRefusal(context) ? context.ChallengeAsync()
            : Check(context, auth.Mode == AuthMode.None, allowed) is { } problem ? problem.ToResult().ExecuteAsync(context)
            : next(context));
    }

    /// <summary>
    /// Routing answers a body type a route does not take with the framework's own 415 endpoint, chosen before any
    /// authorization and carrying none; without a valid key that request still gets the 401 of every API route.
    /// </summary>
    private static bool IsUnauthenticatedRefusal(HttpContext context) =>
        context.GetEndpoint()?.DisplayName == "415 HTTP Unsupported Media Type" && context.User.Identity?.IsAuthenticated != true
        && context.Request.Path.StartsWithSegments("/api", StringComparison.OrdinalIgnoreCase);

    /// <summary>Marks a route that takes a body other than JSON (a CSV upload) and checks its media type itself.</summary>
    public static TBuilder ChecksItsOwnMediaType<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new OwnMediaTypeCheck());

    private static ApiProblem? Check(HttpContext context, bool noAuth, HashSet<string> allowedOrigins)
    {
        var request = context.Request;
        var metadata = context.GetEndpoint()?.Metadata;
        if (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || metadata is null)
        {
            return null;
        }
        if (noAuth && IsForeign(request, allowedOrigins))
        {
            return ApiProblem.Forbidden("auth.cross_origin",
                "A page on another origin may not change anything here (Auth:Mode is none; Cors:AllowedOrigins names the origins that may).");
        }
        // API routes (each declares its role); the framework's own 405 and 415 endpoints keep their answers.
        if (metadata.GetMetadata<RequiredRole>() is null)
        {
            return null;
        }
        bool hasBody = request.ContentLength > 0 || request.Headers.TransferEncoding.Count > 0;
        bool json = request.ContentType is null ? !hasBody : request.HasJsonContentType();
        return json || metadata.GetMetadata<OwnMediaTypeCheck>() is not null ? null
            : ApiProblem.UnsupportedMediaType("request.unsupported_media_type",
                $"This route takes application/json (or no body), not {request.ContentType ?? "a body without Content-Type"}.");
    }

    /// <summary>An <c>Origin</c> that is neither this server's nor allowed; none (not a browser, or an old one) is not foreign.</summary>
    private static bool IsForeign(HttpRequest request, HashSet<string> allowedOrigins)
    {
        string? origin = request.Headers.Origin;
        return origin is not null && !origin.Equals($"{request.Scheme}://{request.Host}", StringComparison.OrdinalIgnoreCase) && !allowedOrigins.Contains(origin);
    }
}
