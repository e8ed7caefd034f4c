using Hangfire;
using Hangfire.PostgreSql;
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
        // Retrying a failed training run repeats the same failure; a lost worker is handled by invisibility instead.
        GlobalJobFilters.Filters.Remove(typeof(AutomaticRetryAttribute));
        GlobalJobFilters.Filters.Add(new AutomaticRetryAttribute { Attempts = 0 });

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
            services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromMinutes(1));
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
/// Enqueues queued jobs that have no Hangfire job: an API that died between committing a job and enqueuing it loses
/// nothing, since a worker finds the job here.
/// </summary>
internal sealed class JobRecovery(NpgsqlDataSource dataSource, IBackgroundJobClient client, JobStore store,
    IOptions<WorkerOptions> options, ILogger<JobRecovery> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.RecoveryDelay);
        do
        {
            try
            {
                await using var command = dataSource.CreateCommand(
                    "SELECT id FROM jobs WHERE status = 'queued' AND hangfire_job_id IS NULL AND created_at < now() - @delay");
                command.Parameters.AddWithValue("delay", options.Value.RecoveryDelay);
                var orphans = new List<Guid>();
                await using (var reader = await command.ExecuteReaderAsync(stoppingToken))
                {
                    while (await reader.ReadAsync(stoppingToken))
                    {
                        orphans.Add(reader.GetGuid(0));
                    }
                }
                foreach (var id in orphans)
                {
                    logger.LogWarning("Job {JobId} was accepted but never enqueued; enqueuing it now", id);
                    await client.EnqueueAsync(store, id, stoppingToken);
                }
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                logger.LogWarning(e, "Job recovery pass failed; retrying later");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
