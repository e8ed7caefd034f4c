namespace TrainingService.Server.Data.Entities;

/// <summary>A training job: its spec, lifecycle and the summary fields job lists read (never the history).</summary>
public sealed class Job
{
    public Guid Id { get; set; }
    /// <summary>The owning tenant; every read and write is scoped to it.</summary>
    public required string Tenant { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>Null once the dataset is deleted; the job keeps its history and model.</summary>
    public Guid? DatasetId { get; set; }
    /// <summary>One of <c>Jobs.JobStatus</c>.</summary>
    public required string Status { get; set; }
    /// <summary>The submitted spec as JSON, normalised (defaults filled in, seed resolved).</summary>
    public required string Spec { get; set; }
    public int Seed { get; set; }
    public int TotalEpochs { get; set; }
    public DateTimeOffset? StartedAt { get; set; }
    public DateTimeOffset? FinishedAt { get; set; }
    public DateTimeOffset? CancelRequestedAt { get; set; }
    /// <summary>JSON array of {status, at, note}.</summary>
    public required string Transitions { get; set; }
    public string? StopReason { get; set; }
    public string? FailureCode { get; set; }
    public string? FailureMessage { get; set; }
    public int? FailureEpoch { get; set; }
    public int EpochsCompleted { get; set; }
    public double? LastTrainLoss { get; set; }
    public double? LastValLoss { get; set; }
    public double? BestValLoss { get; set; }
    public int? BestValLossEpoch { get; set; }
    /// <summary>Early stopping's best epoch, when it ran.</summary>
    public int? BestEpoch { get; set; }
    /// <summary>JSON object: the trivial model's losses and metrics (Compute's <c>Baseline</c>), once the worker measured them.</summary>
    public string? Baseline { get; set; }
    /// <summary>JSON array of the curve's diagnoses as of the last epoch written.</summary>
    public string? Diagnoses { get; set; }
    /// <summary>The epoch the stored model comes from (keep: best or last), once a model is stored.</summary>
    public int? ModelEpoch { get; set; }
    /// <summary>JSON object: rows used, dropped, train/validation sizes, label order, features.</summary>
    public string? DataSummary { get; set; }
    public Guid? RetryOf { get; set; }
    public string? HangfireJobId { get; set; }
    public string? Device { get; set; }
    /// <summary>The W3C traceparent of the submit, so a worker's spans join the submitter's trace.</summary>
    public string? TraceParent { get; set; }
    /// <summary>The device the spec asks for: cuda, cpu or any (<c>Jobs.ComputePools</c>); routes the job to a worker pool.</summary>
    public string ComputeDevice { get; set; } = "any";
    /// <summary>The sweep this job is a trial of, if any.</summary>
    public Guid? SweepId { get; set; }
    /// <summary>The trial's index in its sweep (0, 1, …): unique per sweep, so no trial is ever created twice.</summary>
    public int? SweepTrial { get; set; }
    /// <summary>JSON object: the trial's parameter assignment, path → value.</summary>
    public string? SweepParameters { get; set; }
    /// <summary>Bumped on every change of the job or its history: ETags derive from it.</summary>
    public long Version { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

/// <summary>One finished epoch of a job.</summary>
public sealed class JobEpoch
{
    public Guid JobId { get; set; }
    public int Epoch { get; set; }
    public double TrainLoss { get; set; }
    public double? ValLoss { get; set; }
    public double RegularizationLoss { get; set; }
    /// <summary>JSON object of metric name → value (non-finite values as strings).</summary>
    public required string Metrics { get; set; }
    public double LearningRate { get; set; }
    public double GradientNorm { get; set; }
    public double DurationMs { get; set; }
    public double SamplesPerSecond { get; set; }
    public DateTimeOffset RecordedAt { get; set; }
}

/// <summary>The latest checkpoint of a running job (one row per job, replaced each time).</summary>
public sealed class JobCheckpoint
{
    public Guid JobId { get; set; }
    public int Epoch { get; set; }
    public required byte[] Data { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>The trained model of a finished job, as served by <c>GET /api/jobs/{id}/model</c>.</summary>
public sealed class JobModel
{
    public Guid JobId { get; set; }
    public required string Model { get; set; }
    public required string ETag { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>A remembered <c>Idempotency-Key</c> of <c>POST /api/jobs</c>.</summary>
public sealed class IdempotencyRecord
{
    /// <summary>Keys are per tenant: two tenants may use the same key for different jobs.</summary>
    public required string Tenant { get; set; }
    public required string Key { get; set; }
    public required string RequestHash { get; set; }
    public Guid JobId { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
}
