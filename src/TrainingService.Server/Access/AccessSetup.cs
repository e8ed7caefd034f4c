using System.Net;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using TrainingService.Server.Configuration;

namespace TrainingService.Server.Access;

/// <summary>
/// API keys, tenants and roles: the authentication scheme and one policy per role (each admitting the roles above it).
/// A route under <c>/api</c> that forgets <see cref="RequireRole"/> stops the process at start
/// (<see cref="CheckEveryApiRouteHasARole"/>), so it is never served open.
/// </summary>
public static class AccessSetup
{
    public static IServiceCollection AddAccess(this IServiceCollection services, ServiceOptions service)
    {
        services.AddSingleton<KeyStore>();
        services.AddSingleton<KeyCache>();
        services.AddSingleton<OwnerKeys>();
        if (!service.ServesApi)
        {
            return services; // a worker answers health endpoints only; it has no callers to authenticate
        }
        services.AddHostedService(provider => provider.GetRequiredService<KeyCache>());
        services.AddAuthentication(ApiKeyAuthentication.SchemeName)
            .AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, ApiKeyAuthentication>(ApiKeyAuthentication.SchemeName, null);
        services.AddAuthorization(options =>
        {
            foreach (var role in Enum.GetValues<Role>())
            {
                options.AddPolicy(role.Policy(), policy => policy.RequireAuthenticatedUser()
                    .RequireAssertion(context => Caller.FromPrincipal(context.User)?.IsAtLeast(role) == true));
            }
        });
        services.AddRequestRates();
        services.AddBrowserAccess();
        services.AddApiKeyDocs();
        return services;
    }

    /// <summary>CORS preflights first (when origins are allowed), then keys and roles, then the checks against forged requests.</summary>
    public static WebApplication UseAccess(this WebApplication app)
    {
        app.UseCrossOrigin();
        app.UseAuthentication();
        app.UseRateLimiter(); // after authentication: the partition is the caller's key
        app.UseAuthorization();
        app.UseForgeryChecks();
        return app;
    }

    /// <summary>
    /// Throws at start when a route under <c>/api</c> declares neither a role nor anonymous access. (A fallback
    /// authorization policy would close such a route too, but it also applies to requests that match no route, turning
    /// an unknown path or a wrong method into 401/403 instead of 404/405.)
    /// </summary>
    public static void CheckEveryApiRouteHasARole(IEndpointRouteBuilder app)
    {
        var open = app.DataSources.SelectMany(source => source.Endpoints).OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText?.StartsWith("/api", StringComparison.OrdinalIgnoreCase) == true)
            .Where(e => e.Metadata.GetMetadata<RequiredRole>() is null && e.Metadata.GetMetadata<IAllowAnonymous>() is null)
            .Select(e => e.DisplayName ?? e.RoutePattern.RawText)
            .ToList();
        if (open.Count > 0)
        {
            throw new InvalidOperationException($"Routes without RequireRole: {string.Join(", ", open)}.");
        }
    }

    /// <summary>The least role that may call this route (every role above it may too).</summary>
    public static TBuilder RequireRole<TBuilder>(this TBuilder builder, Role role) where TBuilder : IEndpointConventionBuilder =>
        builder.RequireAuthorization(role.Policy()).WithMetadata(new RequiredRole(role));

    /// <summary>
    /// No-auth mode is for one user on a laptop: null when every address this process will listen on is loopback (or when
    /// keys are on), else why not. Reads the same settings Kestrel does: <c>urls</c>, <c>http_ports</c>/<c>https_ports</c>
    /// (every interface) and <c>Kestrel:Endpoints:*:Url</c>; with none, Kestrel listens on localhost.
    /// </summary>
    public static string? CheckNoAuthAddresses(IConfiguration configuration)
    {
        if (configuration.GetSection("Auth")["Mode"] is not { } mode || !mode.Equals(nameof(AuthMode.None), StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }
        var urls = (configuration["urls"] ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Concat(configuration.GetSection("Kestrel:Endpoints").GetChildren().Select(e => e["Url"] ?? ""))
            .ToList();
        if (!string.IsNullOrEmpty(configuration["http_ports"]) || !string.IsNullOrEmpty(configuration["https_ports"]))
        {
            urls.Add("http://*:" + (configuration["http_ports"] ?? configuration["https_ports"]));
        }
        var open = urls.Where(url => !IsLoopback(url)).ToList();
        return open.Count == 0 ? null
            : $"Auth:Mode is none, which is only allowed when every listening address is loopback; not: {string.Join(", ", open)}. " +
              "Use API keys (Auth:Mode=keys), or listen on 127.0.0.1 or localhost only.";
    }

    /// <summary>The addresses Kestrel actually bound, checked again once it has started (a second line after the settings).</summary>
    public static string? CheckNoAuthAddresses(IServer server, IOptions<AuthOptions> auth)
    {
        if (auth.Value.Mode != AuthMode.None)
        {
            return null;
        }
        var open = server.Features.Get<IServerAddressesFeature>()?.Addresses.Where(a => !IsLoopback(a)).ToList() ?? [];
        return open.Count == 0 ? null : $"Auth:Mode is none but the server listens on {string.Join(", ", open)}, which is not loopback.";
    }

    private static bool IsLoopback(string url)
    {
        int scheme = url.IndexOf("://", StringComparison.Ordinal);
        string rest = scheme >= 0 ? url[(scheme + 3)..] : url;
        string host = rest.StartsWith('[') ? rest[1..Math.Max(1, rest.IndexOf(']'))] : rest.Split(':', '/')[0];
        return host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));
    }
}
