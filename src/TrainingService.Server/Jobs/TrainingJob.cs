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
        var job = await LoadJobAsync(jobId, shutdown);
        if (job is null || JobStatus.IsTerminal(job.Value.Status))
        {
            return;
        }
        if (job.Value.Status == JobStatus.Cancelling)
        {
            await store.FinishAsync(jobId, JobStatus.Cancelled, StopReasons.Cancelled, null, null, null, CancellationToken.None);
            return;
        }
        bool resuming = job.Value.Status == JobStatus.Running;
        if (!resuming && !await store.StartAsync(jobId, device.Description, shutdown))
        {
            return; // cancelled between the read and the start
        }
        try
        {
            await TrainAsync(jobId, job.Value.Spec, job.Value.DatasetId, job.Value.StartedAt ?? DateTimeOffset.UtcNow, resuming, shutdown);
        }
        catch (OperationCanceledException) when (shutdown.IsCancellationRequested)
        {
            logger.LogWarning("Worker stopping: job {JobId} stays running and will resume from its last checkpoint", jobId);
            throw;
        }
        catch (Exception e) when (e is TrainingDataException or LossSpecException or ApiProblemException)
        {
            var (code, message) = e switch
            {
                TrainingDataException data => (data.Code, data.Message),
                LossSpecException loss => (loss.Code, loss.Message),
                ApiProblemException problem => (problem.Code, problem.Message),
                _ => ("training.error", e.Message),
            };
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

    private async Task TrainAsync(Guid jobId, string specJson, Guid? datasetId, DateTimeOffset startedAt, bool resuming, CancellationToken shutdown)
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
            await LoadAndTrainAsync(jobId, specJson, datasetId, startedAt, resuming, clock, cancel, timeout, stop.Token, shutdown);
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

    private async Task LoadAndTrainAsync(Guid jobId, string specJson, Guid? datasetId, DateTimeOffset startedAt, bool resuming, Stopwatch clock,
        CancellationTokenSource cancel, CancellationTokenSource timeout, CancellationToken stop, CancellationToken shutdown)
    {
        var spec = JsonSerializer.Deserialize<SubmitJobRequest>(specJson, ApiJson.Options)!;
        var dataset = datasetId is Guid id ? await datasets.FindAsync(id, stop) : null;
        if (dataset is null)
        {
            throw new TrainingDataException("data.dataset_deleted", "The job's dataset was deleted before the job ran.");
        }
        var plan = planner.Plan(spec, dataset.Id, dataset.Columns);
        var remaining = plan.MaxRuntime - (DateTimeOffset.UtcNow - startedAt);
        timeout.CancelAfter(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero);
        var loaded = await datasets.LoadColumnsAsync(dataset, plan.Features.Concat(plan.Target.Columns.Select(c => dataset.Columns.First(d => d.Name == c))), stop);
        stop.ThrowIfCancellationRequested();
        var prepared = Preprocessor.Prepare(plan, loaded, dataset.RowCount);
        await store.SetDataSummaryAsync(jobId, JsonSerializer.Serialize(prepared.Summary, ApiJson.Options), stop);

        var loss = CombinedLoss.Bind(plan.LossTerms, JobPlanner.BindingFor(plan.Target, prepared.ClassWeights));
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
        var trainerSpec = new TrainerSpec(layout, loss, plan.Optimizer, plan.Epochs, plan.BatchSize, plan.Seed, plan.OutputKind, plan.OutputTransform)
        {
            Regularization = plan.Regularization,
            Schedule = plan.Schedule,
            EarlyStopping = plan.EarlyStopping,
            CheckpointEvery = jobOptions.Value.CheckpointEvery,
        };
        var checkpoint = resuming ? await store.LoadCheckpointAsync(jobId, shutdown) : null;
        await store.TruncateHistoryAsync(jobId, checkpoint?.Epoch ?? 0, shutdown);
        if (resuming)
        {
            logger.LogInformation("Resuming job {JobId} after epoch {Epoch}", jobId, checkpoint?.Epoch ?? 0);
        }

        TrainingOutcome outcome;
        using (var trainer = new Trainer(device, trainerSpec, prepared.Train, prepared.Validation))
        {
            outcome = await trainer.RunAsync(new EpochWriter(store, jobId), checkpoint, stop);
        }
        logger.LogInformation("Job {JobId} ended {StopReason} after {Epochs} epochs in {Seconds:F1} s", jobId, outcome.StopReason,
            outcome.EpochsCompleted, clock.Elapsed.TotalSeconds);

        var model = ModelDocument.Create(jobId, plan, prepared.Pipeline, layout, outcome).Serialize();
        switch (outcome.StopReason)
        {
            case StopReason.Cancelled when cancel.IsCancellationRequested:
                await store.FinishAsync(jobId, JobStatus.Cancelled, StopReasons.Cancelled, null, outcome.BestEpoch, model, CancellationToken.None);
                break;
            case StopReason.Cancelled when timeout.IsCancellationRequested:
                await store.FinishAsync(jobId, JobStatus.Cancelled, StopReasons.Timeout, null, outcome.BestEpoch, model, CancellationToken.None);
                break;
            case StopReason.Cancelled:
                throw new OperationCanceledException(shutdown);
            case StopReason.Diverged:
                await store.FinishAsync(jobId, JobStatus.Failed, StopReasons.Diverged,
                    new FailureInfo("training.diverged", $"The loss or gradient became NaN or infinite in epoch {outcome.EpochsCompleted}; " +
                        "lower the learning rate, or clip gradients (optimizer.gradientClipNorm).", outcome.EpochsCompleted),
                    null, null, CancellationToken.None);
                break;
            default:
                await store.FinishAsync(jobId, JobStatus.Succeeded,
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

    private async Task<(string Status, string Spec, Guid? DatasetId, DateTimeOffset? StartedAt)?> LoadJobAsync(Guid jobId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT status, spec, dataset_id, started_at FROM jobs WHERE id = @id");
        command.Parameters.AddWithValue("id", jobId);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }
        return (reader.GetString(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetGuid(2),
            reader.IsDBNull(3) ? null : reader.GetFieldValue<DateTimeOffset>(3));
    }

    /// <summary>Stores each epoch (and its checkpoint) as the trainer reports it.</summary>
    private sealed class EpochWriter(JobStore store, Guid jobId) : ITrainingObserver
    {
        public async ValueTask OnEpochAsync(EpochRecord record, TrainingCheckpoint? checkpoint) =>
            await store.RecordEpochAsync(jobId, record, checkpoint, CancellationToken.None);
    }
}
