using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using TrainingService.Compute.Training;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Jobs;

/// <summary>What the history endpoints say about their job.</summary>
public sealed record JobState(long Version, string Status, string? StopReason, int EpochsCompleted, int TotalEpochs, JobFailure? Failure);

/// <summary>A job's failure as stored.</summary>
public sealed record FailureInfo(string Code, string Message, int? Epoch = null);

/// <summary>
/// Writes to jobs and their histories. These are raw SQL rather than EF because each must be one atomic PostgreSQL
/// statement or transaction with its NOTIFY: a guarded state transition (<c>UPDATE … WHERE status = ANY(…)</c>), an
/// idempotent epoch upsert (<c>ON CONFLICT</c>) with the job's summary and version bump, a checkpoint replace.
/// Every change bumps <c>jobs.version</c>, which ETags are made from, and sends a NOTIFY in the same transaction:
/// <see cref="JobStates"/> relies on that.
/// </summary>
public sealed class JobStore(NpgsqlDataSource dataSource)
{
    private const string AppendTransition =
        "transitions = transitions || jsonb_build_array(jsonb_build_object('status', @to::text, 'at', now(), 'note', @note::text))";

    /// <summary>queued → running, stamping the start time and the device; false if the job was no longer queued.</summary>
    public async Task<bool> StartAsync(Guid id, string device, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using var update = new NpgsqlCommand($"""
            UPDATE jobs SET status = @to, {AppendTransition}, version = version + 1, updated_at = now(),
                started_at = coalesce(started_at, now()), device = @device
            WHERE id = @id AND status = @from
            """, connection, transaction);
        update.Parameters.AddWithValue("id", id);
        update.Parameters.AddWithValue("from", JobStatus.Queued);
        update.Parameters.AddWithValue("to", JobStatus.Running);
        update.Parameters.AddWithValue("note", DBNull.Value);
        update.Parameters.AddWithValue("device", device);
        if (await update.ExecuteNonQueryAsync(cancellationToken) == 0)
        {
            return false;
        }
        await NotifyAsync(connection, transaction, new JobEvent(id, "status", Status: JobStatus.Running), cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return true;
    }

    /// <summary>Ends a job: status, stop reason, failure, best epoch, and its model (when training produced one: success, cancel or timeout), in one transaction.</summary>
    public async Task FinishAsync(Guid id, string status, string stopReason, FailureInfo? failure, int? bestEpoch,
        (string Json, string ETag)? model, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
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
        await using var update = new NpgsqlCommand($"""
            UPDATE jobs SET status = @to, {AppendTransition}, version = version + 1, updated_at = now(), finished_at = now(),
                stop_reason = @reason, failure_code = @code, failure_message = @message, failure_epoch = @epoch, best_epoch = @best
            WHERE id = @id AND status = ANY(@unfinished)
            """, connection, transaction);
        update.Parameters.AddWithValue("id", id);
        update.Parameters.AddWithValue("unfinished", JobStatus.Unfinished);
        update.Parameters.AddWithValue("to", status);
        update.Parameters.AddWithValue("note", (object?)failure?.Message ?? stopReason);
        update.Parameters.AddWithValue("reason", stopReason);
        update.Parameters.AddWithValue("code", (object?)failure?.Code ?? DBNull.Value);
        update.Parameters.AddWithValue("message", (object?)failure?.Message ?? DBNull.Value);
        update.Parameters.AddWithValue("epoch", (object?)failure?.Epoch ?? DBNull.Value);
        update.Parameters.AddWithValue("best", (object?)bestEpoch ?? DBNull.Value);
        await update.ExecuteNonQueryAsync(cancellationToken);
        await using (var clear = new NpgsqlCommand("DELETE FROM job_checkpoints WHERE job_id = @id", connection, transaction))
        {
            clear.Parameters.AddWithValue("id", id);
            await clear.ExecuteNonQueryAsync(cancellationToken);
        }
        await NotifyAsync(connection, transaction, new JobEvent(id, "status", Status: status), cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>
    /// Stores a finished epoch (replacing a row a resumed run recomputes), updates the job's summary fields, replaces
    /// the checkpoint when one comes with it, and notifies listeners, all in one transaction.
    /// </summary>
    public async Task RecordEpochAsync(Guid id, EpochRecord record, TrainingCheckpoint? checkpoint, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var insert = new NpgsqlCommand("""
            INSERT INTO job_epochs (job_id, epoch, train_loss, val_loss, regularization_loss, metrics, learning_rate, gradient_norm,
                                    duration_ms, samples_per_second, recorded_at)
            VALUES (@id, @epoch, @train, @val, @reg, @metrics, @lr, @norm, @ms, @sps, now())
            ON CONFLICT (job_id, epoch) DO UPDATE SET train_loss = excluded.train_loss, val_loss = excluded.val_loss,
                regularization_loss = excluded.regularization_loss, metrics = excluded.metrics, learning_rate = excluded.learning_rate,
                gradient_norm = excluded.gradient_norm, duration_ms = excluded.duration_ms,
                samples_per_second = excluded.samples_per_second, recorded_at = excluded.recorded_at
            """, connection, transaction))
        {
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
        await using (var summary = new NpgsqlCommand("""
            UPDATE jobs SET epochs_completed = @epoch, last_train_loss = @train, last_val_loss = @val,
                best_val_loss = CASE WHEN @val::double precision < best_val_loss OR (best_val_loss IS NULL AND @val IS NOT NULL) THEN @val ELSE best_val_loss END,
                best_val_loss_epoch = CASE WHEN @val::double precision < best_val_loss OR (best_val_loss IS NULL AND @val IS NOT NULL) THEN @epoch ELSE best_val_loss_epoch END,
                version = version + 1, updated_at = now()
            WHERE id = @id
            """, connection, transaction))
        {
            summary.Parameters.AddWithValue("id", id);
            summary.Parameters.AddWithValue("epoch", record.Epoch);
            summary.Parameters.AddWithValue("train", record.TrainLoss);
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
        await transaction.CommitAsync(cancellationToken);
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
    /// counting finite validation losses only, as <see cref="RecordEpochAsync"/> does.
    /// </summary>
    public async Task TruncateHistoryAsync(Guid id, int epoch, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
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
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>Stores what preprocessing did (rows used, dropped, labels…).</summary>
    public async Task SetDataSummaryAsync(Guid id, string json, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using var command = new NpgsqlCommand(
            "UPDATE jobs SET data_summary = @summary, version = version + 1, updated_at = now() WHERE id = @id", connection, transaction);
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("summary", NpgsqlDbType.Jsonb, json);
        await command.ExecuteNonQueryAsync(cancellationToken);
        await NotifyAsync(connection, transaction, new JobEvent(id, "data"), cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>Status, progress and version of a job, or null if it does not exist.</summary>
    public async Task<JobState?> StateAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            "SELECT status, stop_reason, epochs_completed, total_epochs, failure_code, failure_message, failure_epoch, version FROM jobs WHERE id = @id");
        command.Parameters.AddWithValue("id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }
        return new JobState(reader.GetInt64(7), reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt32(2), reader.GetInt32(3),
            reader.IsDBNull(4) ? null : new JobFailure(reader.GetString(4), reader.IsDBNull(5) ? "" : reader.GetString(5),
                reader.IsDBNull(6) ? null : reader.GetInt32(6)));
    }

    /// <summary>The job's status, or null.</summary>
    public async Task<string?> StatusAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT status FROM jobs WHERE id = @id");
        command.Parameters.AddWithValue("id", id);
        return await command.ExecuteScalarAsync(cancellationToken) as string;
    }

    /// <summary>Records the Hangfire job that carries this job.</summary>
    public async Task SetHangfireJobAsync(Guid id, string hangfireJobId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("UPDATE jobs SET hangfire_job_id = @hangfire WHERE id = @id");
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("hangfire", hangfireJobId);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public static async Task NotifyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, JobEvent e, CancellationToken cancellationToken)
    {
        await using var notify = new NpgsqlCommand(JobEventHub.NotifySql, connection, transaction);
        notify.Parameters.AddWithValue("event", JobEventHub.Payload(e));
        await notify.ExecuteNonQueryAsync(cancellationToken);
    }
}
