using Hangfire;
using Hangfire.States;
using Microsoft.Extensions.Options;
using Npgsql;
using TrainingService.Server.Configuration;

namespace TrainingService.Server.Jobs;

/// <summary>
/// Fair scheduling across tenants on top of Hangfire's first-in-first-out queue. Every queued job keeps exactly one
/// Hangfire job that carries it (<c>jobs.hangfire_job_id</c>, which <see cref="JobRecovery"/> relies on), but which job a
/// Hangfire job carries may change while both wait: when a worker picks up a Hangfire job it takes the scheduling turn (a
/// session advisory lock, one worker at a time across all processes), finds the job it carries, and chooses the fairest
/// queued job that may start (<see cref="JobStore.ChooseAsync"/>: fewest running jobs in its tenant and under that tenant's
/// <c>MaxRunningJobs</c>, then the tenant served least recently, then the oldest job). If that is another job, the two rows
/// swap Hangfire jobs and the worker runs the fairest one; the other's Hangfire job, still enqueued, now carries the job
/// this one carried. So one tenant's backlog of 500 waits behind another tenant's single job, which starts at the next
/// free worker. The turn is held until the chosen job is running (<see cref="SchedulerTurn.ReleaseAsync"/>), so the
/// running counts the next worker reads are exact and a limit is never passed by two workers starting at once.
/// <para>
/// When nothing may start (every queued job's tenant is at its limit) the carried job is scheduled again after
/// <see cref="QuotaOptions.DeferredRecheck"/> under a new Hangfire job, recorded in place of this one, and this one ends:
/// never lost (the row always names a live Hangfire job) and no spinning. A job that ends wakes the fairest startable
/// job at once if its Hangfire job is such a scheduled one (<see cref="WakeAsync"/>), so the recheck is only a safety net.
/// </para>
/// </summary>
public sealed class FairScheduler(NpgsqlDataSource dataSource, JobStore store, IBackgroundJobClient client, IOptions<QuotaOptions> quotas,
    ILogger<FairScheduler> logger)
{
    /// <summary>The advisory lock key of the scheduling turn ("TSturn!!").</summary>
    private const long TurnKey = 0x5453_7475_726e_2121;

    /// <summary>
    /// Takes the turn and chooses the job this delivery runs: <paramref name="jobId"/>'s row may no longer be the one the
    /// Hangfire job <paramref name="hangfireJobId"/> carries. With fair scheduling off (or no Hangfire job, outside a
    /// worker) it is simply <paramref name="jobId"/>.
    /// </summary>
    public async Task<SchedulerTurn> TakeTurnAsync(Guid jobId, string? hangfireJobId, CancellationToken cancellationToken)
    {
        if (!quotas.Value.FairScheduling || hangfireJobId is null)
        {
            return new SchedulerTurn(jobId, null);
        }
        var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        try
        {
            await using (var take = new NpgsqlCommand("SELECT pg_advisory_lock(@key)", connection))
            {
                take.Parameters.AddWithValue("key", TurnKey);
                await take.ExecuteNonQueryAsync(cancellationToken);
            }
            var choice = await store.ChooseAsync(connection, jobId, hangfireJobId, RunningLimits.From(quotas.Value),
                (carried, device) => client.ScheduleTraining(carried, device, quotas.Value.DeferredRecheck),
                cancellationToken);
            LogChoice(choice, hangfireJobId);
            return new SchedulerTurn(choice.Run, connection);
        }
        catch
        {
            await new SchedulerTurn(null, connection).ReleaseAsync();
            throw;
        }
    }

    private void LogChoice(SchedulingChoice choice, string hangfireJobId)
    {
        switch (choice.Outcome)
        {
            case "swapped":
                logger.LogInformation("Hangfire job {HangfireJobId} runs job {JobId}, fairer than job {CarriedJobId}, which keeps a place in the queue",
                    hangfireJobId, choice.Run, choice.Carried);
                break;
            case "deferred":
                logger.LogInformation("No queued job may start (every tenant with one is at its running-jobs limit); job {JobId} waits", choice.Carried);
                break;
        }
    }

    /// <summary>
    /// After a job ends: if the fairest job that may now start waits on a deferred (scheduled) Hangfire job, enqueue that
    /// one now rather than at its recheck. Best effort: the recheck is the safety net.
    /// </summary>
    public async Task WakeAsync(CancellationToken cancellationToken)
    {
        if (!quotas.Value.FairScheduling)
        {
            return;
        }
        try
        {
            if (await store.FairestAsync(RunningLimits.From(quotas.Value), cancellationToken) is { } next
                && client.ChangeState(next.HangfireJobId, new EnqueuedState(ComputePools.QueueOf(next.Device)), ScheduledState.StateName))
            {
                logger.LogInformation("Job {JobId} may start now; its deferred Hangfire job {HangfireJobId} is enqueued", next.Id, next.HangfireJobId);
            }
        }
        catch (Exception e) when (e is NpgsqlException or BackgroundJobClientException or TimeoutException or InvalidOperationException)
        {
            logger.LogWarning("Waking the next deferred job failed ({Error}); its recheck will start it", e.Message);
        }
    }
}

/// <summary>
/// A worker's scheduling turn: <see cref="JobId"/> is the job to run (null when nothing may start). Held until the job is
/// running (<see cref="ReleaseAsync"/>) or the delivery ends (dispose); a dead worker's turn ends with its session.
/// </summary>
public sealed class SchedulerTurn(Guid? jobId, NpgsqlConnection? connection) : IAsyncDisposable
{
    private bool _released;

    public Guid? JobId => jobId;

    public async ValueTask ReleaseAsync()
    {
        if (_released || connection is null)
        {
            return;
        }
        _released = true;
        try
        {
            await using var release = new NpgsqlCommand("SELECT pg_advisory_unlock_all()", connection);
            await release.ExecuteNonQueryAsync(CancellationToken.None);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException or IOException)
        {
            // A broken connection is discarded, not pooled: its session, and the lock, end with it.
        }
        await connection.DisposeAsync();
    }

    public ValueTask DisposeAsync() => ReleaseAsync();
}
