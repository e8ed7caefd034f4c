using Microsoft.Extensions.Primitives;

namespace TrainingService.Server.Infrastructure;

/// <summary>
/// Headers every response carries, written as the response starts (so error pages, 304s and static files get them too):
/// a content security policy, no MIME sniffing, no framing (clickjacking), no referrer, and <c>Cache-Control: no-store</c>
/// on the API, whose answers are one tenant's data and must not stay in a shared browser's or proxy's cache.
/// </summary>
public static class SecurityHeaders
{
    /// <summary>
    /// The dashboard (index.html, dashboard.js, dashboard.css, uPlot): its own files only, no inline script or style
    /// (uPlot sizes its elements through the CSSOM, which a policy does not govern), requests to this origin only.
    /// </summary>
    public const string DashboardPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    /// <summary>Swagger UI's page starts itself with inline script and style, so /swagger alone allows them.</summary>
    public const string SwaggerPolicy = "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    /// <summary>API answers (JSON, CSV, problems, event streams) are data: a browser that renders one runs nothing.</summary>
    public const string ApiPolicy = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private static readonly StringValues Dashboard = DashboardPolicy, Swagger = SwaggerPolicy, Api = ApiPolicy;
    private static readonly StringValues NoSniff = "nosniff", Deny = "DENY", NoReferrer = "no-referrer", NoStore = "no-store";

    public static IApplicationBuilder UseSecurityHeaders(this IApplicationBuilder app) => app.Use(static (context, next) =>
    {
        // A static callback with the context as its state: nothing allocated per request but the registration.
        context.Response.OnStarting(static state => Write((HttpContext)state), context);
        return next(context);
    });

    private static Task Write(HttpContext context)
    {
        var path = context.Request.Path;
        var headers = context.Response.Headers;
        bool api = path.StartsWithSegments("/api", StringComparison.OrdinalIgnoreCase);
        headers.ContentSecurityPolicy = api || path.StartsWithSegments("/health", StringComparison.OrdinalIgnoreCase) ? Api
            : path.StartsWithSegments("/swagger", StringComparison.OrdinalIgnoreCase) ? Swagger
            : Dashboard;
        headers.XContentTypeOptions = NoSniff;
        headers.XFrameOptions = Deny;
        headers["Referrer-Policy"] = NoReferrer;
        if (api)
        {
            headers.CacheControl = NoStore;
        }
        return Task.CompletedTask;
    }
}
