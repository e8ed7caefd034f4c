using Npgsql;
using TrainingService.Server.Configuration;

namespace TrainingService.Server.Jobs;

/// <summary>Each tenant's running-jobs limit, as the scheduling query reads it: the overrides and the default.</summary>
public sealed record RunningLimits(string[] Tenants, int[] Limits, int Default)
{
    public static RunningLimits From(QuotaOptions quotas) => new(
        quotas.Tenants.Keys.ToArray(), quotas.Tenants.Keys.Select(t => quotas.For(t).MaxRunningJobs).ToArray(), quotas.For("").MaxRunningJobs);
}

/// <summary>What a worker's turn decided: run <see cref="Run"/> (null: nothing may start; the carried job was scheduled again).</summary>
public sealed record SchedulingChoice(Guid? Run, Guid Carried, string Outcome);

// The scheduling writes of job rows: which job a Hangfire job carries. See FairScheduler for the design.
public sealed partial class JobStore
{
    /// <summary>
    /// The fairest queued job that may start (of one worker pool's device, when given, so a swap keeps each job on its pool's
    /// queue): of the tenants under their running-jobs limit, the one with fewest running
    /// jobs, then the one that started a job least recently (never first), then the oldest job. Only jobs whose Hangfire job
    /// is recorded take part (a job a moment old may not have it yet). Locks the row it returns (skipping rows others hold).
    /// Each tenant's counts are index lookups (jobs by tenant and status, and by tenant and start), not a scan of its history.
    /// </summary>
    private const string FairestSql = """
        WITH quota AS (SELECT * FROM unnest(@tenants::text[], @limits::int[]) AS q(tenant, max_running)),
        usage AS MATERIALIZED (
            SELECT t.tenant,
                (SELECT count(*) FROM jobs r WHERE r.tenant = t.tenant AND r.status = ANY(@active)) AS running,
                (SELECT max(s.started_at) FROM jobs s WHERE s.tenant = t.tenant) AS last_start
            FROM (SELECT DISTINCT tenant FROM jobs WHERE status = 'queued') t)
        SELECT j.id, j.hangfire_job_id, j.compute_device FROM jobs j
        JOIN usage u ON u.tenant = j.tenant
        LEFT JOIN quota q ON q.tenant = j.tenant
        WHERE j.status = 'queued' AND j.hangfire_job_id IS NOT NULL AND u.running < coalesce(q.max_running, @default)
            AND (@device::text IS NULL OR j.compute_device = @device)
        ORDER BY u.running, u.last_start NULLS FIRST, j.created_at, j.id
        LIMIT 1
        """;

