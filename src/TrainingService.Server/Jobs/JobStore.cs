using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using TrainingService.Server.Datasets;
using TrainingService.Server.Infrastructure;
using TrainingService.Compute.Training;
using TrainingService.Server.Data.Entities;

namespace TrainingService.Server.Jobs;

/// <summary>What the history endpoints say about their job.</summary>
public sealed record JobState(string Tenant, long Version, string Status, string? StopReason, int EpochsCompleted, int TotalEpochs, JobFailure? Failure,
    string ComputeDevice = ComputePools.Any)
{
    /// <summary>The trivial model's losses, parsed once per state read (histories show it on every page).</summary>
    public JsonElement? Baseline { get; init; }
    /// <summary>The curve's diagnoses as of the last epoch written, parsed once per state read.</summary>
    public JsonElement Diagnoses { get; init; } = NoDiagnoses;

    /// <summary>An empty JSON array: a job before its first epoch.</summary>
    public static readonly JsonElement NoDiagnoses = JsonSerializer.Deserialize<JsonElement>("[]");
}

/// <summary>A job to insert: the normalized spec, the idempotency key it came with, if any, and its tenant's queued-jobs quota.</summary>
public sealed record NewJob(string Tenant, Guid DatasetId, string Spec, int Seed, int TotalEpochs, Guid? RetryOf, string? IdempotencyKey, string RequestHash,
    int MaxQueued = int.MaxValue, string ComputeDevice = ComputePools.Any, string? TraceParent = null)
{
    /// <summary>The sweep trial this job is, if any.</summary>
    public SweepTrialRef? Trial { get; init; }
}

/// <summary>A job's place in a sweep: the sweep, the trial's index, and its parameter assignment as a JSON object.</summary>
public sealed record SweepTrialRef(Guid SweepId, int Index, string Parameters);

/// <summary>What a submit did: inserted a new job, or found the job an earlier request with the same key created.</summary>
public sealed record JobCreation(Guid JobId, bool IsNew);

/// <summary>Filters of a job listing; null means any.</summary>
public sealed record JobFilter(string Tenant, string? Status, Guid? DatasetId, DateTimeOffset? CreatedAfter)
{
    /// <summary>Only the trials of this sweep.</summary>
    public Guid? SweepId { get; init; }
}

/// <summary>What the worker reads to run a job.</summary>
public sealed record JobRun(string Tenant, string Status, string Spec, Guid? DatasetId, DateTimeOffset? StartedAt)
{
    public DateTimeOffset CreatedAt { get; init; }
    public string ComputeDevice { get; init; } = ComputePools.Any;
    /// <summary>The submit's W3C traceparent: the worker's spans join that trace.</summary>
    public string? TraceParent { get; init; }
    /// <summary>The sweep the job is a trial of: its epochs may be pruned, and its end advances the sweep.</summary>
    public Guid? SweepId { get; init; }
}

/// <summary>A job's failure as stored.</summary>
public sealed record FailureInfo(string Code, string Message, int? Epoch = null);

/// <summary>A finished job's model document, its ETag, and the epoch it comes from (keep: best or last).</summary>
public sealed record StoredModel(string Json, string ETag, int Epoch);

/// <summary>
/// The one writer of job rows and their histories, checkpoints, models and idempotency keys: submit, cancel, start,
/// epochs, finish, and the unlinking of a deleted dataset. Raw SQL rather than EF because each write is one atomic
/// PostgreSQL statement or transaction with its NOTIFY: a guarded state transition (<c>UPDATE … WHERE status = ANY(…)</c>),
/// an idempotent epoch upsert (<c>ON CONFLICT</c>) with the job's summary and version bump, a checkpoint replace.
/// Every change a client can see bumps <c>jobs.version</c>, which ETags are made from, and sends a NOTIFY in the same transaction
/// (<see cref="NotifyAsync"/>, called from this class only): <see cref="JobStates"/> relies on that.
/// </summary>
public sealed partial class JobStore(NpgsqlDataSource dataSource, JobEventHub events) : IDatasetReferences
{
    private const string AppendTransition =
        "transitions = transitions || jsonb_build_array(jsonb_build_object('status', @to::text, 'at', now(), 'note', @note::text))";

