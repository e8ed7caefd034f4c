using Microsoft.Extensions.Options;
using TrainingService.Compute.Devices;
using TrainingService.Server.Configuration;

namespace TrainingService.Server.Compute;

public static class ComputeSetup
{
    /// <summary>The process-wide accelerator, created at start-up (a missing CUDA device fails start-up when cuda is asked for).</summary>
    public static IServiceCollection AddCompute(this IServiceCollection services)
    {
        services.AddSingleton(provider =>
        {
            var options = provider.GetRequiredService<IOptions<ComputeOptions>>().Value;
            var device = ComputeDevice.Create(options.Device, options.CpuGroups);
            provider.GetRequiredService<ILogger<ComputeDevice>>().LogInformation("Compute device: {Device}", device.Description);
            return device;
        });
        services.AddHostedService<ComputeWarmup>();
        return services;
    }

    /// <summary>Creates the device when the host starts, not on the first request.</summary>
    private sealed class ComputeWarmup(ComputeDevice device) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => Task.FromResult(device);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
