using Npgsql;
using NpgsqlTypes;
using TrainingService.Server.Data.Entities;

namespace TrainingService.Server.Sweeps;

/// <summary>A sweep's trial as read for scheduling and reading: its job and the best value of the objective over its epochs.</summary>
public sealed record TrialRow(Guid JobId, int Index, string Parameters, string Status, string? StopReason, int EpochsCompleted,
    double? Objective, int? ObjectiveEpoch);

/// <summary>
/// The sweeps table and the reads of a sweep's trials (which are jobs, written by <c>Jobs.JobStore</c>). Raw SQL, as
/// JobStore: the scheduler's read-decide-write runs under the sweep row's lock in one transaction.
/// </summary>
public sealed class SweepStore(NpgsqlDataSource dataSource)
{
    private const string SweepColumns = "id, tenant, created_at, status, stop_reason, spec, next_trial, exhausted, deadline, finished_at, updated_at";

    public async Task CreateAsync(Guid id, string tenant, string spec, DateTimeOffset? deadline, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO sweeps (id, tenant, created_at, status, spec, next_trial, exhausted, deadline, updated_at)
            VALUES (@id, @tenant, now(), 'running', @spec, 0, false, @deadline, now())
            """);
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("tenant", tenant);
        command.Parameters.AddWithValue("spec", NpgsqlDbType.Jsonb, spec);
        command.Parameters.AddWithValue("deadline", NpgsqlDbType.TimestampTz, (object?)deadline ?? DBNull.Value);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<Sweep?> FindAsync(string tenant, Guid id, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand($"SELECT {SweepColumns} FROM sweeps WHERE id = @id AND tenant = @tenant");
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("tenant", tenant);
        return (await ReadAsync(command, cancellationToken)).FirstOrDefault();
    }

    /// <summary>A tenant's sweeps, newest first.</summary>
    public async Task<List<Sweep>> ListAsync(string tenant, int take, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand($"SELECT {SweepColumns} FROM sweeps WHERE tenant = @tenant ORDER BY created_at DESC, id DESC LIMIT @take");
        command.Parameters.AddWithValue("tenant", tenant);
        command.Parameters.AddWithValue("take", take);
        return await ReadAsync(command, cancellationToken);
    }

    /// <summary>The ids of running sweeps, for the reconciler.</summary>
    public async Task<List<Guid>> RunningAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT id FROM sweeps WHERE status = 'running'");
        var ids = new List<Guid>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            ids.Add(reader.GetGuid(0));
        }
        return ids;
    }

    /// <summary>
    /// Locks a sweep's row for its scheduler (FOR NO KEY UPDATE: a trial's insert, which checks its foreign key with a key
    /// share lock, still goes through while this transaction holds it).
    /// </summary>
    public static async Task<Sweep?> LockAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid id, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand($"SELECT {SweepColumns} FROM sweeps WHERE id = @id FOR NO KEY UPDATE", connection, transaction);
        command.Parameters.AddWithValue("id", id);
        return (await ReadAsync(command, cancellationToken)).FirstOrDefault();
    }

    /// <summary>Records how far the scheduler got and, with a status, that the sweep ended.</summary>
    public static async Task UpdateAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid id, int nextTrial, bool exhausted,
        string? endStatus, string? stopReason, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            UPDATE sweeps SET next_trial = @next, exhausted = @exhausted, updated_at = now(),
                status = coalesce(@status, status), stop_reason = coalesce(@reason, stop_reason),
                finished_at = CASE WHEN @status IS NULL THEN finished_at ELSE now() END
            WHERE id = @id
            """, connection, transaction);
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("next", nextTrial);
        command.Parameters.AddWithValue("exhausted", exhausted);
        command.Parameters.AddWithValue("status", NpgsqlDbType.Text, (object?)endStatus ?? DBNull.Value);
        command.Parameters.AddWithValue("reason", NpgsqlDbType.Text, (object?)stopReason ?? DBNull.Value);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Every trial of a sweep in index order, each with its best objective value (the smallest, or for a maximised metric
    /// the largest, finite value over its epochs) and the epoch of it. Without an objective the values are null and no
    /// epoch is read: what scheduling needs, unless a model-based method learns from the values.
    /// </summary>
    public async Task<List<TrialRow>> TrialsAsync(Guid sweepId, Objective? objective, CancellationToken cancellationToken, NpgsqlConnection? connection = null,
        NpgsqlTransaction? transaction = null)
    {
        string best = objective is null ? "SELECT NULL::float8 AS value, NULL::int AS epoch" : $"""
            SELECT v.value, v.epoch FROM (SELECT e.epoch, {ValueOf(objective)} AS value FROM job_epochs e WHERE e.job_id = j.id) v
            WHERE v.value IS NOT NULL AND v.value NOT IN ('NaN', 'Infinity', '-Infinity')
            ORDER BY v.value * @sign, v.epoch LIMIT 1
            """;
        string sql = $"""
            SELECT j.id, j.sweep_trial, j.sweep_parameters, j.status, j.stop_reason, j.epochs_completed, b.value, b.epoch
            FROM jobs j LEFT JOIN LATERAL ({best}) b ON true
            WHERE j.sweep_id = @sweep ORDER BY j.sweep_trial
            """;
        await using var command = connection is null ? dataSource.CreateCommand(sql) : new NpgsqlCommand(sql, connection, transaction);
        command.Parameters.AddWithValue("sweep", sweepId);
        if (objective is not null)
        {
            AddObjective(command, objective);
        }
        var rows = new List<TrialRow>();
        await using var r = await command.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken))
        {
            rows.Add(new TrialRow(r.GetGuid(0), r.GetInt32(1), r.GetString(2), r.GetString(3), r.IsDBNull(4) ? null : r.GetString(4), r.GetInt32(5),
                r.IsDBNull(6) ? null : r.GetDouble(6), r.IsDBNull(7) ? null : r.GetInt32(7)));
        }
        return rows;
    }

    /// <summary>The objective at <paramref name="epoch"/> of the sweep's other trials that reached it (what a pruning decision compares with).</summary>
    public async Task<List<double>> PeerValuesAsync(Guid sweepId, Guid jobId, int epoch, Objective objective, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand($"""
            SELECT {ValueOf(objective)} FROM job_epochs e JOIN jobs j ON j.id = e.job_id
            WHERE j.sweep_id = @sweep AND j.id <> @job AND e.epoch = @epoch
            """);
        command.Parameters.AddWithValue("sweep", sweepId);
        AddObjective(command, objective);
        command.Parameters.AddWithValue("job", jobId);
        command.Parameters.AddWithValue("epoch", epoch);
        var values = new List<double>();
        await using var r = await command.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken))
        {
            values.Add(r.IsDBNull(0) ? double.NaN : r.GetDouble(0));
        }
        return values;
    }

    /// <summary>Each trial's objective per epoch, for the loss report's epochs-to-within-1%.</summary>
    public async Task<Dictionary<Guid, List<(int Epoch, double Value)>>> CurvesAsync(Guid sweepId, Objective objective, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand($"""
            SELECT e.job_id, e.epoch, {ValueOf(objective)} FROM job_epochs e JOIN jobs j ON j.id = e.job_id
            WHERE j.sweep_id = @sweep ORDER BY e.job_id, e.epoch
            """);
        command.Parameters.AddWithValue("sweep", sweepId);
        AddObjective(command, objective);
        var curves = new Dictionary<Guid, List<(int, double)>>();
        await using var r = await command.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken))
        {
            if (!r.IsDBNull(2))
            {
                var id = r.GetGuid(0);
                if (!curves.TryGetValue(id, out var curve))
                {
                    curves[id] = curve = [];
                }
                curve.Add((r.GetInt32(1), r.GetDouble(2)));
            }
        }
        return curves;
    }

    /// <summary>The SQL of the objective's value in an epoch row <c>e</c>: a loss column, or a metric from its JSON.</summary>
    private static string ValueOf(Objective objective) => objective.Metric switch
    {
        "valLoss" => "e.val_loss",
        "trainLoss" => "e.train_loss",
        _ => "(e.metrics ->> @metric)::float8",
    };

    private static void AddObjective(NpgsqlCommand command, Objective objective)
    {
        command.Parameters.AddWithValue("metric", objective.Metric.StartsWith("val.", StringComparison.Ordinal) ? objective.Metric[4..] : objective.Metric);
        command.Parameters.AddWithValue("sign", objective.Minimize ? 1.0 : -1.0);
    }

    private static async Task<List<Sweep>> ReadAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var sweeps = new List<Sweep>();
        await using var r = await command.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken))
        {
            sweeps.Add(new Sweep
            {
                Id = r.GetGuid(0), Tenant = r.GetString(1), CreatedAt = r.GetFieldValue<DateTimeOffset>(2), Status = r.GetString(3),
                StopReason = r.IsDBNull(4) ? null : r.GetString(4), Spec = r.GetString(5), NextTrial = r.GetInt32(6), Exhausted = r.GetBoolean(7),
                Deadline = r.IsDBNull(8) ? null : r.GetFieldValue<DateTimeOffset>(8), FinishedAt = r.IsDBNull(9) ? null : r.GetFieldValue<DateTimeOffset>(9),
                UpdatedAt = r.GetFieldValue<DateTimeOffset>(10),
            });
        }
        return sweeps;
    }
}
