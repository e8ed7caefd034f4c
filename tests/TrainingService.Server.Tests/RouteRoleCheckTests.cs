using Microsoft.AspNetCore.Builder;
using TrainingService.Server.Access;

namespace TrainingService.Server.Tests;

/// <summary>A route under /api without a role stops the process at start; the service's own routes all have one.</summary>
public sealed class RouteRoleCheckTests
{
    [Fact]
    public async Task An_api_route_without_a_role_is_refused_at_start()
    {
        await using var app = WebApplication.CreateBuilder().Build();
        app.MapGet("/api/declared", () => "ok").RequireRole(Role.Viewer);
        app.MapGet("/health/anything", () => "ok");
        app.MapGet("/api/forgotten", () => "oops");

        var refused = Assert.Throws<InvalidOperationException>(() => AccessSetup.CheckEveryApiRouteHasARole(app));

        Assert.Contains("/api/forgotten", refused.Message);
        Assert.DoesNotContain("/api/declared", refused.Message);
        Assert.DoesNotContain("/health", refused.Message);
    }

    [Fact]
    public async Task Anonymous_and_declared_api_routes_pass()
    {
        await using var app = WebApplication.CreateBuilder().Build();
        app.MapGet("/api/declared", () => "ok").RequireRole(Role.Member);
        app.MapGet("/api/public", () => "ok").AllowAnonymous();

        AccessSetup.CheckEveryApiRouteHasARole(app);
    }
}
