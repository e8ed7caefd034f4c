using TrainingService.Compute.Training;

namespace TrainingService.Server.Jobs;

/// <summary>
/// What a worker asks of the sweep a job is a trial of. Sweeps implements it (Jobs may not name Sweeps: the sweep
/// scheduler submits jobs, so the dependency runs the other way).
/// </summary>
public interface ISweepTrials
{
    /// <summary>The trial's pruner (its sweep's early termination), or null when the sweep stops no trial early.</summary>
    Task<ITrialPruner?> PrunerAsync(Guid sweepId, Guid jobId, int totalEpochs, CancellationToken cancellationToken);

    /// <summary>A trial ended: its sweep may start the next trial, or end.</summary>
    Task TrialEndedAsync(Guid sweepId, CancellationToken cancellationToken);
}

/// <summary>Decides, after each epoch of a trial is stored, whether the trial stops there (stop reason <c>pruned</c>).</summary>
public interface ITrialPruner
{
    ValueTask<bool> ShouldStopAsync(EpochRecord record, CancellationToken cancellationToken);
}
