using Microsoft.Extensions.Options;
using Npgsql;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using TrainingService.Server.Access;
using TrainingService.Server.Configuration;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Telemetry;

/// <summary>
/// OpenTelemetry: the service's own traces and metrics (<see cref="Instruments"/>), ASP.NET Core's and Npgsql's, a
/// Prometheus scrape endpoint (<see cref="TelemetryOptions"/>), and OTLP export when the standard
/// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> variable is set. Log lines written inside a span carry its trace and span ids.
/// </summary>
public static class TelemetrySetup
{
    public static IServiceCollection AddTelemetry(this IServiceCollection services, IConfiguration configuration, ServiceOptions service)
    {
        bool otlp = !string.IsNullOrEmpty(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        services.Configure<LoggerFactoryOptions>(o => o.ActivityTrackingOptions = ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId);
        var telemetry = services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("trainingservice", serviceInstanceId: $"{Environment.MachineName}:{Environment.ProcessId}"))
            .WithTracing(tracing =>
            {
                tracing.AddSource(Instruments.Name).AddAspNetCoreInstrumentation(o => o.Filter = context => !context.Request.Path.StartsWithSegments("/health"));
                if (otlp)
                {
                    tracing.AddNpgsql(); // a span per command: only worth its cost when someone reads them
                }
            })
            .WithMetrics(metrics => metrics.AddMeter(Instruments.Name, "Npgsql").AddAspNetCoreInstrumentation().AddPrometheusExporter());
        if (otlp)
        {
            telemetry.UseOtlpExporter();
        }
        if (service.ServesApi)
        {
            services.AddHostedService<JobGauges>();
        }
        return services;
    }

    /// <summary>
    /// Maps <c>/metrics</c>: on a port of its own without a key when <see cref="TelemetryOptions.MetricsPort"/> is set (every
    /// process, workers too), else on the API's port to owner keys only; or nowhere.
    /// </summary>
    public static void MapMetrics(this WebApplication app, ServiceOptions service)
    {
        var options = app.Services.GetRequiredService<IOptions<TelemetryOptions>>().Value;
        if (!options.Metrics)
        {
            return;
        }
        if (options.MetricsPort > 0)
        {
            // An address added here replaces the configured ones rather than joining them: carry those over first.
            foreach (string url in ConfiguredUrls(app.Configuration))
            {
                app.Urls.Add(url);
            }
            app.Urls.Add($"http://*:{options.MetricsPort}");
            app.MapPrometheusScrapingEndpoint().RequireHost($"*:{options.MetricsPort}").AllowAnonymous().ExcludeFromDescription();
        }
        else if (service.ServesApi)
        {
            app.MapPrometheusScrapingEndpoint().RequireRole(Role.Owner).ExcludeFromDescription();
        }
    }

    /// <summary>The addresses the host would listen on by itself: <c>urls</c>, else <c>http_ports</c>, else ASP.NET Core's default.</summary>
    private static IEnumerable<string> ConfiguredUrls(IConfiguration configuration)
    {
        var split = StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries;
        if (configuration["urls"] is { Length: > 0 } urls)
        {
            return urls.Split(';', split);
        }
        if (configuration["http_ports"] is { Length: > 0 } ports)
        {
            return ports.Split(';', split).Select(port => $"http://*:{port}");
        }
        return ["http://localhost:5000"];
    }
}
