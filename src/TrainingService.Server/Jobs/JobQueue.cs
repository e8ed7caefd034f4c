using TrainingService.Compute.Devices;
using Hangfire;
using Hangfire.PostgreSql;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using TrainingService.Server.Configuration;
using TrainingService.Server.Data;
using TrainingService.Server.Datasets;

namespace TrainingService.Server.Jobs;

/// <summary>
/// Hangfire on PostgreSQL, tuned for training rather than its defaults: LISTEN/NOTIFY pickup (well under a second, not a
/// 15 s poll) in every process that enqueues or works; a sliding invisibility timeout so a long job is never handed to
/// a second worker while its owner lives; no automatic retries; a small worker count; and a shutdown long enough for
/// the running job to reach a batch boundary. A dead worker is found by its job's lease (<see cref="JobRecovery"/>, in
/// seconds), not by the invisibility timeout; its server row by a heartbeat every
/// <see cref="WorkerOptions.HeartbeatInterval"/>, which readiness reads (<see cref="WorkerHealthCheck"/>).
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
        services.AddSingleton<FairScheduler>();
        services.AddSingleton<IDatasetReferences>(provider => provider.GetRequiredService<JobStore>());
        services.AddSingleton<JobSpecValidator>();
        services.AddSingleton<JobPlanner>();
        services.AddScoped<JobSubmitter>();
        services.AddSingleton<JobEventHub>();
        services.AddSingleton<JobStates>();
        services.AddSingleton<WorkerPresence>();
        services.TryAddSingleton(TimeProvider.System);
        services.AddHostedService(provider => provider.GetRequiredService<JobEventHub>());
        services.AddHealthChecks().AddCheck<WorkerHealthCheck>("hangfire", tags: ["ready"]);
        if (service.RunsJobs)
        {
            services.AddTransient<TrainingJob>();
            services.AddSingleton<TransientRetry>();
            AddTrainingServer(services);
            // The host must outwait the Hangfire server, or it disposes the accelerator under a job still stopping.
            services.AddOptions<HostOptions>().Configure<IOptions<WorkerOptions>>((host, worker) =>
                host.ShutdownTimeout = worker.Value.ShutdownTimeout + TimeSpan.FromSeconds(15));
            services.AddHostedService<JobRecovery>();
        }
        return services;
    }

    /// <summary>The Hangfire server of a worker: its pool's queues, one worker, and timings fitted to training.</summary>
    private static void AddTrainingServer(IServiceCollection services)
    {
        services.AddHangfireServer((provider, options) =>
        {
            var worker = provider.GetRequiredService<IOptions<WorkerOptions>>().Value;
            var device = provider.GetRequiredService<ComputeDevice>();
            var pool = ComputePools.PoolOf(worker.Pool, device.IsCpu);
            if (pool == WorkerPool.Cuda && device.IsCpu)
            {
                provider.GetRequiredService<ILogger<TrainingJob>>().LogWarning(
                    "Worker:Pool is Cuda on {Device}: this worker takes cuda jobs without a GPU (a test of routing)", device.Description);
            }
            options.ServerName = TrainingJob.Worker;
            options.Queues = ComputePools.QueuesOf(pool);
            options.WorkerCount = worker.WorkerCount;
            // StopTimeout is when a stopping server fires the running job's token: at once, so training stops at the
            // next batch and the job is requeued; ShutdownTimeout bounds how long the server then waits for it.
            options.StopTimeout = TimeSpan.FromMilliseconds(500);
            options.ShutdownTimeout = worker.ShutdownTimeout;
            options.CancellationCheckInterval = TimeSpan.FromSeconds(1);
            options.SchedulePollingInterval = TimeSpan.FromSeconds(5);
            // Readiness counts a server live for three heartbeats. Its row goes after a minute, not Hangfire's five: a live
            // server that misses heartbeats that long (a database outage) is taken for dead, restarts, and its job resumes.
            options.HeartbeatInterval = worker.HeartbeatInterval;
            options.ServerTimeout = TimeSpan.FromMinutes(1);
            options.ServerCheckInterval = TimeSpan.FromSeconds(15);
        });
    }

    /// <summary>
    /// Puts a job on the training queue and records the Hangfire id (for a new job, only if no worker has recorded it
    /// first: see <see cref="JobStore.SetHangfireJobAsync"/>).
    /// </summary>
    public static async Task EnqueueAsync(this IBackgroundJobClient client, JobStore store, Guid jobId, CancellationToken cancellationToken,
        bool newJob = false, string device = ComputePools.Any)
    {
        string hangfireId = client.EnqueueTraining(jobId, device);
        await store.SetHangfireJobAsync(jobId, hangfireId, cancellationToken, onlyIfUnset: newJob);
    }

    /// <summary>
    /// Puts a job on its pool's queue (<see cref="ComputePools.QueueOf"/>); returns the Hangfire job id, which is also the id
    /// of the attempt it starts. The queue is stored with the Hangfire job, so it holds through every later state change.
    /// </summary>
    public static string EnqueueTraining(this IBackgroundJobClient client, Guid jobId, string device) =>
        client.Enqueue<TrainingJob>(ComputePools.QueueOf(device), j => j.RunAsync(jobId, null, CancellationToken.None));

    /// <summary>Schedules a job's delivery on its pool's queue after <paramref name="delay"/>.</summary>
    public static string ScheduleTraining(this IBackgroundJobClient client, Guid jobId, string device, TimeSpan delay) =>
        client.Schedule<TrainingJob>(ComputePools.QueueOf(device), j => j.RunAsync(jobId, null, CancellationToken.None), delay);
}
