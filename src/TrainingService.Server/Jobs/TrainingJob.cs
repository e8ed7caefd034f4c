using System.Diagnostics;
using System.Text.Json;
using Hangfire;
using Hangfire.Server;
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
/// job with a checkpoint resumes from it. The lease is taken before the job moves to running, and each attempt records
/// its worker (<c>host:pid</c>). An attempt is its Hangfire job: every write is fenced on it (<see cref="JobStore"/>), so a
/// worker cut off long enough for recovery to hand the job to a new attempt stops quietly, writing nothing over it. User
/// cancels arrive by NOTIFY (with a polling fallback) and stop training at the next batch boundary; a worker shutdown leaves the job running and rethrows, so Hangfire requeues it and another
/// worker resumes it. Database calls ride out short outages (<see cref="TransientRetry"/>); one that outlasts the retries
/// leaves the job running, never failed, and a job that ends up running with no owner (its worker died, or could not
/// write) is resumed by <see cref="JobRecovery"/>.
/// </summary>
public sealed class TrainingJob(
    NpgsqlDataSource dataSource,
    JobStore store,
    FairScheduler scheduler,
    DatasetStore datasets,
    JobPlanner planner,
    JobEventHub events,
    ComputeDevice device,
    TransientRetry retry,
    IOptions<JobOptions> jobOptions,
    IOptions<WorkerOptions> workerOptions,
    IOptions<DiagnosisThresholds> diagnosisThresholds,
    ISweepTrials sweeps,
    ILogger<TrainingJob> logger)
{
    /// <summary>This process as a worker: <c>host:pid</c>, as in Hangfire's server name.</summary>
    public static readonly string Worker = $"{Environment.MachineName}:{Environment.ProcessId}";

    /// <summary>How long a delivery waits for a lease held by someone else (a recovery pass, an owner stopping) before it leaves the job.</summary>
    private static readonly TimeSpan LeaseWait = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How often a running job's lease session is checked, and taken again after a database restart: well inside
    /// <see cref="JobRecovery.Confirmation"/>, so recovery never takes a live worker's job for a lost one.
    /// </summary>
    private static readonly TimeSpan LeaseCheck = TimeSpan.FromMilliseconds(250);

    // No automatic retries: retrying a failed run repeats the failure; a lost worker is covered by the lease and JobRecovery.
    // No [Queue]: each delivery names its pool's queue when it is enqueued (ComputePools).
    [AutomaticRetry(Attempts = 0, OnAttemptsExceeded = AttemptsExceededAction.Fail)]
    [JobDisplayName("train {0}")]
    public async Task RunAsync(Guid jobId, PerformContext? context, CancellationToken shutdown)
    {
        // Hangfire passes its own context in place of the null the job was enqueued with.
        string attempt = context?.BackgroundJob.Id ?? throw new ArgumentNullException(nameof(context), "Run by Hangfire only.");
        // A message-template scope: structured properties in JSON logs, "JobId:… Attempt:…" on a terminal.
        using var scope = logger.BeginScope("JobId:{JobId} Attempt:{Attempt}", jobId, attempt);
        try
        {
            // Fair scheduling may hand this delivery a fairer job than the one it was enqueued for, or none (FairScheduler).
            await using var turn = await retry.RunAsync("Choosing the job to run",
                ct => scheduler.TakeTurnAsync(jobId, attempt, ct), shutdown);
            _turn = turn;
            if (turn.JobId is { } chosen)
            {
                using var chosenScope = chosen == jobId ? null : logger.BeginScope("JobId:{JobId}", chosen);
                await RunAttemptAsync(chosen, attempt, shutdown);
                await scheduler.WakeAsync(CancellationToken.None);
            }
        }
        catch (Exception e) when (TransientRetry.IsTransient(e))
        {
            // The database stayed away past the retries: the job stays as it is (running, or queued), and recovery resumes it.
            logger.LogWarning("Job {JobId}: the database stayed unreachable ({Error}); the job is left for recovery", jobId, e.Message);
        }
    }

    /// <summary>The scheduling turn of this delivery, held until the chosen job is running: released before training.</summary>
    private SchedulerTurn? _turn;

    private async Task RunAttemptAsync(Guid jobId, string attempt, CancellationToken shutdown)
    {
        await using var lease = await retry.RunAsync("Taking the job's lease", ct => JobLease.TryAcquireAsync(dataSource, jobId, LeaseWait, ct), shutdown);
        if (lease is null)
        {
            logger.LogInformation("Job {JobId} is already being trained by another worker", jobId);
            return;
        }
        var job = await retry.RunAsync("Loading the job", ct => store.LoadRunAsync(jobId, ct), shutdown);
        if (job is null || JobStatus.IsTerminal(job.Status))
        {
            return;
        }
        bool resuming = job.Status == JobStatus.Running;
        using var span = StartAttemptSpan(jobId, attempt, job);
        if (job.Status == JobStatus.Cancelling
            || !await retry.RunAsync("Starting the job", ct => store.BeginAttemptAsync(jobId, attempt, device.Description, Worker, ct), shutdown))
        {
            // Cancelled before this attempt began (or while its worker was lost): confirm it; a finished job, or one that is
            // another attempt's, is left alone.
            await FinishAsync(jobId, attempt, JobStatus.Cancelled, StopReasons.Cancelled, null, null, null);
            return;
        }
        await (_turn?.ReleaseAsync() ?? ValueTask.CompletedTask); // the job is running: the next worker's choice counts it
        if (!resuming)
        {
            Instruments.QueueWait.Record((DateTimeOffset.UtcNow - job.CreatedAt).TotalSeconds, new KeyValuePair<string, object?>("device", job.ComputeDevice));
        }
        try
        {
            await TrainAsync(jobId, attempt, job, resuming, lease, shutdown);
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
            await FinishAsync(jobId, attempt, JobStatus.Failed, StopReasons.Error, new FailureInfo(code, message), null, null);
        }
        catch (TakenOverException)
        {
            // The job is another attempt's now; it writes the outcome.
            logger.LogWarning("Job {JobId}: attempt {Attempt} was taken over by another attempt; it stops without writing", jobId, attempt);
        }
        catch (Exception e) when (!TransientRetry.IsTransient(e))
        {
            logger.LogError(e, "Job {JobId} failed unexpectedly", jobId);
            await FinishAsync(jobId, attempt, JobStatus.Failed, StopReasons.Error,
                new FailureInfo("training.error", $"{e.GetType().Name}: {e.Message}"), null, null);
        }
        if (job.SweepId is { } sweep)
        {
            await AdvanceSweepAsync(sweep, jobId);
        }
    }

    /// <summary>A trial ended: its sweep may start the next one now rather than at the reconciler's next pass.</summary>
    private async Task AdvanceSweepAsync(Guid sweepId, Guid jobId)
    {
        try
        {
            await sweeps.TrialEndedAsync(sweepId, CancellationToken.None);
        }
        catch (Exception e)
        {
            logger.LogWarning("Job {JobId}: advancing sweep {SweepId} failed ({Error}); the reconciler will", jobId, sweepId, e.Message);
        }
    }

    /// <summary>Ends the job through <see cref="JobStore.FinishAsync"/>, riding out a short outage; writes nothing if the job is another attempt's.</summary>
    private async Task FinishAsync(Guid jobId, string attempt, string status, string stopReason, FailureInfo? failure, int? bestEpoch,
        StoredModel? model)
    {
        if (await retry.RunAsync("Finishing the job", ct => store.FinishAsync(jobId, attempt, status, stopReason, failure, bestEpoch, model, ct),
            CancellationToken.None))
        {
            Instruments.JobsEnded.Add(1, new KeyValuePair<string, object?>("status", status));
            Activity.Current?.SetTag("job.status", status).SetTag("job.stop_reason", stopReason);
        }
    }

    /// <summary>
    /// The span of this attempt, a child of the submit's span (its traceparent is stored with the job), so a job's trace
    /// runs from submit across processes to its end; log lines written under it carry its trace id.
    /// </summary>
    private static Activity? StartAttemptSpan(Guid jobId, string attempt, JobRun job)
    {
        ActivityContext.TryParse(job.TraceParent, null, out var parent);
        return Instruments.Source.StartActivity("job attempt", ActivityKind.Consumer, parent)?
            .SetTag("job.id", jobId.ToString()).SetTag("job.attempt", attempt).SetTag("job.device", job.ComputeDevice).SetTag("worker", Worker);
    }

    private async Task TrainAsync(Guid jobId, string attempt, JobRun job, bool resuming, JobLease lease, CancellationToken shutdown)
    {
        var clock = Stopwatch.StartNew();
        // Listen for a cancel before the (possibly long) data load, and look once for one sent before listening.
        using var cancel = new CancellationTokenSource();
        using var timeout = new CancellationTokenSource();
        using var lost = new CancellationTokenSource();
        using var pruned = new CancellationTokenSource();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(shutdown, cancel.Token, timeout.Token, lost.Token, pruned.Token);
        using var subscription = events.Subscribe(jobId, e =>
        {
            if (e.Kind == "cancel" || (e.Kind == "status" && e.Status == JobStatus.Cancelling))
            {
                cancel.Cancel();
            }
        });
        if (await retry.RunAsync("Reading the job's status", ct => store.StatusAsync(jobId, ct), shutdown) == JobStatus.Cancelling)
        {
            await cancel.CancelAsync();
        }
        using var watchStop = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
        var poll = PollForCancelAsync(jobId, cancel, watchStop.Token);
        var keep = KeepLeaseAsync(jobId, lease, lost, watchStop.Token);
        try
        {
            var run = new Run(jobId, attempt, resuming, clock, cancel, timeout, lost, pruned, stop.Token, shutdown);
            await LoadAndTrainAsync(run, job, job.StartedAt ?? DateTimeOffset.UtcNow);
        }
        catch (OperationCanceledException) when (lost.IsCancellationRequested)
        {
            throw new TakenOverException();
        }
        catch (OperationCanceledException) when (!shutdown.IsCancellationRequested && stop.IsCancellationRequested)
        {
            // Cancelled or timed out before training began (while loading data): nothing to keep.
            await FinishAsync(jobId, attempt, JobStatus.Cancelled, cancel.IsCancellationRequested ? StopReasons.Cancelled : StopReasons.Timeout,
                null, null, null);
        }
        finally
        {
            await watchStop.CancelAsync();
            await Task.WhenAll(poll, keep);
        }
    }

    /// <summary>Keeps the lease through database restarts; stops training at once if another worker took the job meanwhile.</summary>
    private async Task KeepLeaseAsync(Guid jobId, JobLease lease, CancellationTokenSource lost, CancellationToken stop)
    {
        try
        {
            if (!await lease.KeepAsync(LeaseCheck, stop))
            {
                logger.LogWarning("Job {JobId}: another worker took its lease while the database was away; this attempt stops", jobId);
                await lost.CancelAsync();
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Not knowing is not losing: the epoch writes still find out if the database is gone for good.
            logger.LogWarning(e, "Job {JobId}: checking its lease failed; no longer checking", jobId);
        }
    }

    /// <summary>
    /// Thrown when an attempt stops because the job went to another attempt (its lease went to another worker, or a write
    /// found the job fenced off): that attempt owns the job now.
    /// </summary>
    private sealed class TakenOverException() : Exception("The job went to another attempt.");

    /// <summary>
    /// One run of a job: its attempt, its stop signals (user cancel, timeout, worker shutdown, taken over, pruned by its
    /// sweep) and its clock.
    /// </summary>
    private sealed record Run(Guid JobId, string Attempt, bool Resuming, Stopwatch Clock, CancellationTokenSource Cancel, CancellationTokenSource Timeout,
        CancellationTokenSource Lost, CancellationTokenSource Pruned, CancellationToken Stop, CancellationToken Shutdown);

    private async Task LoadAndTrainAsync(Run run, JobRun job, DateTimeOffset startedAt)
    {
        var spec = JsonSerializer.Deserialize<SubmitJobRequest>(job.Spec, ApiJson.Options)!;
        var dataset = job.DatasetId is Guid id ? await retry.RunAsync("Reading the dataset", ct => datasets.FindAsync(job.Tenant, id, ct), run.Stop) : null;
        if (dataset is null)
        {
            throw new TrainingDataException("data.dataset_deleted", "The job's dataset was deleted before the job ran.");
        }
        if (!planner.TryPlan(spec, dataset.Columns, out var plan, out var problem))
        {
            // The spec planned at submit; the dataset it now finds does not fit it. The problem is the job's failure.
            logger.LogWarning("Job {JobId} failed: {Code}: {Message}", run.JobId, problem.Code, problem.Detail);
            await FinishAsync(run.JobId, run.Attempt, JobStatus.Failed, StopReasons.Error, new FailureInfo(problem.Code, problem.Detail), null, null);
            return;
        }
        var remaining = plan.MaxRuntime - (DateTimeOffset.UtcNow - startedAt);
        run.Timeout.CancelAfter(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero);
        var columns = plan.Data.Features.Concat(plan.Target.Columns.Select(c => dataset.Columns.First(d => d.Name == c))).ToList();
        var loaded = await retry.RunAsync("Loading the dataset", ct => datasets.LoadColumnsAsync(dataset, columns, ct), run.Stop);
        run.Stop.ThrowIfCancellationRequested();
        var prepared = Preprocessor.Prepare(plan.Data, loaded, dataset.RowCount);
        string summary = JsonSerializer.Serialize(prepared.Summary, ApiJson.Options);
        Owned(await retry.RunAsync("Storing the data summary", ct => store.SetDataSummaryAsync(run.JobId, run.Attempt, summary, ct), run.Stop));

        var (trainerSpec, layout) = TrainerSpecFor(plan, prepared);
        var checkpoint = run.Resuming ? await retry.RunAsync("Loading the checkpoint", ct => store.LoadCheckpointAsync(run.JobId, ct), run.Shutdown) : null;
        Owned(await retry.RunAsync("Dropping epochs after the checkpoint",
            ct => store.TruncateHistoryAsync(run.JobId, run.Attempt, checkpoint?.Epoch ?? 0, ct), run.Shutdown));
        if (run.Resuming)
        {
            logger.LogInformation("Resuming job {JobId} after epoch {Epoch}", run.JobId, checkpoint?.Epoch ?? 0);
        }

        var pruner = job.SweepId is { } sweep ? await retry.RunAsync("Reading the sweep's early termination",
            ct => sweeps.PrunerAsync(sweep, run.JobId, plan.Epochs, ct), run.Stop) : null;
        var outcome = await TrainAsync(run, trainerSpec, prepared, checkpoint, pruner);
        logger.LogInformation("Job {JobId} ended {StopReason} after {Epochs} epochs in {Seconds:F1} s", run.JobId, outcome.StopReason,
            outcome.EpochsCompleted, run.Clock.Elapsed.TotalSeconds);
        await FinishAsync(run, outcome, ModelDocument.Create(run.JobId, plan, prepared.Pipeline, layout, outcome).Serialize());
    }

    /// <summary>
    /// Measures and stores the trivial model's losses, then trains, storing each epoch with the curve's diagnoses as of
    /// that epoch (computed after the epoch, between its write and the next epoch's launches; their cost is logged).
    /// </summary>
    private async Task<TrainingOutcome> TrainAsync(Run run, TrainerSpec trainerSpec, PreparedData prepared, TrainingCheckpoint? checkpoint,
        ITrialPruner? pruner)
    {
        using var trainer = new Trainer(device, trainerSpec, prepared.Train, prepared.Validation);
        var baseline = await trainer.BaselineAsync();
        string baselineJson = JsonSerializer.Serialize(baseline, ApiJson.Options);
        Owned(await retry.RunAsync("Storing the baseline", ct => store.SetBaselineAsync(run.JobId, run.Attempt, baselineJson, ct), run.Stop));
        var curve = checkpoint is null ? [] : await retry.RunAsync("Loading the history", ct => store.LoadCurveAsync(run.JobId, ct), run.Shutdown);
        var writer = new EpochWriter(store, retry, run, new CurveReader(curve, baseline, diagnosisThresholds.Value), prepared.Train.Rows, pruner, logger);
        var outcome = await trainer.RunAsync(writer, checkpoint, run.Stop);
        logger.LogInformation("Job {JobId}: diagnosing its curve took {Microseconds:F0} µs per epoch ({Epochs} epochs)", run.JobId,
            writer.Diagnoses.MicrosecondsPerEpoch, writer.Diagnoses.Epochs);
        return outcome;
    }

    /// <summary>Stops the attempt when a fenced write found the job another attempt's.</summary>
    private static void Owned(bool written)
    {
        if (!written)
        {
            throw new TakenOverException();
        }
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
            Keep = plan.Keep,
            CheckpointEvery = jobOptions.Value.CheckpointEvery,
        };
        return (spec, layout);
    }

    /// <summary>Records how training ended; a worker shutdown rethrows so Hangfire requeues the job.</summary>
    private async Task FinishAsync(Run run, TrainingOutcome outcome, StoredModel model)
    {
        switch (outcome.StopReason)
        {
            case var _ when run.Lost.IsCancellationRequested:
                throw new TakenOverException(); // the last epoch's write was fenced off: the model is not this attempt's to store
            case StopReason.Cancelled when run.Cancel.IsCancellationRequested:
                await FinishAsync(run.JobId, run.Attempt, JobStatus.Cancelled, StopReasons.Cancelled, null, outcome.BestEpoch, model);
                break;
            case StopReason.Cancelled when run.Timeout.IsCancellationRequested:
                await FinishAsync(run.JobId, run.Attempt, JobStatus.Cancelled, StopReasons.Timeout, null, outcome.BestEpoch, model);
                break;
            case StopReason.Cancelled when run.Pruned.IsCancellationRequested:
                await FinishAsync(run.JobId, run.Attempt, JobStatus.Succeeded, StopReasons.Pruned, null, outcome.BestEpoch, model);
                break;
            case StopReason.Cancelled:
                throw new OperationCanceledException(run.Shutdown);
            case StopReason.Diverged:
                await FinishAsync(run.JobId, run.Attempt, JobStatus.Failed, StopReasons.Diverged,
                    new FailureInfo("training.diverged", $"The loss or gradient became NaN or infinite in epoch {outcome.EpochsCompleted}; " +
                        "lower the learning rate, or clip gradients (optimizer.gradientClipNorm).", outcome.EpochsCompleted),
                    null, null);
                break;
            default:
                await FinishAsync(run.JobId, run.Attempt, JobStatus.Succeeded,
                    outcome.StopReason == StopReason.EarlyStopped ? StopReasons.EarlyStopped : StopReasons.Completed,
                    null, outcome.BestEpoch, model);
                break;
        }
    }

    /// <summary>
    /// The fallback for a missed NOTIFY (a listener reconnecting after an outage misses those sent meanwhile): re-read the
    /// status now and then while training. An error skips one look, never the rest: the poller lives as long as the run.
    /// </summary>
    private async Task PollForCancelAsync(Guid jobId, CancellationTokenSource cancel, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(workerOptions.Value.CancellationPollInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                try
                {
                    if (await store.StatusAsync(jobId, stop) == JobStatus.Cancelling)
                    {
                        await cancel.CancelAsync();
                        return;
                    }
                }
                catch (Exception e) when (TransientRetry.IsTransient(e) || e is NpgsqlException)
                {
                    logger.LogWarning("Cancel polling for job {JobId} failed ({Error}); polling on", jobId, e.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// Stores each epoch (and its checkpoint) as the trainer reports it, with the curve's diagnoses as of that epoch, riding
    /// out a short outage. A write fenced off (the job is another attempt's) stops training at the next batch, as a lost
    /// lease does.
    /// </summary>
    private sealed class EpochWriter(JobStore store, TransientRetry retry, Run run, CurveReader diagnoses, int trainRows, ITrialPruner? pruner,
        ILogger logger) : ITrainingObserver
    {
        public CurveReader Diagnoses => diagnoses;

        public async ValueTask OnEpochAsync(EpochRecord record, TrainingCheckpoint? checkpoint)
        {
            if (run.Lost.IsCancellationRequested)
            {
                return;
            }
            RecordEpochTelemetry(record, trainRows);
            string diagnosed = diagnoses.Add(record);
            if (!await retry.RunAsync($"Storing epoch {record.Epoch}",
                ct => store.RecordEpochAsync(run.JobId, run.Attempt, record, checkpoint, diagnosed, ct), CancellationToken.None))
            {
                await run.Lost.CancelAsync();
                return;
            }
            await PruneAsync(record);
        }

        /// <summary>Asks the trial's sweep, once the epoch is stored (its peers compare with it), whether the trial stops here.</summary>
        private async Task PruneAsync(EpochRecord record)
        {
            try
            {
                if (pruner is not null && await pruner.ShouldStopAsync(record, run.Stop))
                {
                    logger.LogInformation("Job {JobId}: pruned by its sweep after epoch {Epoch}", run.JobId, record.Epoch);
                    await run.Pruned.CancelAsync();
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Not knowing is not pruning: the trial trains on, and the next decision epoch asks again.
                logger.LogWarning("Job {JobId}: the pruning decision after epoch {Epoch} failed ({Error}); training on", run.JobId, record.Epoch, e.Message);
            }
        }
    }

    /// <summary>
    /// The epoch as a span (back-dated to its start) under the attempt's, and its metrics: duration, rows trained, and the
    /// kernel time of its two phases (the training pass takes rows / samples-per-second; evaluation the rest).
    /// </summary>
    private static void RecordEpochTelemetry(EpochRecord record, int trainRows)
    {
        var duration = TimeSpan.FromMilliseconds(record.DurationMs);
        Instruments.Source.StartActivity("epoch", ActivityKind.Internal, parentContext: default, startTime: DateTimeOffset.UtcNow - duration)?
            .SetTag("epoch", record.Epoch).Dispose();
        double trainSeconds = record.SamplesPerSecond > 0 ? trainRows / record.SamplesPerSecond : duration.TotalSeconds;
        Instruments.EpochDuration.Record(duration.TotalSeconds);
        Instruments.SamplesTrained.Add(trainRows);
        Instruments.ComputeDuration.Record(trainSeconds, new KeyValuePair<string, object?>("phase", "train"));
        Instruments.ComputeDuration.Record(Math.Max(0, duration.TotalSeconds - trainSeconds), new KeyValuePair<string, object?>("phase", "evaluate"));
    }

    /// <summary>The curve so far and its diagnoses after each epoch, as JSON, timing what that costs.</summary>
    private sealed class CurveReader(List<CurvePoint> curve, Baseline baseline, DiagnosisThresholds thresholds)
    {
        private readonly Stopwatch _clock = new();

        public int Epochs { get; private set; }

        public double MicrosecondsPerEpoch => Epochs == 0 ? 0 : _clock.Elapsed.TotalMicroseconds / Epochs;

        public string Add(EpochRecord record)
        {
            _clock.Start();
            if (curve.Count > 0 && curve[^1].Epoch >= record.Epoch)
            {
                curve.RemoveAll(p => p.Epoch >= record.Epoch); // resumed before the last stored epoch: it is recomputed
            }
            curve.Add(CurvePoint.Of(record));
            string json = JsonSerializer.Serialize(CurveDiagnostics.Diagnose(curve, baseline, thresholds), ApiJson.Options);
            _clock.Stop();
            Epochs++;
            return json;
        }
    }
}
