using System.Globalization;
using System.Text;
using System.Text.Json;
using Hangfire;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using TrainingService.Server.Access;
using TrainingService.Server.Configuration;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Jobs;

/// <summary>Submit, list, read, cancel and retry jobs. Each handler binds, calls one service, and maps the result.</summary>
public static class JobEndpoints
{
    public static IEndpointRouteBuilder MapJobEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/jobs").WithTags("Jobs");
        group.MapPost("/", Submit).WithName("SubmitJob").RequireRole(Role.Member)
            .WithSummary("Submit a training spec; the job is queued for a worker (202)")
            .WithDescription("Honours an Idempotency-Key header: the same key and body within Jobs:IdempotencyWindow returns the " +
                "first job; the same key with another body is a 422.")
            .WithJsonExample(new
            {
                datasetId = "00000000-0000-0000-0000-000000000000",
                target = "species",
                model = new { type = "mlp", hiddenLayers = new[] { 32 }, activation = "relu" },
                loss = new { name = "cross_entropy", label_smoothing = 0.05 },
                optimizer = new { name = "adam", learningRate = 0.01 },
                schedule = new { name = "cosine", warmupEpochs = 2 },
                epochs = 30,
                batchSize = 16,
                validation = new { fraction = 0.2 },
                earlyStopping = new { monitor = "valLoss", patience = 5 },
                seed = 42,
            });
        group.MapGet("/", List).WithName("ListJobs").RequireRole(Role.Viewer).WithSummary("Jobs, newest first, with cursor pagination (filters: status, datasetId, createdAfter, sweepId)");
        group.MapGet("/{id:guid}", Get).WithName("GetJob").RequireRole(Role.Viewer).WithSummary("A job: status, transitions, progress, summary (ETag)")
            .Produces<JobResponse>().Produces(304).ProducesProblem(404);
        group.MapPost("/{id:guid}/cancel", Cancel).WithName("CancelJob").RequireRole(Role.Member)
            .WithSummary("Cancel: a queued job at once, a running one at its next batch boundary");
        group.MapPost("/{id:guid}/retry", Retry).WithName("RetryJob").RequireRole(Role.Member).WithSummary("A new job with the same spec (retryOf links back)");
        return app;
    }

    private static async Task<Results<Accepted<JobResponse>, ProblemHttpResult>> Submit(SubmitJobRequest request, HttpRequest http,
        JobSubmitter submitter, CancellationToken cancellationToken)
    {
        string? idempotencyKey = http.Headers["Idempotency-Key"].FirstOrDefault();
        if (idempotencyKey is { Length: 0 or > 255 })
        {
            return Problems.BadRequest("job.invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters.", "Idempotency-Key");
        }
        return Accepted(http.HttpContext, await submitter.SubmitAsync(http.HttpContext.Caller().Tenant, request, idempotencyKey, retryOf: null, cancellationToken));
    }

    private static async Task<IResult> Get(Guid id, HttpRequest http, HttpResponse response, JobStates states, JobStore store,
        WorkerPresence presence, CancellationToken cancellationToken)
    {
        string tenant = http.HttpContext.Caller().Tenant;
        var state = await states.GetAsync(tenant, id, cancellationToken);
        if (state is null)
        {
            return NotFound(id);
        }
        bool waiting = state.Status == JobStatus.Queued && await presence.IsUnservedAsync(state.ComputeDevice, cancellationToken);
        string etag = JobMapping.ETag(id, state.Version, waiting);
        if (ETags.Matches(http, etag))
        {
            return ETags.NotModified(response, etag);
        }
        var job = await store.FindAsync(tenant, id, cancellationToken);
        if (job is null)
        {
            return NotFound(id);
        }
        var wait = await presence.WaitingAsync(job, cancellationToken);
        response.Headers.ETag = JobMapping.ETag(id, job.Version, wait is not null);
        return TypedResults.Ok(job.ToResponse(wait));
    }

    /// <summary>Query parameters of <c>GET /api/jobs</c>.</summary>
    private sealed record ListQuery(string? Status, Guid? DatasetId, DateTimeOffset? CreatedAfter, int? Limit, string? Cursor, Guid? SweepId);

    private static async Task<Results<Ok<JobPage>, ProblemHttpResult>> List([AsParameters] ListQuery query, HttpContext http, JobStore store,
        WorkerPresence presence, IOptions<JobOptions> options, CancellationToken cancellationToken)
    {
        int max = options.Value.MaxListLimit;
        int take = query.Limit ?? Math.Min(20, max);
        if (take < 1 || take > max)
        {
            return Problems.BadRequest("job.invalid_limit", $"limit must be between 1 and {max} (Jobs:MaxListLimit).", "limit");
        }
        if (query.Status is not null && !JobStatus.All.Contains(query.Status))
        {
            return Problems.BadRequest("job.invalid_status", $"status must be one of {string.Join(", ", JobStatus.All)}.", "status");
        }
        (DateTimeOffset, Guid)? before = null;
        if (query.Cursor is not null)
        {
            if (!TryReadCursor(query.Cursor, out var at, out var after))
            {
                return Problems.BadRequest("job.invalid_cursor", "cursor is not one this API returned.", "cursor");
            }
            before = (at, after);
        }
        var page = await store.ListAsync(new JobFilter(http.Caller().Tenant, query.Status, query.DatasetId, query.CreatedAfter) { SweepId = query.SweepId }, before, take + 1, cancellationToken);
        string? next = page.Count > take ? WriteCursor(page[take - 1].CreatedAt, page[take - 1].Id) : null;
        var items = new List<JobResponse>(take);
        foreach (var job in page.Take(take))
        {
            items.Add(job.ToResponse(await presence.WaitingAsync(job, cancellationToken)));
        }
        return TypedResults.Ok(new JobPage(items, next));
    }

    private static async Task<Results<Accepted<JobResponse>, ProblemHttpResult>> Cancel(Guid id, HttpContext http, JobStore store, IBackgroundJobClient client,
        ILogger<JobStore> logger, CancellationToken cancellationToken)
    {
        var (job, problem) = await store.CancelAsync(http.Caller().Tenant, id, cancellationToken);
        if (problem is not null || job is null)
        {
            return problem?.ToResult() ?? NotFound(id);
        }
        if (job.Status == JobStatus.Cancelled && job.HangfireJobId is not null)
        {
            try
            {
                client.Delete(job.HangfireJobId); // never picked up; if a worker has it anyway, it sees the status and stops
            }
            catch (Exception e)
            {
                // The cancel is committed: a Hangfire job left behind finds the job cancelled and does nothing.
                logger.LogWarning(e, "Deleting Hangfire job {HangfireJobId} of cancelled job {JobId} failed", job.HangfireJobId, id);
            }
        }
        return TypedResults.Accepted($"/api/jobs/{id}", job.ToResponse());
    }

    private static async Task<Results<Accepted<JobResponse>, ProblemHttpResult>> Retry(Guid id, HttpContext http, JobStore store,
        JobSubmitter submitter, CancellationToken cancellationToken)
    {
        var original = await store.FindAsync(http.Caller().Tenant, id, cancellationToken);
        if (original is null)
        {
            return NotFound(id);
        }
        var spec = JsonSerializer.Deserialize<SubmitJobRequest>(original.Spec, ApiJson.Options)!;
        return Accepted(http, await submitter.SubmitAsync(http.Caller().Tenant, spec, idempotencyKey: null, retryOf: id, cancellationToken));
    }

    /// <summary>The accepted job, or its problem (a full queue's 429 with its Retry-After header).</summary>
    private static Results<Accepted<JobResponse>, ProblemHttpResult> Accepted(HttpContext http, (Data.Entities.Job? Job, ApiProblem? Problem) outcome)
    {
        if (outcome.Job is { } job)
        {
            return TypedResults.Accepted($"/api/jobs/{job.Id}", job.ToResponse());
        }
        if (outcome.Problem!.Extensions?.GetValueOrDefault(JobSubmitter.RetryAfterExtension) is int seconds)
        {
            http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        }
        return outcome.Problem.ToResult();
    }

    private static string WriteCursor(DateTimeOffset at, Guid id) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes($"{at.UtcTicks}:{id:N}")).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static bool TryReadCursor(string cursor, out DateTimeOffset at, out Guid id)
    {
        at = default;
        id = default;
        try
        {
            string padded = cursor.Replace('-', '+').Replace('_', '/');
            padded += new string('=', (4 - padded.Length % 4) % 4);
            var parts = Encoding.UTF8.GetString(Convert.FromBase64String(padded)).Split(':');
            if (parts.Length != 2 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out long ticks)
                || !Guid.TryParseExact(parts[1], "N", out id) || ticks < DateTimeOffset.MinValue.UtcTicks || ticks > DateTimeOffset.MaxValue.UtcTicks)
            {
                return false;
            }
            at = new DateTimeOffset(ticks, TimeSpan.Zero);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private static ProblemHttpResult NotFound(Guid id) => Problems.NotFound("job.not_found", $"No job {id}.");
}
