using System.Diagnostics;
using System.Text.Json;
using Hangfire;
using Microsoft.Extensions.Options;
using Npgsql;
using TrainingService.Compute.Devices;
using TrainingService.Compute.Losses;
using TrainingService.Compute.Models;
using TrainingService.Compute.Training;
using TrainingService.Server.Configuration;
using TrainingService.Server.Datasets;
using TrainingService.Server.Infrastructure;
using TrainingService.Server.Preprocessing;

namespace TrainingService.Server.Jobs;

/// <summary>
/// The Hangfire job that trains one job. Re-entrant, since Hangfire delivers at least once: a session-level advisory
/// lock (the job's lease) makes one worker the owner, and is released when the run ends or by PostgreSQL if that worker
/// dies; a delivery that finds the lease taken leaves the job to its owner; a finished job is left alone; a running
/// job with a checkpoint resumes from it. User cancels arrive by NOTIFY (with a polling fallback) and stop training at
/// the next batch boundary; a worker shutdown leaves the job running and rethrows, so Hangfire requeues it and another
/// worker resumes it. A job that ends up running with no owner (its final write failed, say) is found by
/// <see cref="JobRecovery"/>.
/// </summary>
public sealed class TrainingJob(
    NpgsqlDataSource dataSource,
    JobStore store,
    DatasetStore datasets,
    JobPlanner planner,
    JobEventHub events,
    ComputeDevice device,
    IOptions<JobOptions> jobOptions,
    IOptions<WorkerOptions> workerOptions,
    ILogger<TrainingJob> logger)
{
    public const string Queue = "training";

    // No automatic retries: retrying a failed run repeats the failure; a lost worker is covered by sliding invisibility
    // and JobRecovery.
    [Queue(Queue)]
    [AutomaticRetry(Attempts = 0, OnAttemptsExceeded = AttemptsExceededAction.Fail)]
    [JobDisplayName("train {0}")]
    public async Task RunAsync(Guid jobId, CancellationToken shutdown)
    {
        using var scope = logger.BeginScope(new Dictionary<string, object> { ["JobId"] = jobId });
        await using var lease = await JobLease.TryAcquireAsync(dataSource, jobId, shutdown);
        if (lease is null)
        {
            logger.LogInformation("Job {JobId} is already being trained by another worker", jobId);
            return;
        }
        var job = await store.LoadRunAsync(jobId, shutdown);
        if (job is null || JobStatus.IsTerminal(job.Status))
        {
            return;
        }
        if (job.Status == JobStatus.Cancelling)
        {
            await store.FinishAsync(jobId, JobStatus.Cancelled, StopReasons.Cancelled, null, null, null, CancellationToken.None);
            return;
        }
        bool resuming = job.Status == JobStatus.Running;
        if (!resuming && !await store.StartAsync(jobId, device.Description, shutdown))
        {
            return; // cancelled between the read and the start
        }
        try
        {
            await TrainAsync(jobId, job, resuming, shutdown);
        }
        catch (OperationCanceledException) when (shutdown.IsCancellationRequested)
        {
            logger.LogWarning("Worker stopping: job {JobId} stays running and will resume from its last checkpoint", jobId);
            throw;
        }
        catch (Exception e) when (e is TrainingDataException or LossSpecException)
        {
            var (code, message) = e is TrainingDataException data ? (data.Code, data.Message) : (((LossSpecException)e).Code, e.Message);
            logger.LogWarning("Job {JobId} failed: {Code}: {Message}", jobId, code, message);
            await store.FinishAsync(jobId, JobStatus.Failed, StopReasons.Error, new FailureInfo(code, message), null, null, CancellationToken.None);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Job {JobId} failed unexpectedly", jobId);
            await store.FinishAsync(jobId, JobStatus.Failed, StopReasons.Error,
                new FailureInfo("training.error", $"{e.GetType().Name}: {e.Message}"), null, null, CancellationToken.None);
        }
    }

    private async Task TrainAsync(Guid jobId, JobRun job, bool resuming, CancellationToken shutdown)
    {
        var clock = Stopwatch.StartNew();
        // Listen for a cancel before the (possibly long) data load, and look once for one sent before listening.
        using var cancel = new CancellationTokenSource();
        using var timeout = new CancellationTokenSource();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(shutdown, cancel.Token, timeout.Token);
        using var subscription = events.Subscribe(jobId, e =>
        {
            if (e.Kind == "cancel" || (e.Kind == "status" && e.Status == JobStatus.Cancelling))
            {
                cancel.Cancel();
            }
        });
        if (await store.StatusAsync(jobId, shutdown) == JobStatus.Cancelling)
        {
            await cancel.CancelAsync();
        }
        using var pollStop = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
        var poll = PollForCancelAsync(jobId, cancel, pollStop.Token);
        try
        {
            var run = new Run(jobId, resuming, clock, cancel, timeout, stop.Token, shutdown);
            await LoadAndTrainAsync(run, job, job.StartedAt ?? DateTimeOffset.UtcNow);
        }
        catch (OperationCanceledException) when (!shutdown.IsCancellationRequested && stop.IsCancellationRequested)
        {
            // Cancelled or timed out before training began (while loading data): nothing to keep.
            await store.FinishAsync(jobId, JobStatus.Cancelled, cancel.IsCancellationRequested ? StopReasons.Cancelled : StopReasons.Timeout,
                null, null, null, CancellationToken.None);
        }
        finally
        {
            await pollStop.CancelAsync();
            await poll;
        }
    }

    /// <summary>One run of a job: its stop signals (user cancel, timeout, worker shutdown) and its clock.</summary>
    private sealed record Run(Guid JobId, bool Resuming, Stopwatch Clock, CancellationTokenSource Cancel, CancellationTokenSource Timeout,
        CancellationToken Stop, CancellationToken Shutdown);

    private async Task LoadAndTrainAsync(Run run, JobRun job, DateTimeOffset startedAt)
    {
        var spec = JsonSerializer.Deserialize<SubmitJobRequest>(job.Spec, ApiJson.Options)!;
        var dataset = job.DatasetId is Guid id ? await datasets.FindAsync(id, run.Stop) : null;
        if (dataset is null)
        {
            throw new TrainingDataException("data.dataset_deleted", "The job's dataset was deleted before the job ran.");
        }
        if (!planner.TryPlan(spec, dataset.Columns, out var plan, out var problem))
        {
            throw new TrainingDataException(problem.Code, problem.Detail);
        }
        var remaining = plan.MaxRuntime - (DateTimeOffset.UtcNow - startedAt);
        run.Timeout.CancelAfter(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero);
        var loaded = await datasets.LoadColumnsAsync(dataset, plan.Data.Features.Concat(plan.Target.Columns.Select(c => dataset.Columns.First(d => d.Name == c))), run.Stop);
        run.Stop.ThrowIfCancellationRequested();
        var prepared = Preprocessor.Prepare(plan.Data, loaded, dataset.RowCount);
        await store.SetDataSummaryAsync(run.JobId, JsonSerializer.Serialize(prepared.Summary, ApiJson.Options), run.Stop);

        var (trainerSpec, layout) = TrainerSpecFor(plan, prepared);
        var checkpoint = run.Resuming ? await store.LoadCheckpointAsync(run.JobId, run.Shutdown) : null;
        await store.TruncateHistoryAsync(run.JobId, checkpoint?.Epoch ?? 0, run.Shutdown);
        if (run.Resuming)
        {
            logger.LogInformation("Resuming job {JobId} after epoch {Epoch}", run.JobId, checkpoint?.Epoch ?? 0);
        }

        TrainingOutcome outcome;
        using (var trainer = new Trainer(device, trainerSpec, prepared.Train, prepared.Validation))
        {
            outcome = await trainer.RunAsync(new EpochWriter(store, run.JobId), checkpoint, run.Stop);
        }
        logger.LogInformation("Job {JobId} ended {StopReason} after {Epochs} epochs in {Seconds:F1} s", run.JobId, outcome.StopReason,
            outcome.EpochsCompleted, run.Clock.Elapsed.TotalSeconds);
        await FinishAsync(run, outcome, ModelDocument.Create(run.JobId, plan, prepared.Pipeline, layout, outcome).Serialize());
    }

    /// <summary>The trainer's spec: the network for the prepared inputs, and a loss bound to the resolved class weights.</summary>
    private (TrainerSpec Spec, NetworkLayout Layout) TrainerSpecFor(JobPlan plan, PreparedData prepared)
    {
        var loss = CombinedLoss.Bind(plan.LossTerms, JobPlan.BindingFor(plan.Target, prepared.ClassWeights));
        foreach (var term in loss.Terms)
        {
            // Targets must lie in each loss's domain (e.g. poisson_nll counts ≥ 0); the trainer does not re-check.
            term.Validate(new LossSample(default, prepared.Train.Targets, prepared.Train.Rows, plan.Target.Outputs));
            if (prepared.Validation is { } validation)
            {
                term.Validate(new LossSample(default, validation.Targets, validation.Rows, plan.Target.Outputs));
            }
        }
        var layout = new NetworkLayout(prepared.Pipeline.Width, plan.HiddenLayers, plan.Target.Outputs, plan.Activation, plan.Dropout);
        var spec = new TrainerSpec(layout, loss, plan.Optimizer, plan.Epochs, plan.BatchSize, plan.Seed, plan.OutputKind, plan.OutputTransform)
        {
            Regularization = plan.Regularization,
            Schedule = plan.Schedule,
            EarlyStopping = plan.EarlyStopping,
            CheckpointEvery = jobOptions.Value.CheckpointEvery,
        };
        return (spec, layout);
    }

    /// <summary>Records how training ended; a worker shutdown rethrows so Hangfire requeues the job.</summary>
    private async Task FinishAsync(Run run, TrainingOutcome outcome, (string Json, string ETag) model)
    {
        switch (outcome.StopReason)
        {
            case StopReason.Cancelled when run.Cancel.IsCancellationRequested:
                await store.FinishAsync(run.JobId, JobStatus.Cancelled, StopReasons.Cancelled, null, outcome.BestEpoch, model, CancellationToken.None);
                break;
            case StopReason.Cancelled when run.Timeout.IsCancellationRequested:
                await store.FinishAsync(run.JobId, JobStatus.Cancelled, StopReasons.Timeout, null, outcome.BestEpoch, model, CancellationToken.None);
                break;
            case StopReason.Cancelled:
                throw new OperationCanceledException(run.Shutdown);
            case StopReason.Diverged:
                await store.FinishAsync(run.JobId, JobStatus.Failed, StopReasons.Diverged,
                    new FailureInfo("training.diverged", $"The loss or gradient became NaN or infinite in epoch {outcome.EpochsCompleted}; " +
                        "lower the learning rate, or clip gradients (optimizer.gradientClipNorm).", outcome.EpochsCompleted),
                    null, null, CancellationToken.None);
                break;
            default:
                await store.FinishAsync(run.JobId, JobStatus.Succeeded,
                    outcome.StopReason == StopReason.EarlyStopped ? StopReasons.EarlyStopped : StopReasons.Completed,
                    null, outcome.BestEpoch, model, CancellationToken.None);
                break;
        }
    }

    /// <summary>The fallback for a missed NOTIFY: re-read the status now and then while training.</summary>
    private async Task PollForCancelAsync(Guid jobId, CancellationTokenSource cancel, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(workerOptions.Value.CancellationPollInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                if (await store.StatusAsync(jobId, stop) == JobStatus.Cancelling)
                {
                    await cancel.CancelAsync();
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (NpgsqlException e)
        {
            logger.LogWarning(e, "Cancel polling for job {JobId} stopped", jobId);
        }
    }

    /// <summary>Stores each epoch (and its checkpoint) as the trainer reports it.</summary>
    private sealed class EpochWriter(JobStore store, Guid jobId) : ITrainingObserver
    {
        public async ValueTask OnEpochAsync(EpochRecord record, TrainingCheckpoint? checkpoint) =>
            await store.RecordEpochAsync(jobId, record, checkpoint, CancellationToken.None);
    }
}