    /// <summary>
    /// A worker's choice, in one transaction on <paramref name="connection"/> (which holds the scheduling turn): finds the
    /// job the Hangfire job <paramref name="hangfireJobId"/> carries (or claims <paramref name="argument"/>, whose submit has
    /// not recorded it yet), picks the fairest startable job and, when that is another job, swaps the two rows' Hangfire
    /// jobs so every queued job keeps one. When nothing may start, <paramref name="scheduleAgain"/> makes a delayed Hangfire
    /// job for the carried job and it is recorded in this one's place.
    /// </summary>
    public async Task<SchedulingChoice> ChooseAsync(NpgsqlConnection connection, Guid argument, string hangfireJobId, RunningLimits limits,
        Func<Guid, string, string> scheduleAgain, CancellationToken cancellationToken)
    {
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var carried = await CarriedAsync(connection, transaction, argument, hangfireJobId, cancellationToken);
        if (carried is null)
        {
            // A queued job carried by another Hangfire job (this one was replaced, or recovery's is not recorded yet) is left to
            // that one; anything else (a resume whose new Hangfire job is not recorded yet, an ended job) goes on as before.
            return new SchedulingChoice(await StatusAsync(argument, cancellationToken) == JobStatus.Queued ? null : argument, argument, "not carried");
        }
        if (carried.Value.Status != JobStatus.Queued)
        {
            return new SchedulingChoice(carried.Value.Id, carried.Value.Id, "not queued"); // running (a resume) or cancelling: as before
        }
        var fairest = await FairestAsync(connection, transaction, limits, carried.Value.Device, cancellationToken);
        if (fairest is null)
        {
            string next = scheduleAgain(carried.Value.Id, carried.Value.Device);
            await SetCarrierAsync(connection, transaction, carried.Value.Id, hangfireJobId, next, cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            return new SchedulingChoice(null, carried.Value.Id, "deferred");
        }
        if (fairest.Value.Id != carried.Value.Id)
        {
            await using var swap = new NpgsqlCommand("""
                UPDATE jobs SET hangfire_job_id = CASE WHEN id = @carried THEN @theirs ELSE @mine END WHERE id IN (@carried, @fairest)
                """, connection, transaction);
            swap.Parameters.AddWithValue("carried", carried.Value.Id);
            swap.Parameters.AddWithValue("fairest", fairest.Value.Id);
            swap.Parameters.AddWithValue("theirs", fairest.Value.HangfireJobId);
            swap.Parameters.AddWithValue("mine", hangfireJobId);
            await swap.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        return new SchedulingChoice(fairest.Value.Id, carried.Value.Id, fairest.Value.Id == carried.Value.Id ? "own" : "swapped");
    }

    /// <summary>The fairest job of any pool that may start now, its Hangfire job and device, read without locking (to wake it).</summary>
    public async Task<(Guid Id, string HangfireJobId, string Device)?> FairestAsync(RunningLimits limits, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await FairestAsync(connection, null, limits, device: null, cancellationToken);
    }

    /// <summary>The fairest startable job; within a transaction (a worker's choice) of <paramref name="device"/>'s pool, row locked.</summary>
    private static async Task<(Guid Id, string HangfireJobId, string Device)?> FairestAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction,
        RunningLimits limits, string? device, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(FairestSql + (transaction is not null ? " FOR UPDATE OF j SKIP LOCKED" : ""), connection, transaction);
        command.Parameters.AddWithValue("device", NpgsqlTypes.NpgsqlDbType.Text, (object?)device ?? DBNull.Value);
        command.Parameters.AddWithValue("tenants", limits.Tenants);
        command.Parameters.AddWithValue("limits", limits.Limits);
        command.Parameters.AddWithValue("default", limits.Default);
        command.Parameters.AddWithValue("active", new[] { JobStatus.Running, JobStatus.Cancelling });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? (reader.GetGuid(0), reader.GetString(1), reader.GetString(2)) : null;
    }

    /// <summary>
    /// The unfinished job this Hangfire job carries, locked; else <paramref name="argument"/> if its submit has not yet
    /// recorded a Hangfire job (this one is it: claimed here, and the submit writes the same id); else null.
    /// </summary>
    private static async Task<(Guid Id, string Status, string Device)?> CarriedAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid argument,
        string hangfireJobId, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            SELECT id, status, compute_device FROM jobs WHERE hangfire_job_id = @hangfire AND status = ANY(@unfinished) FOR UPDATE;
            UPDATE jobs SET hangfire_job_id = @hangfire
            WHERE id = @argument AND hangfire_job_id IS NULL AND status = 'queued'
                AND NOT EXISTS (SELECT 1 FROM jobs WHERE hangfire_job_id = @hangfire AND status = ANY(@unfinished))
            RETURNING id, status, compute_device;
            """, connection, transaction);
        command.Parameters.AddWithValue("hangfire", hangfireJobId);
        command.Parameters.AddWithValue("argument", argument);
        command.Parameters.AddWithValue("unfinished", JobStatus.Unfinished);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        do
        {
            if (await reader.ReadAsync(cancellationToken))
            {
                return (reader.GetGuid(0), reader.GetString(1), reader.GetString(2));
            }
        }
        while (await reader.NextResultAsync(cancellationToken));
        return null;
    }

    private static async Task SetCarrierAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid id, string from, string to,
        CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("UPDATE jobs SET hangfire_job_id = @to WHERE id = @id AND hangfire_job_id = @from",
            connection, transaction);
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("from", from);
        command.Parameters.AddWithValue("to", to);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
