using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Npgsql;
using TrainingService.Server.Configuration;
using TrainingService.Server.Data;

namespace TrainingService.Server.Jobs;

/// <summary>
/// Readiness of the job queue: Hangfire's storage answers, and how many worker servers are live, counting only those
/// whose heartbeat is younger than three <see cref="WorkerOptions.HeartbeatInterval"/>s (by the database's clock), so a
/// killed worker stops counting in seconds rather than when Hangfire drops its row. Errors are logged, not shown: the
/// endpoint is public and the error text names hosts and ports.
/// </summary>
internal sealed class WorkerHealthCheck(NpgsqlDataSource dataSource, IOptions<WorkerOptions> options, ILogger<WorkerHealthCheck> logger) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await using var command = dataSource.CreateCommand(
                $"SELECT count(*) FROM \"{DatabaseSetup.HangfireSchema}\".server WHERE lastheartbeat > now() - @window");
            command.Parameters.AddWithValue("window", options.Value.HeartbeatInterval * 3);
            long live = (long)(await command.ExecuteScalarAsync(cancellationToken))!;
            return HealthCheckResult.Healthy($"Hangfire storage answers; {live} live worker server(s).",
                new Dictionary<string, object> { ["liveWorkers"] = live });
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            logger.LogWarning(e, "Readiness: Hangfire storage is unreachable");
            return HealthCheckResult.Unhealthy("Hangfire storage is unreachable.");
        }
    }
}
