using System.Security.Cryptography;
using System.Text.Json;
using Hangfire;
using Microsoft.Extensions.Options;
using TrainingService.Server.Configuration;
using TrainingService.Server.Data.Entities;
using TrainingService.Server.Datasets;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Jobs;

/// <summary>
/// Accepts a job: validates the spec once, plans it against its dataset, stores it with <see cref="JobStore"/> and puts it
/// on the queue. Serves new submissions and retries alike.
/// </summary>
public sealed class JobSubmitter(JobSpecValidator validator, JobPlanner planner, DatasetStore datasets, JobStore store,
    IBackgroundJobClient client, IOptions<JobOptions> options, IOptions<QuotaOptions> quotas, ILogger<JobSubmitter> logger)
{
    /// <summary>
    /// The datasets this submitter has read. It is scoped: one request, or one advance of a sweep, which plans many specs
    /// of the same dataset (each value of each parameter). A dataset deleted meanwhile is still refused when the job is
    /// stored, under the dataset's row lock.
    /// </summary>
    private readonly Dictionary<(string Tenant, Guid Id), DatasetInfo?> _datasets = [];

    /// <summary>The accepted job as stored (an earlier one for a repeated idempotency key), or the problem that refused it.</summary>
    public async Task<(Job? Job, ApiProblem? Problem)> SubmitAsync(string tenant, SubmitJobRequest request, string? idempotencyKey, Guid? retryOf,
        CancellationToken cancellationToken, SweepTrialRef? trial = null)
    {
        using var span = Instruments.Source.StartActivity("job submit");
        var (plan, problem) = await PlanAsync(tenant, request, cancellationToken);
        if (plan is null)
        {
            return (null, problem);
        }
        string requestHash = Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(request, ApiJson.Options)));
        var job = new NewJob(tenant, request.DatasetId!.Value, JsonSerializer.Serialize(plan.Normalized, ApiJson.Options), plan.Seed, plan.Epochs,
            retryOf, idempotencyKey, requestHash, quotas.Value.For(tenant).MaxQueuedJobs, plan.Normalized.Compute!.Device!, span?.Id) { Trial = trial };
        var (created, refused) = await store.CreateAsync(job, options.Value.IdempotencyWindow, cancellationToken);
        if (created is null)
        {
            return (null, refused?.Code == JobStore.QueueFull ? refused with { Extensions = RetryAfter(quotas.Value.QueueRetryAfter) } : refused);
        }
        span?.SetTag("job.id", created.JobId.ToString());
        // The response describes the job as accepted; a worker may start it the moment it is enqueued.
        var accepted = await store.FindAsync(tenant, created.JobId, cancellationToken);
        if (created.IsNew)
        {
            await EnqueueAsync(created.JobId, plan.Normalized.Compute!.Device!, cancellationToken);
        }
        return (accepted, null);
    }

    /// <summary>
    /// Validates a spec and plans it against its dataset, storing nothing: what a submit does before it stores, and what a
    /// sweep does to check its base spec and each parameter value.
    /// </summary>
    public async Task<(JobPlan? Plan, ApiProblem? Problem)> PlanAsync(string tenant, SubmitJobRequest request, CancellationToken cancellationToken)
    {
        if (!validator.TryValidate(request, out var spec, out var problem))
        {
            return (null, problem);
        }
        var key = (tenant, request.DatasetId!.Value);
        if (!_datasets.TryGetValue(key, out var dataset))
        {
            _datasets[key] = dataset = await datasets.FindAsync(tenant, key.Value, cancellationToken);
        }
        if (dataset is null)
        {
            return (null, ApiProblem.Unprocessable("job.unknown_dataset", $"No dataset {request.DatasetId}; upload one with POST /api/datasets.", "datasetId"));
        }
        return planner.TryPlan(spec, dataset.Columns, out var plan, out problem) ? (plan, null) : (null, problem);
    }

    private static Dictionary<string, object?> RetryAfter(TimeSpan wait) =>
        new() { [RetryAfterExtension] = (int)Math.Ceiling(wait.TotalSeconds) };

    /// <summary>The problem extension that carries the seconds of a 429's <c>Retry-After</c> header.</summary>
    public const string RetryAfterExtension = "retryAfter";

    private async Task EnqueueAsync(Guid id, string device, CancellationToken cancellationToken)
    {
        using var span = Instruments.Source.StartActivity("job enqueue")?.SetTag("job.id", id.ToString()).SetTag("job.device", device);
        try
        {
            await client.EnqueueAsync(store, id, cancellationToken, newJob: true, device);
        }
        catch (Exception e)
        {
            // Accepted is accepted: the job is committed, and JobRecovery enqueues it if this failed.
            logger.LogWarning(e, "Enqueueing job {JobId} failed; recovery will enqueue it", id);
        }
    }
}
