using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Hangfire;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;
using TrainingService.Server.Configuration;
using TrainingService.Server.Data;
using TrainingService.Server.Data.Entities;
using TrainingService.Server.Datasets;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Jobs;

public static class JobEndpoints
{
    public static IEndpointRouteBuilder MapJobEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/jobs").WithTags("Jobs");
        group.MapPost("/", Submit).WithName("SubmitJob")
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
        group.MapGet("/", List).WithName("ListJobs").WithSummary("Jobs, newest first, with cursor pagination");
        group.MapGet("/{id:guid}", Get).WithName("GetJob").WithSummary("A job: status, transitions, progress, summary (ETag)")
            .Produces<JobResponse>().Produces(304).ProducesProblem(404);
        group.MapPost("/{id:guid}/cancel", Cancel).WithName("CancelJob")
            .WithSummary("Cancel: a queued job at once, a running one at its next batch boundary");
        group.MapPost("/{id:guid}/retry", Retry).WithName("RetryJob").WithSummary("A new job with the same spec (retryOf links back)");
        return app;
    }

    private static async Task<Results<Accepted<JobResponse>, ProblemHttpResult>> Submit(SubmitJobRequest request, HttpRequest http,
        JobPlanner planner, DatasetStore datasets, NpgsqlDataSource dataSource, TrainingDbContext db, IBackgroundJobClient client,
        JobStore store, IOptions<JobOptions> options, ILogger<SubmitJobRequest> logger, CancellationToken cancellationToken)
    {
        string? key = http.Headers["Idempotency-Key"].FirstOrDefault();
        if (key is { Length: 0 or > 255 })
        {
            return Problems.BadRequest("job.invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters.", "Idempotency-Key");
        }
        return await CreateAsync(request, key, retryOf: null, planner, datasets, dataSource, db, client, store, options, logger, cancellationToken);
    }

    /// <summary>Validates, stores and enqueues a job: a new submission, or a retry of <paramref name="retryOf"/>.</summary>
    private static async Task<Results<Accepted<JobResponse>, ProblemHttpResult>> CreateAsync(SubmitJobRequest request, string? key, Guid? retryOf,
        JobPlanner planner, DatasetStore datasets, NpgsqlDataSource dataSource, TrainingDbContext db, IBackgroundJobClient client,
        JobStore store, IOptions<JobOptions> options, ILogger<SubmitJobRequest> logger, CancellationToken cancellationToken)
    {
        planner.ValidateShape(request);
        var dataset = await datasets.FindAsync(request.DatasetId!.Value, cancellationToken);
        if (dataset is null)
        {
            return Problems.Unprocessable("job.unknown_dataset", $"No dataset {request.DatasetId}; upload one with POST /api/datasets.", "datasetId");
        }
        var plan = planner.Plan(request, dataset.Id, dataset.Columns);
        string requestHash = Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(request, ApiJson.Options)));

        var id = Guid.CreateVersion7();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        // FOR SHARE: a concurrent DELETE of the dataset waits for this job to exist, then refuses (409).
        await using (var lockDataset = new NpgsqlCommand("SELECT 1 FROM datasets WHERE id = @id FOR SHARE", connection, transaction))
        {
            lockDataset.Parameters.AddWithValue("id", dataset.Id);
            if (await lockDataset.ExecuteScalarAsync(cancellationToken) is null)
            {
                return Problems.Unprocessable("job.unknown_dataset", $"Dataset {dataset.Id} was just deleted.", "datasetId");
            }
        }
        await using (var insert = new NpgsqlCommand("""
            INSERT INTO jobs (id, created_at, dataset_id, status, spec, seed, total_epochs, transitions, epochs_completed, retry_of, version, updated_at)
            VALUES (@id, now(), @dataset, 'queued', @spec, @seed, @epochs,
                    jsonb_build_array(jsonb_build_object('status', 'queued', 'at', now())), 0, @retryOf, 1, now())
            """, connection, transaction))
        {
            insert.Parameters.AddWithValue("id", id);
            insert.Parameters.AddWithValue("dataset", dataset.Id);
            insert.Parameters.AddWithValue("spec", NpgsqlDbType.Jsonb, JsonSerializer.Serialize(plan.Normalized, ApiJson.Options));
            insert.Parameters.AddWithValue("seed", plan.Seed);
            insert.Parameters.AddWithValue("epochs", plan.Epochs);
            insert.Parameters.AddWithValue("retryOf", (object?)retryOf ?? DBNull.Value);
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }
        if (key is not null)
        {
            // Concurrent requests with one key serialise on the key's row: the first commits, the rest find it.
            await using var remember = new NpgsqlCommand("""
                DELETE FROM idempotency_keys WHERE key = @key AND created_at < now() - @window;
                INSERT INTO idempotency_keys (key, request_hash, job_id, created_at) VALUES (@key, @hash, @job, now())
                ON CONFLICT (key) DO NOTHING;
                """, connection, transaction);
            remember.Parameters.AddWithValue("key", key);
            remember.Parameters.AddWithValue("window", options.Value.IdempotencyWindow);
            remember.Parameters.AddWithValue("hash", requestHash);
            remember.Parameters.AddWithValue("job", id);
            await remember.ExecuteNonQueryAsync(cancellationToken);
            await using var owner = new NpgsqlCommand("SELECT request_hash, job_id FROM idempotency_keys WHERE key = @key", connection, transaction);
            owner.Parameters.AddWithValue("key", key);
            await using var reader = await owner.ExecuteReaderAsync(cancellationToken);
            await reader.ReadAsync(cancellationToken);
            string firstHash = reader.GetString(0);
            Guid firstJob = reader.GetGuid(1);
            await reader.DisposeAsync();
            if (firstJob != id)
            {
                await transaction.RollbackAsync(cancellationToken);
                if (firstHash != requestHash)
                {
                    return Problems.Unprocessable("job.idempotency_key_reused",
                        $"Idempotency-Key '{key}' was used for a different request (job {firstJob}).", "Idempotency-Key");
                }
                var existing = await db.Jobs.AsNoTracking().FirstAsync(j => j.Id == firstJob, cancellationToken);
                return TypedResults.Accepted($"/api/jobs/{firstJob}", existing.ToResponse());
            }
        }
        await transaction.CommitAsync(cancellationToken);
        // The response describes the job as accepted; a worker may start it the moment it is enqueued.
        var job = await db.Jobs.AsNoTracking().FirstAsync(j => j.Id == id, cancellationToken);
        try
        {
            await client.EnqueueAsync(store, id, cancellationToken);
        }
        catch (Exception e)
        {
            // Accepted is accepted: the job is committed, and JobRecovery enqueues it if this failed.
            logger.LogWarning(e, "Enqueueing job {JobId} failed; recovery will enqueue it", id);
        }
        return TypedResults.Accepted($"/api/jobs/{id}", job.ToResponse());
    }

    private static async Task<IResult> Get(Guid id, HttpRequest http, HttpResponse response, JobStates states, TrainingDbContext db,
        CancellationToken cancellationToken)
    {
        var state = await states.GetAsync(id, cancellationToken);
        if (state is null)
        {
            return NotFound(id);
        }
        string etag = JobMapping.ETag(id, state.Version);
        if (ETags.Matches(http, etag))
        {
            return ETags.NotModified(response, etag);
        }
        var job = await db.Jobs.AsNoTracking().FirstOrDefaultAsync(j => j.Id == id, cancellationToken);
        if (job is null)
        {
            return NotFound(id);
        }
        response.Headers.ETag = JobMapping.ETag(id, job.Version);
        return TypedResults.Ok(job.ToResponse());
    }

    private static async Task<Results<Ok<JobPage>, ProblemHttpResult>> List(TrainingDbContext db, IOptions<JobOptions> options,
        string? status, Guid? datasetId, DateTimeOffset? createdAfter, int? limit, string? cursor, CancellationToken cancellationToken)
    {
        int max = options.Value.MaxListLimit;
        int take = limit ?? Math.Min(20, max);
        if (take < 1 || take > max)
        {
            return Problems.BadRequest("job.invalid_limit", $"limit must be between 1 and {max} (Jobs:MaxListLimit).", "limit");
        }
        if (status is not null && !JobStatus.All.Contains(status))
        {
            return Problems.BadRequest("job.invalid_status", $"status must be one of {string.Join(", ", JobStatus.All)}.", "status");
        }
        IQueryable<Job> query = db.Jobs.AsNoTracking();
        if (status is not null)
        {
            query = query.Where(j => j.Status == status);
        }
        if (datasetId is not null)
        {
            query = query.Where(j => j.DatasetId == datasetId);
        }
        if (createdAfter is not null)
        {
            query = query.Where(j => j.CreatedAt > createdAfter);
        }
        if (cursor is not null)
        {
            if (!TryReadCursor(cursor, out var at, out var after))
            {
                return Problems.BadRequest("job.invalid_cursor", "cursor is not one this API returned.", "cursor");
            }
            // Keyset pagination: stable when jobs are added while a client pages.
            query = query.Where(j => j.CreatedAt < at || (j.CreatedAt == at && j.Id.CompareTo(after) < 0));
        }
        var page = await query.OrderByDescending(j => j.CreatedAt).ThenByDescending(j => j.Id).Take(take + 1).ToListAsync(cancellationToken);
        string? next = page.Count > take ? WriteCursor(page[take - 1]) : null;
        return TypedResults.Ok(new JobPage(page.Take(take).Select(j => j.ToResponse()).ToList(), next));
    }

    private static string WriteCursor(Job job) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes($"{job.CreatedAt.UtcTicks}:{job.Id:N}")).TrimEnd('=').Replace('+', '-').Replace('/', '_');

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

    // queued → cancelled at once; running → cancelling (the worker stops at its next batch and confirms).
    private static async Task<Results<Accepted<JobResponse>, ProblemHttpResult>> Cancel(Guid id, TrainingDbContext db,
        IBackgroundJobClient client, CancellationToken cancellationToken)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var job = await db.Jobs.FromSql($"SELECT * FROM jobs WHERE id = {id} FOR UPDATE").AsNoTracking().FirstOrDefaultAsync(cancellationToken);
        if (job is null)
        {
            return NotFound(id);
        }
        if (JobStatus.IsTerminal(job.Status))
        {
            return Problems.Conflict("job.not_cancellable", $"Job {id} has already ended ({job.Status}).");
        }
        if (job.Status != JobStatus.Cancelling)
        {
            bool queued = job.Status == JobStatus.Queued;
            string to = queued ? JobStatus.Cancelled : JobStatus.Cancelling;
            string? stopReason = queued ? StopReasons.Cancelled : null;
            job = (await db.Jobs.FromSql($"""
                UPDATE jobs SET status = {to}, cancel_requested_at = now(), version = version + 1, updated_at = now(),
                    finished_at = CASE WHEN {queued} THEN now() END, stop_reason = {stopReason},
                    transitions = transitions || jsonb_build_array(jsonb_build_object('status', {to}::text, 'at', now(), 'note', 'cancel requested'))
                WHERE id = {id} RETURNING *
                """).AsNoTracking().ToListAsync(cancellationToken)).Single();
            await db.Database.ExecuteSqlAsync($"SELECT pg_notify({JobEventHub.Channel}, {JobEventHub.Payload(new JobEvent(id, "cancel"))})", cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        if (job.Status == JobStatus.Cancelled && job.HangfireJobId is not null)
        {
            client.Delete(job.HangfireJobId); // never picked up; if a worker has it anyway, it sees the status and stops
        }
        return TypedResults.Accepted($"/api/jobs/{id}", job.ToResponse());
    }

    private static async Task<Results<Accepted<JobResponse>, ProblemHttpResult>> Retry(Guid id, TrainingDbContext db,
        JobPlanner planner, DatasetStore datasets, NpgsqlDataSource dataSource, IBackgroundJobClient client, JobStore store,
        IOptions<JobOptions> options, ILogger<SubmitJobRequest> logger, CancellationToken cancellationToken)
    {
        var original = await db.Jobs.AsNoTracking().FirstOrDefaultAsync(j => j.Id == id, cancellationToken);
        if (original is null)
        {
            return NotFound(id);
        }
        var spec = JsonSerializer.Deserialize<SubmitJobRequest>(original.Spec, ApiJson.Options)!;
        return await CreateAsync(spec, key: null, retryOf: id, planner, datasets, dataSource, db, client, store, options, logger, cancellationToken);
    }

    private static ProblemHttpResult NotFound(Guid id) => Problems.NotFound("job.not_found", $"No job {id}.");
}
