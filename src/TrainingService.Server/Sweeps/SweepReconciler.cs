using Microsoft.Extensions.Options;
using TrainingService.Server.Configuration;

namespace TrainingService.Server.Sweeps;

/// <summary>
/// In each worker, advances every running sweep every <see cref="SweepOptions.ReconcileInterval"/>: the safety net behind
/// the advance a worker makes when a trial ends. It catches a worker that died between a trial's end and that advance, a
/// trial cancelled through the job API, a full queue that has room again, and a sweep's maxRuntime. Advancing is
/// idempotent and serialised per sweep (<see cref="SweepDriver"/>), so any number of workers may run this at once.
/// </summary>
public sealed class SweepReconciler(SweepStore store, SweepDriver driver, IOptions<SweepOptions> options, ILogger<SweepReconciler> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.ReconcileInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await AdvanceAllAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task AdvanceAllAsync(CancellationToken stoppingToken)
    {
        try
        {
            foreach (var id in await store.RunningAsync(stoppingToken))
            {
                await driver.AdvanceAsync(id, stoppingToken);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("Advancing sweeps failed ({Error}); trying again in {Interval}", e.Message, options.Value.ReconcileInterval);
        }
    }
}
