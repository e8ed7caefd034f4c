using System.Net;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using TrainingService.Server.Configuration;

namespace TrainingService.Server.Access;

/// <summary>
/// API keys, tenants and roles: the authentication scheme, one policy per role (each admitting the roles above it), and a
/// fallback policy of <see cref="Role.Owner"/>, so a route that forgets <see cref="RequireRole"/> is closed, not open.
/// </summary>
public static class AccessSetup
{
    public static IServiceCollection AddAccess(this IServiceCollection services, ServiceOptions service)
    {
        services.AddSingleton<KeyStore>();
        services.AddSingleton<KeyCache>();
        services.AddSingleton<OwnerKeys>();
        if (service.ServesApi)
        {
            services.AddHostedService(provider => provider.GetRequiredService<KeyCache>());
        }
        services.AddAuthentication(ApiKeyAuthentication.SchemeName)
            .AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, ApiKeyAuthentication>(ApiKeyAuthentication.SchemeName, null);
        services.AddAuthorization(options =>
        {
            foreach (var role in Enum.GetValues<Role>())
            {
                options.AddPolicy(role.Policy(), policy => policy.RequireAuthenticatedUser()
                    .RequireAssertion(context => Caller.FromPrincipal(context.User)?.IsAtLeast(role) == true));
            }
            options.FallbackPolicy = options.GetPolicy(Role.Owner.Policy());
        });
        services.AddBrowserAccess();
        services.AddApiKeyDocs();
        return services;
    }

    /// <summary>CORS preflights first (when origins are allowed), then keys and roles, then the checks against forged requests.</summary>
    public static WebApplication UseAccess(this WebApplication app)
    {
        app.UseCrossOrigin();
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseForgeryChecks();
        return app;
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
