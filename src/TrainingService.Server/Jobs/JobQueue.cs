using Hangfire;
using Hangfire.PostgreSql;
using Hangfire.States;
using Microsoft.Extensions.Options;
using Npgsql;
using TrainingService.Server.Configuration;
using TrainingService.Server.Data;

namespace TrainingService.Server.Jobs;

/// <summary>
/// Hangfire on PostgreSQL, tuned for training rather than its defaults: LISTEN/NOTIFY pickup (well under a second, not a
/// 15 s poll) in every process that enqueues or works; a sliding invisibility timeout so a long job is never handed to
/// a second worker while its owner lives; no automatic retries; a small worker count; and a shutdown long enough for
/// the running job to reach a batch boundary.
/// </summary>
public static class JobQueue
{
    public static IServiceCollection AddJobQueue(this IServiceCollection services, ServiceOptions service)
    {
        services.AddHangfire((provider, config) =>
        {
            var database = provider.GetRequiredService<IOptions<DatabaseOptions>>().Value;
            var worker = provider.GetRequiredService<IOptions<WorkerOptions>>().Value;
            config.SetDataCompatibilityLevel(CompatibilityLevel.Version_180)
                .UseSimpleAssemblyNameTypeSerializer()
                .UseRecommendedSerializerSettings()
                .UsePostgreSqlStorage(o => o.UseNpgsqlConnection(database.ConnectionString), new PostgreSqlStorageOptions
                {
                    SchemaName = DatabaseSetup.HangfireSchema,
                    PrepareSchemaIfNecessary = false, // installed by MigrateDatabaseAsync, under its lock
                    EnableLongPolling = true,
                    QueuePollInterval = worker.QueuePollInterval,
                    UseSlidingInvisibilityTimeout = true,
                    InvisibilityTimeout = worker.InvisibilityTimeout,
                    DistributedLockTimeout = TimeSpan.FromMinutes(1),
                });
        });

        services.AddSingleton<JobStore>();
        services.AddSingleton<JobPlanner>();
        services.AddSingleton<JobEventHub>();
        services.AddSingleton<JobStates>();
        services.AddHostedService(provider => provider.GetRequiredService<JobEventHub>());
        if (service.RunsJobs)
        {
            services.AddTransient<TrainingJob>();
            services.AddHangfireServer((provider, options) =>
            {
                var worker = provider.GetRequiredService<IOptions<WorkerOptions>>().Value;
                options.ServerName = $"{Environment.MachineName}:{Environment.ProcessId}";
                options.Queues = [TrainingJob.Queue];
                options.WorkerCount = worker.WorkerCount;
                // StopTimeout is when a stopping server fires the running job's token: at once, so training stops at the
                // next batch and the job is requeued; ShutdownTimeout bounds how long the server then waits for it.
                options.StopTimeout = TimeSpan.FromMilliseconds(500);
                options.ShutdownTimeout = worker.ShutdownTimeout;
                options.CancellationCheckInterval = TimeSpan.FromSeconds(1);
                options.SchedulePollingInterval = TimeSpan.FromSeconds(5);
            });
            // The host must outwait the Hangfire server, or it disposes the accelerator under a job still stopping.
            services.AddOptions<HostOptions>().Configure<IOptions<WorkerOptions>>((host, worker) =>
                host.ShutdownTimeout = worker.Value.ShutdownTimeout + TimeSpan.FromSeconds(15));
            services.AddHostedService<JobRecovery>();
        }
        return services;
    }

    /// <summary>Puts a job on the training queue and records the Hangfire id.</summary>
    public static async Task EnqueueAsync(this IBackgroundJobClient client, JobStore store, Guid jobId, CancellationToken cancellationToken)
    {
        string hangfireId = client.Enqueue<TrainingJob>(TrainingJob.Queue, j => j.RunAsync(jobId, CancellationToken.None));
        await store.SetHangfireJobAsync(jobId, hangfireId, cancellationToken);
    }
}

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