    /// <summary>
    /// Inserts a queued job, holding its dataset (a concurrent delete waits, then refuses with 409). With an idempotency
    /// key, concurrent requests serialise on the key's row: the first commits, the rest find its job, or a 422 problem
    /// when their body differs. Past the tenant's queued-jobs quota a new job is refused (429 <c>quota.queued_jobs</c>, with
    /// a <c>retryAfter</c> for the header); submits of one tenant count under a transaction lock, so two cannot both pass.
    /// </summary>
    public async Task<(JobCreation? Job, ApiProblem? Problem)> CreateAsync(NewJob job, TimeSpan idempotencyWindow, CancellationToken cancellationToken)
    {
        var id = Guid.CreateVersion7();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var lockDataset = new NpgsqlCommand("SELECT 1 FROM datasets WHERE id = @id AND tenant = @tenant FOR SHARE", connection, transaction))
        {
            lockDataset.Parameters.AddWithValue("id", job.DatasetId);
            lockDataset.Parameters.AddWithValue("tenant", job.Tenant);
            if (await lockDataset.ExecuteScalarAsync(cancellationToken) is null)
            {
                return (null, ApiProblem.Unprocessable("job.unknown_dataset", $"Dataset {job.DatasetId} was just deleted.", "datasetId"));
            }
        }
        if (job.MaxQueued < int.MaxValue)
        {
            await using var serialise = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtextextended('queued jobs of ' || @tenant, 0))", connection, transaction);
            serialise.Parameters.AddWithValue("tenant", job.Tenant);
            await serialise.ExecuteNonQueryAsync(cancellationToken);
        }
        await InsertAsync(connection, transaction, id, job, cancellationToken);
        if (job.IdempotencyKey is { } key)
        {
            var (firstHash, firstJob) = await RememberKeyAsync(connection, transaction, job.Tenant, key, job.RequestHash, id, idempotencyWindow, cancellationToken);
            if (firstJob != id)
            {
                await transaction.RollbackAsync(cancellationToken);
                return firstHash == job.RequestHash ? (new JobCreation(firstJob, IsNew: false), null)
                    : (null, ApiProblem.Unprocessable("job.idempotency_key_reused",
                        $"Idempotency-Key '{key}' was used for a different request (job {firstJob}).", "Idempotency-Key"));
            }
        }
        if (job.MaxQueued < int.MaxValue && await CountQueuedAsync(connection, transaction, job.Tenant, cancellationToken) > job.MaxQueued)
        {
            await transaction.RollbackAsync(cancellationToken);
            return (null, ApiProblem.TooManyRequests(QueueFull,
                $"Tenant '{job.Tenant}' already has {job.MaxQueued} jobs queued (its Quotas:…:MaxQueuedJobs); submit again when some have started."));
        }
        await transaction.CommitAsync(cancellationToken);
        return (new JobCreation(id, IsNew: true), null);
    }

    private static async Task InsertAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid id, NewJob job,
        CancellationToken cancellationToken)
    {
        await using var insert = new NpgsqlCommand("""
            INSERT INTO jobs (id, tenant, created_at, dataset_id, status, spec, seed, total_epochs, transitions, epochs_completed, retry_of, version,
                              updated_at, compute_device, trace_parent, sweep_id, sweep_trial, sweep_parameters)
            VALUES (@id, @tenant, now(), @dataset, 'queued', @spec, @seed, @epochs,
                    jsonb_build_array(jsonb_build_object('status', 'queued', 'at', now())), 0, @retryOf, 1, now(), @device, @trace,
                    @sweep, @trial, @parameters)
            """, connection, transaction);
        insert.Parameters.AddWithValue("id", id);
        insert.Parameters.AddWithValue("tenant", job.Tenant);
        insert.Parameters.AddWithValue("dataset", job.DatasetId);
        insert.Parameters.AddWithValue("spec", NpgsqlDbType.Jsonb, job.Spec);
        insert.Parameters.AddWithValue("seed", job.Seed);
        insert.Parameters.AddWithValue("epochs", job.TotalEpochs);
        insert.Parameters.AddWithValue("retryOf", (object?)job.RetryOf ?? DBNull.Value);
        insert.Parameters.AddWithValue("device", job.ComputeDevice);
        insert.Parameters.AddWithValue("trace", NpgsqlDbType.Text, (object?)job.TraceParent ?? DBNull.Value);
        insert.Parameters.AddWithValue("sweep", NpgsqlDbType.Uuid, (object?)job.Trial?.SweepId ?? DBNull.Value);
        insert.Parameters.AddWithValue("trial", NpgsqlDbType.Integer, (object?)job.Trial?.Index ?? DBNull.Value);
        insert.Parameters.AddWithValue("parameters", NpgsqlDbType.Jsonb, (object?)job.Trial?.Parameters ?? DBNull.Value);
        await insert.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>The problem code of a submit past the tenant's queued-jobs quota.</summary>
    public const string QueueFull = "quota.queued_jobs";

    private static async Task<long> CountQueuedAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string tenant,
        CancellationToken cancellationToken)
    {
        await using var count = new NpgsqlCommand("SELECT count(*) FROM jobs WHERE tenant = @tenant AND status = 'queued'", connection, transaction);
        count.Parameters.AddWithValue("tenant", tenant);
        return (long)(await count.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>Claims <paramref name="key"/> for <paramref name="job"/> unless a live claim exists; returns the claim that holds.</summary>
    private static async Task<(string RequestHash, Guid JobId)> RememberKeyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction,
        string tenant, string key, string requestHash, Guid job, TimeSpan window, CancellationToken cancellationToken)
    {
        await using (var remember = new NpgsqlCommand("""
            DELETE FROM idempotency_keys WHERE tenant = @tenant AND key = @key AND created_at < now() - @window;
            INSERT INTO idempotency_keys (tenant, key, request_hash, job_id, created_at) VALUES (@tenant, @key, @hash, @job, now())
            ON CONFLICT (tenant, key) DO NOTHING;
            """, connection, transaction))
        {
            remember.Parameters.AddWithValue("tenant", tenant);
            remember.Parameters.AddWithValue("key", key);
            remember.Parameters.AddWithValue("window", window);
            remember.Parameters.AddWithValue("hash", requestHash);
            remember.Parameters.AddWithValue("job", job);
            await remember.ExecuteNonQueryAsync(cancellationToken);
        }
        await using var owner = new NpgsqlCommand("SELECT request_hash, job_id FROM idempotency_keys WHERE tenant = @tenant AND key = @key",
            connection, transaction);
        owner.Parameters.AddWithValue("tenant", tenant);
        owner.Parameters.AddWithValue("key", key);
        await using var reader = await owner.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (reader.GetString(0), reader.GetGuid(1));
    }

    /// <summary>
    /// queued → cancelled at once; running → cancelling (the worker stops at its next batch and confirms); cancelling
    /// stays. Returns the job as the cancel left it, null when there is no such job, or a 409 problem for a job that has ended.
    /// </summary>
    public async Task<(Job? Job, ApiProblem? Problem)> CancelAsync(string tenant, Guid id, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        Job? job;
        await using (var read = new NpgsqlCommand($"SELECT {JobColumns} FROM jobs WHERE id = @id AND tenant = @tenant FOR UPDATE", connection, transaction))
        {
            read.Parameters.AddWithValue("id", id);
            read.Parameters.AddWithValue("tenant", tenant);
            job = await ReadJobAsync(read, cancellationToken);
        }
        if (job is null || JobStatus.IsTerminal(job.Status))
        {
            return (job, job is null ? null : ApiProblem.Conflict("job.not_cancellable", $"Job {id} has already ended ({job.Status})."));
        }
        bool notified = job.Status != JobStatus.Cancelling;
        if (notified)
        {
            bool queued = job.Status == JobStatus.Queued;
            await using var update = new NpgsqlCommand($"""
                UPDATE jobs SET status = @to, {AppendTransition}, cancel_requested_at = now(), version = version + 1, updated_at = now(),
                    finished_at = CASE WHEN @queued THEN now() END, stop_reason = @reason
                WHERE id = @id RETURNING {JobColumns}
                """, connection, transaction);
            update.Parameters.AddWithValue("id", id);
            update.Parameters.AddWithValue("to", queued ? JobStatus.Cancelled : JobStatus.Cancelling);
            update.Parameters.AddWithValue("note", "cancel requested");
            update.Parameters.AddWithValue("queued", queued);
            update.Parameters.AddWithValue("reason", NpgsqlDbType.Text, queued ? (object)StopReasons.Cancelled : DBNull.Value);
            job = await ReadJobAsync(update, cancellationToken);
            await NotifyAsync(connection, transaction, new JobEvent(id, "cancel"), cancellationToken);
        }
        await CommitAsync(transaction, notified ? new JobEvent(id, "cancel") : null, cancellationToken);
        return (job, null);
    }

    /// <summary>The tenant's job with this id, or null (another tenant's job is null too, exactly like a missing one).</summary>
    public async Task<Job?> FindAsync(string tenant, Guid id, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand($"SELECT {JobColumns} FROM jobs WHERE id = @id AND tenant = @tenant");
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("tenant", tenant);
        return await ReadJobAsync(command, cancellationToken);
    }

    /// <summary>
    /// Jobs newest first, filtered; <paramref name="before"/> is a keyset cursor (created_at, id), stable while jobs are added.
    /// </summary>
    public async Task<List<Job>> ListAsync(JobFilter filter, (DateTimeOffset At, Guid Id)? before, int take, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand();
        var conditions = new List<string>();
        void Where(string condition, string name, object value)
        {
            conditions.Add(condition);
            command.Parameters.AddWithValue(name, value);
        }
        Where("tenant = @tenant", "tenant", filter.Tenant);
        if (filter.Status is not null)
        {
            Where("status = @status", "status", filter.Status);
        }
        if (filter.DatasetId is not null)
        {
            Where("dataset_id = @dataset", "dataset", filter.DatasetId.Value);
        }
        if (filter.SweepId is not null)
        {
            Where("sweep_id = @sweep", "sweep", filter.SweepId.Value);
        }
        if (filter.CreatedAfter is not null)
        {
            Where("created_at > @after", "after", filter.CreatedAfter.Value.ToUniversalTime()); // Npgsql takes UTC only
        }
        if (before is { } cursor)
        {
            Where("(created_at, id) < (@cursorAt, @cursorId)", "cursorAt", cursor.At);
            command.Parameters.AddWithValue("cursorId", cursor.Id);
        }
        command.CommandText = $"SELECT {JobColumns} FROM jobs {(conditions.Count > 0 ? "WHERE " + string.Join(" AND ", conditions) : "")} " +
            "ORDER BY created_at DESC, id DESC LIMIT @take";
        command.Parameters.AddWithValue("take", take);
        var jobs = new List<Job>(take);
        await ReadJobAsync(command, cancellationToken, jobs);
        return jobs;
    }

    /// <summary>The columns <see cref="ReadJobAsync"/> reads, in its order.</summary>
    private const string JobColumns = """
        id, created_at, dataset_id, status, spec, seed, total_epochs, started_at, finished_at, transitions, stop_reason, failure_code,
        failure_message, failure_epoch, epochs_completed, last_train_loss, last_val_loss, best_val_loss, best_val_loss_epoch, best_epoch,
        data_summary, retry_of, hangfire_job_id, device, version, tenant, baseline, diagnoses, model_epoch, compute_device,
        sweep_id, sweep_trial, sweep_parameters
        """;

    /// <summary>Reads the command's first row, or every row into <paramref name="all"/> (returning the last).</summary>
    private static async Task<Job?> ReadJobAsync(NpgsqlCommand command, CancellationToken cancellationToken, List<Job>? all = null)
    {
        await using var r = await command.ExecuteReaderAsync(cancellationToken);
        Job? job = null;
        while (await r.ReadAsync(cancellationToken))
        {
            job = Read(r);
            if (all is null)
            {
                break;
            }
            all.Add(job);
        }
        return job;
    }

    private static Job Read(NpgsqlDataReader r)
    {
        T? Get<T>(int i) where T : struct => r.IsDBNull(i) ? null : r.GetFieldValue<T>(i);
        string? Text(int i) => r.IsDBNull(i) ? null : r.GetString(i);
        return new Job
        {
            Id = r.GetGuid(0), CreatedAt = r.GetFieldValue<DateTimeOffset>(1), DatasetId = Get<Guid>(2), Status = r.GetString(3),
            Spec = r.GetString(4), Seed = r.GetInt32(5), TotalEpochs = r.GetInt32(6), StartedAt = Get<DateTimeOffset>(7),
            FinishedAt = Get<DateTimeOffset>(8), Transitions = r.GetString(9), StopReason = Text(10), FailureCode = Text(11),
            FailureMessage = Text(12), FailureEpoch = Get<int>(13), EpochsCompleted = r.GetInt32(14), LastTrainLoss = Get<double>(15),
            LastValLoss = Get<double>(16), BestValLoss = Get<double>(17), BestValLossEpoch = Get<int>(18), BestEpoch = Get<int>(19),
            DataSummary = Text(20), RetryOf = Get<Guid>(21), HangfireJobId = Text(22), Device = Text(23), Version = r.GetInt64(24),
            Tenant = r.GetString(25), Baseline = Text(26), Diagnoses = Text(27), ModelEpoch = Get<int>(28),
            ComputeDevice = r.GetString(29), SweepId = Get<Guid>(30), SweepTrial = Get<int>(31), SweepParameters = Text(32),
        };
    }

    /// <summary>A job's stored model document and its ETag, or null when none is stored.</summary>
    public async Task<(string Json, string ETag)?> LoadModelAsync(string tenant, Guid id, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            "SELECT m.model, m.e_tag FROM job_models m JOIN jobs j ON j.id = m.job_id WHERE m.job_id = @id AND j.tenant = @tenant");
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("tenant", tenant);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? (reader.GetString(0), reader.GetString(1)) : null;
    }

    /// <summary>What the worker needs to run a job, or null if it does not exist.</summary>
    public async Task<JobRun?> LoadRunAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            "SELECT status, spec, dataset_id, started_at, tenant, created_at, compute_device, trace_parent, sweep_id FROM jobs WHERE id = @id");
        command.Parameters.AddWithValue("id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }
        return new JobRun(reader.GetString(4), reader.GetString(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetGuid(2),
            reader.IsDBNull(3) ? null : reader.GetFieldValue<DateTimeOffset>(3))
        {
            CreatedAt = reader.GetFieldValue<DateTimeOffset>(5),
            ComputeDevice = reader.GetString(6),
            TraceParent = reader.IsDBNull(7) ? null : reader.GetString(7),
            SweepId = reader.IsDBNull(8) ? null : reader.GetGuid(8),
        };
    }

    public async Task<Guid?> FindUnfinishedJobAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid datasetId,
        CancellationToken cancellationToken)
    {
        await using var busy = new NpgsqlCommand("SELECT id FROM jobs WHERE dataset_id = @id AND status = ANY(@unfinished) LIMIT 1", connection, transaction);
        busy.Parameters.AddWithValue("id", datasetId);
        busy.Parameters.AddWithValue("unfinished", JobStatus.Unfinished);
        return await busy.ExecuteScalarAsync(cancellationToken) as Guid?;
    }

    /// <summary>
    /// Finished jobs lose their link to a deleted dataset (ON DELETE SET NULL would do it silently): their versions move on
    /// and every process hears of it, so cached states and ETags follow.
    /// </summary>
    public async Task<Action> DetachAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid datasetId, CancellationToken cancellationToken)
    {
        var detached = new List<Guid>();
        await using (var detach = new NpgsqlCommand(
            "UPDATE jobs SET dataset_id = NULL, version = version + 1, updated_at = now() WHERE dataset_id = @id RETURNING id", connection, transaction))
        {
            detach.Parameters.AddWithValue("id", datasetId);
            await using var reader = await detach.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                detached.Add(reader.GetGuid(0));
            }
        }
        foreach (var jobId in detached)
        {
            await NotifyAsync(connection, transaction, new JobEvent(jobId, "dataset"), cancellationToken);
        }
        return () => detached.ForEach(jobId => events.Publish(new JobEvent(jobId, "dataset")));
    }

    /// <summary>
    /// A worker holding the lease begins an attempt: queued → running (stamping the start time), or running stays running
    /// (a resume). Either way the device is stamped and the worker (<c>host:pid</c>) named in a transition's note, where
    /// <see cref="RecordLostAttemptAsync"/> finds it (a note rather than a key of its own: transitions are read as
    /// status, time and note). The job's Hangfire job becomes <paramref name="attempt"/> if none was recorded yet (a worker
    /// can fetch a job before its submitter records the id). False if the job was neither queued nor running (cancelled
    /// meanwhile), or belongs to another attempt (see <see cref="OwnsAsync"/>).
    /// </summary>
    public async Task<bool> BeginAttemptAsync(Guid id, string attempt, string device, string worker, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using var update = new NpgsqlCommand($"""
            UPDATE jobs SET status = @to, version = version + 1, updated_at = now(), started_at = coalesce(started_at, now()), device = @device,
                hangfire_job_id = @attempt,
                transitions = transitions || jsonb_build_array(jsonb_build_object('status', @to::text, 'at', now(),
                    'note', CASE WHEN status = @to THEN 'resumed by worker ' ELSE 'started by worker ' END || @worker,
                    'worker', @worker::text, 'device', @device::text, 'attempt', @attempt::text))
            WHERE id = @id AND status = ANY(@from) AND {OwnedByAttempt}
            """, connection, transaction);
        update.Parameters.AddWithValue("id", id);
        update.Parameters.AddWithValue("attempt", attempt);
        update.Parameters.AddWithValue("from", new[] { JobStatus.Queued, JobStatus.Running });
        update.Parameters.AddWithValue("to", JobStatus.Running);
        update.Parameters.AddWithValue("device", device);
        update.Parameters.AddWithValue("worker", worker);
        if (await update.ExecuteNonQueryAsync(cancellationToken) == 0)
        {
            return false;
        }
        await NotifyAsync(connection, transaction, new JobEvent(id, "status", Status: JobStatus.Running), cancellationToken);
        await CommitAsync(transaction, new JobEvent(id, "status", Status: JobStatus.Running), cancellationToken);
        return true;
    }

    /// <summary>
    /// Records that the attempt on a running or cancelling job was lost (its worker's lease is gone): a transition naming
    /// the worker of the last attempt and the last stored epoch. Guarded by the Hangfire job the caller saw, so two
    /// recovery passes record one loss; false if the job moved on meanwhile. The caller holds the job's lease.
    /// </summary>
    public async Task<bool> RecordLostAttemptAsync(Guid id, string? hangfireJobId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using var update = new NpgsqlCommand("""
            UPDATE jobs SET version = version + 1, updated_at = now(),
                transitions = transitions || jsonb_build_array(jsonb_build_object('status', status, 'at', now(), 'note',
                    format('worker %s lost after epoch %s; %s', coalesce((SELECT substring(t ->> 'note' FROM '^(?:started|resumed) by worker (.+)$')
                        FROM jsonb_array_elements(transitions) WITH ORDINALITY a(t, i)
                        WHERE t ->> 'note' ~ '^(started|resumed) by worker ' ORDER BY i DESC LIMIT 1), 'unknown'), epochs_completed,
                        CASE WHEN status = @cancelling THEN 'finishing the cancel' ELSE 'resumed' END)))
            WHERE id = @id AND status = ANY(@active) AND hangfire_job_id IS NOT DISTINCT FROM @hangfire
            RETURNING status
            """, connection, transaction);
        update.Parameters.AddWithValue("id", id);
        update.Parameters.AddWithValue("active", new[] { JobStatus.Running, JobStatus.Cancelling });
        update.Parameters.AddWithValue("cancelling", JobStatus.Cancelling);
        update.Parameters.AddWithValue("hangfire", NpgsqlDbType.Text, (object?)hangfireJobId ?? DBNull.Value);
        if (await update.ExecuteScalarAsync(cancellationToken) is not string status)
        {
            return false;
        }
        await NotifyAsync(connection, transaction, new JobEvent(id, "status", Status: status), cancellationToken);
        await CommitAsync(transaction, new JobEvent(id, "status", Status: status), cancellationToken);
        return true;
    }

    /// <summary>
    /// Ends a job: status, stop reason, failure, best epoch, and its model (when training produced one: success, cancel or
    /// timeout), in one transaction. A job that is <c>cancelling</c> when training ends ends <c>cancelled</c> whatever
    /// training's outcome (keeping the model it produced), since its cancel was answered 202 with that promise. Returns
    /// false, writing nothing, when the job had already ended (a repeated finish) or belongs to another attempt.
    /// </summary>
    public async Task<bool> FinishAsync(Guid id, string attempt, string status, string stopReason, FailureInfo? failure, int? bestEpoch,
        StoredModel? model, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (!await OwnsAsync(connection, transaction, id, attempt, cancellationToken))
        {
            return false;
        }
        await using var update = new NpgsqlCommand("""
            UPDATE jobs SET status = CASE WHEN status = @cancelling THEN @cancelled ELSE @to END,
                transitions = transitions || jsonb_build_array(jsonb_build_object('status', CASE WHEN status = @cancelling THEN @cancelled ELSE @to END,
                    'at', now(), 'note', CASE WHEN status = @cancelling AND @to <> @cancelled THEN 'cancelled as training ended: ' || @note ELSE @note END)),
                version = version + 1, updated_at = now(), finished_at = now(),
                stop_reason = CASE WHEN status = @cancelling THEN @cancelledReason ELSE @reason END,
                failure_code = CASE WHEN status = @cancelling THEN NULL ELSE @code END,
                failure_message = CASE WHEN status = @cancelling THEN NULL ELSE @message END,
                failure_epoch = CASE WHEN status = @cancelling THEN NULL ELSE @epoch END, best_epoch = @best, model_epoch = @modelEpoch
            WHERE id = @id AND status = ANY(@unfinished)
            RETURNING status
            """, connection, transaction);
        update.Parameters.AddWithValue("id", id);
        update.Parameters.AddWithValue("unfinished", JobStatus.Unfinished);
        update.Parameters.AddWithValue("cancelling", JobStatus.Cancelling);
        update.Parameters.AddWithValue("cancelled", JobStatus.Cancelled);
        update.Parameters.AddWithValue("cancelledReason", StopReasons.Cancelled);
        update.Parameters.AddWithValue("to", status);
        update.Parameters.AddWithValue("note", failure?.Message ?? stopReason);
        update.Parameters.AddWithValue("reason", stopReason);
        update.Parameters.AddWithValue("code", NpgsqlDbType.Text, (object?)failure?.Code ?? DBNull.Value);
        update.Parameters.AddWithValue("message", NpgsqlDbType.Text, (object?)failure?.Message ?? DBNull.Value);
        update.Parameters.AddWithValue("epoch", NpgsqlDbType.Integer, (object?)failure?.Epoch ?? DBNull.Value);
        update.Parameters.AddWithValue("best", NpgsqlDbType.Integer, (object?)bestEpoch ?? DBNull.Value);
        update.Parameters.AddWithValue("modelEpoch", NpgsqlDbType.Integer, (object?)model?.Epoch ?? DBNull.Value);
        if (await update.ExecuteScalarAsync(cancellationToken) is not string ended)
        {
            return false;
        }
        await ReplaceModelAsync(connection, transaction, id, model, cancellationToken);
        await NotifyAsync(connection, transaction, new JobEvent(id, "status", Status: ended), cancellationToken);
        await CommitAsync(transaction, new JobEvent(id, "status", Status: ended), cancellationToken);
        return true;
    }

    /// <summary>Stores a finished job's model (if any) and drops its checkpoint.</summary>
    private static async Task ReplaceModelAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid id,
        StoredModel? model, CancellationToken cancellationToken)
    {
        if (model is { } m)
        {
            await using var insert = new NpgsqlCommand("""
                INSERT INTO job_models (job_id, model, e_tag, created_at) VALUES (@id, @model, @etag, now())
                ON CONFLICT (job_id) DO UPDATE SET model = excluded.model, e_tag = excluded.e_tag, created_at = excluded.created_at
                """, connection, transaction);
            insert.Parameters.AddWithValue("id", id);
            insert.Parameters.AddWithValue("model", NpgsqlDbType.Jsonb, m.Json);
            insert.Parameters.AddWithValue("etag", m.ETag);
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }
        await using var clear = new NpgsqlCommand("DELETE FROM job_checkpoints WHERE job_id = @id", connection, transaction);
        clear.Parameters.AddWithValue("id", id);
        await clear.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Stores a finished epoch (replacing a row a resumed run recomputes), updates the job's summary fields, replaces
    /// the checkpoint when one comes with it, and notifies listeners, all in one transaction. False, writing nothing, when
    /// the job belongs to another attempt.
    /// </summary>
    public async Task<bool> RecordEpochAsync(Guid id, string attempt, EpochRecord record, TrainingCheckpoint? checkpoint, string diagnoses,
        CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (!await OwnsAsync(connection, transaction, id, attempt, cancellationToken))
        {
            return false;
        }
        await InsertEpochAsync(connection, transaction, id, record, cancellationToken);
        await using (var summary = new NpgsqlCommand("""
            UPDATE jobs SET epochs_completed = @epoch, last_train_loss = @train, last_val_loss = @val,
                best_val_loss = CASE WHEN @val::double precision < best_val_loss OR (best_val_loss IS NULL AND @val IS NOT NULL) THEN @val ELSE best_val_loss END,
                best_val_loss_epoch = CASE WHEN @val::double precision < best_val_loss OR (best_val_loss IS NULL AND @val IS NOT NULL) THEN @epoch ELSE best_val_loss_epoch END,
                diagnoses = @diagnoses, version = version + 1, updated_at = now()
            WHERE id = @id
            """, connection, transaction))
        {
            summary.Parameters.AddWithValue("id", id);
            summary.Parameters.AddWithValue("epoch", record.Epoch);
            summary.Parameters.AddWithValue("train", record.TrainLoss);
            summary.Parameters.AddWithValue("diagnoses", NpgsqlDbType.Jsonb, diagnoses);
            summary.Parameters.AddWithValue("val", NpgsqlDbType.Double, (object?)(record.ValLoss is double v && double.IsFinite(v) ? v : null) ?? DBNull.Value);
            await summary.ExecuteNonQueryAsync(cancellationToken);
        }
        if (checkpoint is not null)
        {
            await using var save = new NpgsqlCommand("""
                INSERT INTO job_checkpoints (job_id, epoch, data, created_at) VALUES (@id, @epoch, @data, now())
                ON CONFLICT (job_id) DO UPDATE SET epoch = excluded.epoch, data = excluded.data, created_at = excluded.created_at
                """, connection, transaction);
            save.Parameters.AddWithValue("id", id);
            save.Parameters.AddWithValue("epoch", checkpoint.Epoch);
            save.Parameters.AddWithValue("data", checkpoint.Serialize());
            await save.ExecuteNonQueryAsync(cancellationToken);
        }
        await NotifyAsync(connection, transaction, new JobEvent(id, "epoch", record.Epoch), cancellationToken);
        await CommitAsync(transaction, new JobEvent(id, "epoch", record.Epoch), cancellationToken);
        return true;
    }

    /// <summary>Inserts an epoch, replacing the row a resumed run recomputes.</summary>
    private static async Task InsertEpochAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid id, EpochRecord record,
        CancellationToken cancellationToken)
    {
        await using var insert = new NpgsqlCommand("""
            INSERT INTO job_epochs (job_id, epoch, train_loss, val_loss, regularization_loss, metrics, learning_rate, gradient_norm,
                                    duration_ms, samples_per_second, recorded_at)
            VALUES (@id, @epoch, @train, @val, @reg, @metrics, @lr, @norm, @ms, @sps, now())
            ON CONFLICT (job_id, epoch) DO UPDATE SET train_loss = excluded.train_loss, val_loss = excluded.val_loss,
                regularization_loss = excluded.regularization_loss, metrics = excluded.metrics, learning_rate = excluded.learning_rate,
                gradient_norm = excluded.gradient_norm, duration_ms = excluded.duration_ms,
                samples_per_second = excluded.samples_per_second, recorded_at = excluded.recorded_at
            """, connection, transaction);
        insert.Parameters.AddWithValue("id", id);
        insert.Parameters.AddWithValue("epoch", record.Epoch);
        insert.Parameters.AddWithValue("train", record.TrainLoss);
        insert.Parameters.AddWithValue("val", (object?)record.ValLoss ?? DBNull.Value);
        insert.Parameters.AddWithValue("reg", record.RegularizationLoss);
        insert.Parameters.AddWithValue("metrics", NpgsqlDbType.Jsonb, JsonSerializer.Serialize(record.Metrics, ApiJson.Options));
        insert.Parameters.AddWithValue("lr", record.LearningRate);
        insert.Parameters.AddWithValue("norm", record.GradientNorm);
        insert.Parameters.AddWithValue("ms", record.DurationMs);
        insert.Parameters.AddWithValue("sps", record.SamplesPerSecond);
        await insert.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>The job's stored epochs as the curve diagnoses read them, in order (a resumed run continues from these).</summary>
    public async Task<List<CurvePoint>> LoadCurveAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            "SELECT epoch, train_loss, val_loss, regularization_loss, gradient_norm FROM job_epochs WHERE job_id = @id ORDER BY epoch");
        command.Parameters.AddWithValue("id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var curve = new List<CurvePoint>();
        while (await reader.ReadAsync(cancellationToken))
        {
            curve.Add(new CurvePoint(reader.GetInt32(0), reader.GetDouble(1), reader.IsDBNull(2) ? null : reader.GetDouble(2),
                reader.GetDouble(3), reader.GetDouble(4)));
        }
        return curve;
    }

    /// <summary>The latest checkpoint of a job, if any.</summary>
    public async Task<TrainingCheckpoint?> LoadCheckpointAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT data FROM job_checkpoints WHERE job_id = @id");
        command.Parameters.AddWithValue("id", id);
        return await command.ExecuteScalarAsync(cancellationToken) is byte[] data ? TrainingCheckpoint.Deserialize(data) : null;
    }

    /// <summary>
    /// Drops epochs after <paramref name="epoch"/> (a resumed run recomputes them) and resets the summary to match,
    /// counting finite validation losses only, as <see cref="RecordEpochAsync"/> does. False, writing nothing, when the
    /// job belongs to another attempt.
    /// </summary>
    public async Task<bool> TruncateHistoryAsync(Guid id, string attempt, int epoch, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (!await OwnsAsync(connection, transaction, id, attempt, cancellationToken))
        {
            return false;
        }
        await NotifyAsync(connection, transaction, new JobEvent(id, "status", Status: JobStatus.Running), cancellationToken);
        await using var command = new NpgsqlCommand("""
            DELETE FROM job_epochs WHERE job_id = @id AND epoch > @epoch;
            UPDATE jobs j SET epochs_completed = @epoch,
                last_train_loss = (SELECT train_loss FROM job_epochs WHERE job_id = @id AND epoch = @epoch),
                last_val_loss = (SELECT val_loss FROM job_epochs WHERE job_id = @id AND epoch = @epoch
                                 AND val_loss NOT IN ('NaN', 'Infinity', '-Infinity')),
                best_val_loss = b.val_loss, best_val_loss_epoch = b.epoch, version = version + 1, updated_at = now()
            FROM (SELECT NULL::double precision AS val_loss, NULL::int AS epoch
                  UNION ALL SELECT val_loss, epoch FROM job_epochs
                            WHERE job_id = @id AND val_loss NOT IN ('NaN', 'Infinity', '-Infinity')
                  ORDER BY val_loss NULLS LAST, epoch LIMIT 1) b
            WHERE j.id = @id;
            """, connection, transaction);
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("epoch", epoch);
        await command.ExecuteNonQueryAsync(cancellationToken);
        await CommitAsync(transaction, new JobEvent(id, "status", Status: JobStatus.Running), cancellationToken);
        return true;
    }

    /// <summary>Stores what preprocessing did (rows used, dropped, labels…); false, writing nothing, when the job belongs to another attempt.</summary>
    public Task<bool> SetDataSummaryAsync(Guid id, string attempt, string json, CancellationToken cancellationToken) =>
        SetJsonAsync(id, attempt, "data_summary", json, "data", cancellationToken);

    /// <summary>Stores the trivial model's losses and metrics; false, writing nothing, when the job belongs to another attempt.</summary>
    public Task<bool> SetBaselineAsync(Guid id, string attempt, string json, CancellationToken cancellationToken) =>
        SetJsonAsync(id, attempt, "baseline", json, "baseline", cancellationToken);

    /// <summary>Sets one of the job's JSON columns (named by this class, never by a caller) and notifies <paramref name="eventKind"/>.</summary>
    private async Task<bool> SetJsonAsync(Guid id, string attempt, string column, string json, string eventKind, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (!await OwnsAsync(connection, transaction, id, attempt, cancellationToken))
        {
            return false;
        }
        await using var command = new NpgsqlCommand(
            $"UPDATE jobs SET {column} = @json, version = version + 1, updated_at = now() WHERE id = @id", connection, transaction);
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("json", NpgsqlDbType.Jsonb, json);
        await command.ExecuteNonQueryAsync(cancellationToken);
        await NotifyAsync(connection, transaction, new JobEvent(id, eventKind), cancellationToken);
        await CommitAsync(transaction, new JobEvent(id, eventKind), cancellationToken);
        return true;
    }

    /// <summary>Status, progress and version of a job, or null if it does not exist.</summary>
    public async Task<JobState?> StateAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            "SELECT status, stop_reason, epochs_completed, total_epochs, failure_code, failure_message, failure_epoch, version, tenant, compute_device, " +
            "baseline, diagnoses FROM jobs WHERE id = @id");
        command.Parameters.AddWithValue("id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }
        return new JobState(reader.GetString(8), reader.GetInt64(7), reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt32(2), reader.GetInt32(3),
            reader.IsDBNull(4) ? null : new JobFailure(reader.GetString(4), reader.IsDBNull(5) ? "" : reader.GetString(5),
                reader.IsDBNull(6) ? null : reader.GetInt32(6)), reader.GetString(9))
        {
            Baseline = reader.IsDBNull(10) ? null : JsonSerializer.Deserialize<JsonElement>(reader.GetString(10)),
            Diagnoses = reader.IsDBNull(11) ? JobState.NoDiagnoses : JsonSerializer.Deserialize<JsonElement>(reader.GetString(11)),
        };
    }

    /// <summary>The job's status, or null.</summary>
    public async Task<string?> StatusAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT status FROM jobs WHERE id = @id");
        command.Parameters.AddWithValue("id", id);
        return await command.ExecuteScalarAsync(cancellationToken) as string;
    }

    /// <summary>
    /// Records the Hangfire job that carries this job. A submit records it only if unset: a worker may have fetched the new
    /// Hangfire job first and claimed it for this job (the same id) or swapped it to a fairer one (<see cref="ChooseAsync"/>),
    /// or a submitter that stalled past recovery finds the job handed on.
    /// </summary>
    public async Task SetHangfireJobAsync(Guid id, string hangfireJobId, CancellationToken cancellationToken, bool onlyIfUnset = false)
    {
        await using var command = dataSource.CreateCommand("UPDATE jobs SET hangfire_job_id = @hangfire WHERE id = @id" +
            (onlyIfUnset ? " AND hangfire_job_id IS NULL" : ""));
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("hangfire", hangfireJobId);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Hands the job to a new delivery unless it moved on since the caller saw it: with the job's row locked, checks that
    /// its status is one of <paramref name="statuses"/> and its Hangfire job still <paramref name="seenHangfireId"/>, then
    /// runs <paramref name="enqueue"/> and records the Hangfire job it returns. Two recovery passes (in one process or
    /// two) that saw the same row enqueue it once: the second waits for the first's lock, then finds the new id. False,
    /// enqueuing nothing, when the job moved on.
    /// </summary>
    public async Task<bool> ReplaceDeliveryAsync(Guid id, string[] statuses, string? seenHangfireId, Func<string> enqueue,
        CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var check = new NpgsqlCommand("""
            SELECT 1 FROM jobs WHERE id = @id AND status = ANY(@statuses) AND hangfire_job_id IS NOT DISTINCT FROM @seen FOR UPDATE
            """, connection, transaction))
        {
            check.Parameters.AddWithValue("id", id);
            check.Parameters.AddWithValue("statuses", statuses);
            check.Parameters.AddWithValue("seen", NpgsqlDbType.Text, (object?)seenHangfireId ?? DBNull.Value);
            if (await check.ExecuteScalarAsync(cancellationToken) is null)
            {
                return false;
            }
        }
        await using var update = new NpgsqlCommand("UPDATE jobs SET hangfire_job_id = @hangfire WHERE id = @id", connection, transaction);
        update.Parameters.AddWithValue("id", id);
        update.Parameters.AddWithValue("hangfire", enqueue());
        await update.ExecuteNonQueryAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return true;
    }

    /// <summary>
    /// The write fence of an attempt: a job belongs to the attempt whose Hangfire job it records (or to any, while it records
    /// none). Recovery gives a job whose worker it judged lost a new Hangfire job before any new attempt begins, so a worker
    /// that was only cut off for a while finds here that the job is no longer its own, and writes nothing over the new attempt.
    /// </summary>
    private const string OwnedByAttempt = "(hangfire_job_id IS NULL OR hangfire_job_id = @attempt)";

    /// <summary>Locks the job's row for the transaction and says whether it still belongs to <paramref name="attempt"/>.</summary>
    private static async Task<bool> OwnsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid id, string attempt,
        CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand($"SELECT 1 FROM jobs WHERE id = @id AND {OwnedByAttempt} FOR UPDATE", connection, transaction);
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("attempt", attempt);
        return await command.ExecuteScalarAsync(cancellationToken) is not null;
    }

    /// <summary>
    /// Commits, then tells this process's listeners at once. The NOTIFY reaches them a moment later; a client that reads
    /// right after its own write must not be answered from a cache that has not heard of it yet.
    /// </summary>
    private async Task CommitAsync(NpgsqlTransaction transaction, JobEvent? committed, CancellationToken cancellationToken)
    {
        await transaction.CommitAsync(cancellationToken);
        if (committed is not null)
        {
            events.Publish(committed);
        }
    }

    private static async Task NotifyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, JobEvent e, CancellationToken cancellationToken)
    {
        await using var notify = new NpgsqlCommand(JobEventHub.NotifySql, connection, transaction);
        notify.Parameters.AddWithValue("event", JobEventHub.Payload(e));
        await notify.ExecuteNonQueryAsync(cancellationToken);
    }
}
