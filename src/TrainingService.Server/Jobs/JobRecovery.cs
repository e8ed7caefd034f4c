using Hangfire;
using Hangfire.States;
using Microsoft.Extensions.Options;
using Npgsql;
using TrainingService.Server.Configuration;

namespace TrainingService.Server.Jobs;

/// <summary>
/// Puts unfinished jobs that nothing is working on back on the queue, every <see cref="WorkerOptions.RecoveryInterval"/>,
/// so an accepted job is never lost and a dead worker's job resumes in seconds:
/// <list type="bullet">
/// <item>a running or cancelling job whose lease nobody holds has lost its worker (the lease is a session advisory lock, so
/// it ends with the worker's connection), whatever Hangfire says: a killed worker's Hangfire job stays Processing until
/// its invisibility timeout (minutes). A worker takes the lease before it moves a job to running, so a running job with
/// a free lease is never one being started; a resumed job's new delivery is left alone while it is enqueued, and a free
/// lease is looked at twice, a second apart, so a worker that has just fetched the job has time to take it. Right after
/// PostgreSQL restarts every lease is gone: owners get a grace of one interval to take theirs again.
/// The loss is recorded on the job, the dead Hangfire job is deleted (so it can never be delivered again) and a new one
/// enqueued; the job resumes from its last checkpoint, or a cancelling one is marked cancelled.</item>
/// <item>a job queued longer than <see cref="WorkerOptions.RecoveryDelay"/> whose Hangfire job is missing (the API died
/// between commit and enqueue) or no longer alive.</item>
/// </list>
/// </summary>
internal sealed class JobRecovery(NpgsqlDataSource dataSource, IBackgroundJobClient client, JobStorage storage, JobStore store,
    IOptions<WorkerOptions> options, ILogger<JobRecovery> logger) : BackgroundService
{
    private static readonly HashSet<string> LiveStates =
        new([EnqueuedState.StateName, ProcessingState.StateName, ScheduledState.StateName, AwaitingState.StateName], StringComparer.OrdinalIgnoreCase);

    private static readonly HashSet<string> PendingStates =
        new([EnqueuedState.StateName, ScheduledState.StateName, AwaitingState.StateName], StringComparer.OrdinalIgnoreCase);

    /// <summary>How long a free lease must stay free before its job counts as lost: a fetched job's worker takes it in milliseconds.</summary>
    internal static readonly TimeSpan Confirmation = TimeSpan.FromSeconds(1);

    internal sealed record Candidate(Guid Id, string Status, string? HangfireId, bool RecentlyRestarted, string Device = ComputePools.Any);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.RecoveryInterval);
        do
        {
            try
            {
                await RecoverAsync(stoppingToken);
            }
            catch (Exception e) when (TransientRetry.IsTransient(e) || e is NpgsqlException or BackgroundJobClientException)
            {
                dataSource.Clear();
                logger.LogWarning("Job recovery pass failed ({Error}); retrying in {Interval}", e.Message, options.Value.RecoveryInterval);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogError(e, "Job recovery pass failed unexpectedly; retrying in {Interval}", options.Value.RecoveryInterval);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>One pass: finds the orphans and enqueues each once more.</summary>
    internal async Task RecoverAsync(CancellationToken cancellationToken)
    {
        var suspects = new List<Candidate>();
        foreach (var job in await CandidatesAsync(cancellationToken))
        {
            if (job.Status == JobStatus.Queued)
            {
                if ((job.HangfireId is null || !IsAlive(job.HangfireId)) && !await JobLease.IsHeldAsync(dataSource, job.Id, cancellationToken))
                {
                    await RequeueAsync(job, lost: false, cancellationToken);
                }
            }
            else if (!job.RecentlyRestarted && !IsPending(job.HangfireId) && !await JobLease.IsHeldAsync(dataSource, job.Id, cancellationToken))
            {
                suspects.Add(job);
            }
        }
        if (suspects.Count == 0)
        {
            return;
        }
        await Task.Delay(Confirmation, cancellationToken);
        foreach (var job in suspects)
        {
            if (!await JobLease.IsHeldAsync(dataSource, job.Id, cancellationToken))
            {
                await RequeueAsync(job, lost: true, cancellationToken);
            }
        }
    }

    private async Task<List<Candidate>> CandidatesAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT id, status, hangfire_job_id, pg_postmaster_start_time() > now() - @grace, compute_device FROM jobs
            WHERE status = ANY(@active) OR (status = @queued AND created_at < now() - @delay)
            """);
        command.Parameters.AddWithValue("active", new[] { JobStatus.Running, JobStatus.Cancelling });
        command.Parameters.AddWithValue("queued", JobStatus.Queued);
        command.Parameters.AddWithValue("delay", options.Value.RecoveryDelay);
        command.Parameters.AddWithValue("grace", options.Value.RecoveryInterval);
        var candidates = new List<Candidate>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            candidates.Add(new Candidate(reader.GetGuid(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetBoolean(3),
                reader.GetString(4)));
        }
        return candidates;
    }

    /// <summary>
    /// Under the job's lease (so no worker begins an attempt meanwhile): records a lost attempt, enqueues a new Hangfire job
    /// and deletes the dead one. The lease alone does not stop a second pass that read the job before the first enqueued it
    /// (it takes the lease after the first lets go): the enqueue is guarded by what the pass saw (status and Hangfire job).
    /// </summary>
    internal async Task RequeueAsync(Candidate job, bool lost, CancellationToken cancellationToken)
    {
        await using var lease = await JobLease.TryAcquireAsync(dataSource, job.Id, cancellationToken);
        if (lease is null)
        {
            return; // a worker took it meanwhile
        }
        if (lost && !await store.RecordLostAttemptAsync(job.Id, job.HangfireId, cancellationToken))
        {
            return; // finished, or handed on by another pass, since we looked
        }
        string[] statuses = lost ? [JobStatus.Running, JobStatus.Cancelling] : [JobStatus.Queued];
        if (!await store.ReplaceDeliveryAsync(job.Id, statuses, job.HangfireId, () => client.EnqueueTraining(job.Id, job.Device), cancellationToken))
        {
            logger.LogInformation("Job {JobId} moved on since recovery looked at it (Hangfire job {HangfireJobId}); not enqueuing it again",
                job.Id, job.HangfireId ?? "none");
            return;
        }
        logger.LogWarning("Job {JobId} was {Status} but nothing was working on it (Hangfire job {HangfireJobId}); enqueued it again",
            job.Id, job.Status, job.HangfireId ?? "none");
        if (job.HangfireId is not null)
        {
            client.Delete(job.HangfireId); // a dead worker's job would otherwise be delivered again after its invisibility timeout
        }
    }

    private bool IsAlive(string hangfireId) => StateOf(hangfireId) is { } state && LiveStates.Contains(state);

    /// <summary>Enqueued (or scheduled) and not yet fetched: a worker will take it, and its lease, soon.</summary>
    private bool IsPending(string? hangfireId) => hangfireId is not null && StateOf(hangfireId) is { } state && PendingStates.Contains(state);

    private string? StateOf(string hangfireId)
    {
        using var connection = storage.GetConnection();
        return connection.GetStateData(hangfireId)?.Name;
    }
}
