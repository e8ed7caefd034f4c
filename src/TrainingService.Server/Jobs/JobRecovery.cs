using Hangfire;
using Hangfire.States;
using Microsoft.Extensions.Options;
using Npgsql;
using TrainingService.Server.Configuration;

namespace TrainingService.Server.Jobs;

/// <summary>
/// Puts unfinished jobs that nothing is working on back on the queue, so an accepted job is never lost: a job the API
/// committed but died before enqueuing (no Hangfire job), and a job left queued, running or cancelling whose Hangfire job
/// is no longer alive (failed, succeeded, deleted or expired: for instance its final write failed) and whose lease no
/// worker holds. A running job resumes from its last checkpoint; a cancelling one is marked cancelled.
/// </summary>
internal sealed class JobRecovery(NpgsqlDataSource dataSource, IBackgroundJobClient client, JobStorage storage, JobStore store,
    IOptions<WorkerOptions> options, ILogger<JobRecovery> logger) : BackgroundService
{
    private static readonly HashSet<string> LiveStates =
        new([EnqueuedState.StateName, ProcessingState.StateName, ScheduledState.StateName, AwaitingState.StateName], StringComparer.OrdinalIgnoreCase);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.RecoveryDelay);
        do
        {
            try
            {
                await RecoverAsync(stoppingToken);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or BackgroundJobClientException)
            {
                logger.LogWarning(e, "Job recovery pass failed; retrying later");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>One pass: finds the orphans and enqueues each once more.</summary>
    internal async Task RecoverAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT id, status, hangfire_job_id FROM jobs
            WHERE status = ANY(@unfinished) AND created_at < now() - @delay
            """);
        command.Parameters.AddWithValue("unfinished", JobStatus.Unfinished);
        command.Parameters.AddWithValue("delay", options.Value.RecoveryDelay);
        var candidates = new List<(Guid Id, string Status, string? HangfireId)>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                candidates.Add((reader.GetGuid(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2)));
            }
        }
        foreach (var (id, status, hangfireId) in candidates)
        {
            if (hangfireId is not null && IsAlive(hangfireId))
            {
                continue;
            }
            await using (var lease = await JobLease.TryAcquireAsync(dataSource, id, cancellationToken))
            {
                if (lease is null)
                {
                    continue; // a worker owns it
                }
            }
            logger.LogWarning("Job {JobId} is {Status} but nothing is working on it (Hangfire job {HangfireJobId}); enqueuing it again",
                id, status, hangfireId ?? "none");
            await client.EnqueueAsync(store, id, cancellationToken);
        }
    }

    private bool IsAlive(string hangfireId)
    {
        using var connection = storage.GetConnection();
        var state = connection.GetStateData(hangfireId);
        return state is not null && LiveStates.Contains(state.Name);
    }
}
