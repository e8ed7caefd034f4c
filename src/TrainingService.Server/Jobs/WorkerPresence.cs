using Microsoft.Extensions.Options;
using Npgsql;
using TrainingService.Server.Configuration;
using TrainingService.Server.Data;
using TrainingService.Server.Data.Entities;

namespace TrainingService.Server.Jobs;

/// <summary>
/// Which queues live workers serve, from Hangfire's server rows (a server is live while its heartbeat is younger than
/// three <see cref="WorkerOptions.HeartbeatInterval"/>s, as readiness counts it), read at most every
/// <see cref="CacheFor"/>; and so whether a queued job is waiting for a pool that has no worker.
/// </summary>
public sealed class WorkerPresence(NpgsqlDataSource dataSource, IOptions<WorkerOptions> options, TimeProvider time)
{
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(1);

    /// <summary>What the last read found, replaced whole (requests read it concurrently).</summary>
    private sealed record Snapshot(IReadOnlySet<string> Queues, DateTimeOffset At);

    private volatile Snapshot? _cached;

    /// <summary>True when no live worker serves the queue of a job asking for <paramref name="device"/>.</summary>
    public async Task<bool> IsUnservedAsync(string device, CancellationToken cancellationToken) =>
        !(await LiveQueuesAsync(cancellationToken)).Contains(ComputePools.QueueOf(device));

    /// <summary>For a queued job whose pool has no live worker: what it waits for and since when; otherwise null.</summary>
    public async Task<JobWaiting?> WaitingAsync(Job job, CancellationToken cancellationToken)
    {
        if (job.Status != JobStatus.Queued || !await IsUnservedAsync(job.ComputeDevice, cancellationToken))
        {
            return null;
        }
        string what = job.ComputeDevice == ComputePools.Any ? "a worker" : $"a {job.ComputeDevice} worker";
        double seconds = Math.Max(0, (time.GetUtcNow() - job.CreatedAt).TotalSeconds);
        return new JobWaiting(job.ComputeDevice, $"waiting for {what}: none is alive", job.CreatedAt, Math.Round(seconds, 1));
    }

    private async Task<IReadOnlySet<string>> LiveQueuesAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (_cached is { } cached && now - cached.At < CacheFor)
        {
            return cached.Queues;
        }
        await using var command = dataSource.CreateCommand($"""
            SELECT DISTINCT jsonb_array_elements_text(data::jsonb -> 'Queues') FROM "{DatabaseSetup.HangfireSchema}".server
            WHERE lastheartbeat > now() - @window
            """);
        command.Parameters.AddWithValue("window", options.Value.HeartbeatInterval * 3);
        var queues = new HashSet<string>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            queues.Add(reader.GetString(0));
        }
        _cached = new Snapshot(queues, now);
        return queues;
    }
}
