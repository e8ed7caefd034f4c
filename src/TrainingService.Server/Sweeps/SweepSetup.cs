using TrainingService.Server.Configuration;
using TrainingService.Server.Jobs;

namespace TrainingService.Server.Sweeps;

public static class SweepSetup
{
    public static IServiceCollection AddSweeps(this IServiceCollection services, ServiceOptions service)
    {
        services.AddSingleton<SweepStore>();
        services.AddSingleton<SweepDriver>();
        services.AddSingleton<ISweepTrials>(provider => provider.GetRequiredService<SweepDriver>());
        services.AddScoped<SweepValidator>();
        if (service.RunsJobs)
        {
            services.AddHostedService<SweepReconciler>();
        }
        return services;
    }
}
