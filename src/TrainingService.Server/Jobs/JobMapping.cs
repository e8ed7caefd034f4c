using System.Text.Json;
using TrainingService.Server.Data.Entities;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Jobs;

internal static class JobMapping
{
    public static JobResponse ToResponse(this Job job, JobWaiting? waiting = null) => new()
    {
        Id = job.Id,
        Status = job.Status,
        Waiting = waiting,
        DatasetId = job.DatasetId,
        CreatedAt = job.CreatedAt,
        StartedAt = job.StartedAt,
        FinishedAt = job.FinishedAt,
        EpochsCompleted = job.EpochsCompleted,
        Progress = new JobProgress(job.EpochsCompleted, job.TotalEpochs),
        StopReason = job.StopReason,
        Failure = job.FailureCode is null ? null : new JobFailure(job.FailureCode, job.FailureMessage ?? "", job.FailureEpoch),
        Seed = job.Seed,
        Transitions = JsonSerializer.Deserialize<List<JobTransition>>(job.Transitions, ApiJson.Options)!,
        Summary = new JobSummary(job.LastTrainLoss, job.LastValLoss, job.BestValLoss, job.BestValLossEpoch, job.BestEpoch),
        Data = job.DataSummary is null ? null : JsonSerializer.Deserialize<JsonElement>(job.DataSummary),
        RetryOf = job.RetryOf,
        Device = job.Device,
        ModelEpoch = job.ModelEpoch,
        Baseline = job.Baseline is null ? null : JsonSerializer.Deserialize<JsonElement>(job.Baseline),
        Diagnoses = job.Diagnoses is null ? JobState.NoDiagnoses : JsonSerializer.Deserialize<JsonElement>(job.Diagnoses),
        SweepId = job.SweepId,
        SweepTrial = job.SweepTrial,
        SweepParameters = job.SweepParameters is null ? null : JsonSerializer.Deserialize<JsonElement>(job.SweepParameters),
        Spec = JsonSerializer.Deserialize<JsonElement>(job.Spec),
    };

    /// <summary>The job's ETag: its version, and whether it waits for a worker pool with no live worker (which no version records).</summary>
    public static string ETag(Guid id, long version, bool waiting = false) => $"\"j-{id:N}-{version}{(waiting ? "-w" : "")}\"";
}
