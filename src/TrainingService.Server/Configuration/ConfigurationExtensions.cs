using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;
using TrainingService.Compute.Training;

namespace TrainingService.Server.Configuration;

public static class ConfigurationExtensions
{
    /// <summary>Maps <c>--role</c> to <c>Service:Role</c> so <c>--role worker</c> works on the command line.</summary>
    public static void AddRoleSwitch(this ConfigurationManager configuration, string[] args) =>
        configuration.AddCommandLine(args, new Dictionary<string, string> { ["--role"] = "Service:Role" });

    /// <summary>
    /// Binds every options class to its section, validates data annotations, and fails at start (naming the setting)
    /// rather than at first use.
    /// </summary>
    public static IServiceCollection AddServiceOptions(this IServiceCollection services, IConfiguration configuration)
    {
        Add<ServiceOptions>(services, "Service");
        Add<WorkerOptions>(services, "Worker");
        Add<ComputeOptions>(services, "Compute");
        Add<DatasetOptions>(services, "Datasets");
        Add<JobOptions>(services, "Jobs");
        Add<SweepOptions>(services, "Sweeps");
        Add<DiagnosisThresholds>(services, "Diagnoses"); // the compute library's thresholds, bound and range-checked as they are
        Add<TelemetryOptions>(services, "Telemetry");
        Add<LossApiOptions>(services, "Losses");
        Add<AuthOptions>(services, "Auth");
        Add<QuotaOptions>(services, "Quotas");
        Add<CorsOptions>(services, "Cors");
        services.AddOptions<DatabaseOptions>().BindConfiguration("Database", o => o.ErrorOnUnknownConfiguration = true)
            .Configure(o => o.ConnectionString = configuration.GetConnectionString("Postgres") ?? "")
            .Validate(o => !string.IsNullOrWhiteSpace(o.ConnectionString),
                "ConnectionStrings:Postgres is not set. Set it (environment variable ConnectionStrings__Postgres), " +
                "or start the service with scripts/run.sh, which starts a local PostgreSQL and sets it.")
            .ValidateDataAnnotations().ValidateOnStart();
        return services;
    }

    private static void Add<T>(IServiceCollection services, string section) where T : class =>
        services.AddOptions<T>().BindConfiguration(section, o => o.ErrorOnUnknownConfiguration = true)
            .ValidateDataAnnotations().ValidateOnStart();

    /// <summary>The service options as configured, read before the container is built (roles decide registrations).</summary>
    public static ServiceOptions ReadServiceOptions(this IConfiguration configuration)
    {
        var options = new ServiceOptions();
        try
        {
            configuration.GetSection("Service").Bind(options, o => o.ErrorOnUnknownConfiguration = true);
        }
        catch (InvalidOperationException e)
        {
            throw new OptionsValidationException("Service", typeof(ServiceOptions),
                [$"Invalid setting in section 'Service' ({e.Message}). Service:Role must be all, api or worker."]);
        }
        return options;
    }
}

/// <summary>The PostgreSQL connection string (<c>ConnectionStrings:Postgres</c>).</summary>
public sealed class DatabaseOptions
{
    public string ConnectionString { get; set; } = "";

    /// <summary>
    /// Migrate at start (under an advisory lock, so many processes may start at once). False: wait up to
    /// <see cref="MigrationWait"/> for a migration run elsewhere (<c>--migrate</c>, e.g. a Kubernetes Job), then give up.
    /// </summary>
    public bool MigrateAtStart { get; set; } = true;

    /// <summary>How long a process that does not migrate waits for the schema to be current.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan MigrationWait { get; set; } = TimeSpan.FromMinutes(2);
}
