using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.Options;
using Npgsql;
using TrainingService.Server.Configuration;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Jobs;

/// <summary>
/// Carries a worker's database calls through short outages (a PostgreSQL restart, a dropped connection): a call that
/// fails with a transient error is retried with a backoff of 50 ms doubling to 500 ms, so a one-second blip costs about
/// a second, for at most <see cref="WorkerOptions.TransientRetryLimit"/>; then the error goes up, and the worker leaves
/// the job running for <see cref="JobRecovery"/> to resume (a transient error never fails a job). Each retry first clears
/// the pool: after a restart every idle pooled connection is dead, and would otherwise be handed out, and fail, in turn.
/// Only for idempotent calls (every worker write is: upserts, guarded transitions).
/// </summary>
public sealed class TransientRetry(NpgsqlDataSource dataSource, IOptions<WorkerOptions> options, ILogger<TransientRetry> logger)
{
    private static readonly TimeSpan FirstDelay = TimeSpan.FromMilliseconds(50), MaxDelay = TimeSpan.FromMilliseconds(500);

    /// <summary>True for errors that another try may not meet: a lost or refused connection, a server shutting down or starting up.</summary>
    public static bool IsTransient(Exception e) =>
        DatabaseFaults.IsUnreachable(e) || e is TimeoutException or SocketException or IOException
        || e is NpgsqlException { InnerException: IOException or SocketException or TimeoutException };

    /// <summary>Runs <paramref name="call"/>, retrying it on transient errors.</summary>
    public async Task<T> RunAsync<T>(string what, Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var delay = FirstDelay;
        while (true)
        {
            try
            {
                return await call(cancellationToken);
            }
            catch (Exception e) when (IsTransient(e) && !cancellationToken.IsCancellationRequested
                && clock.Elapsed + delay < options.Value.TransientRetryLimit)
            {
                dataSource.Clear();
                logger.LogWarning("{What} failed ({Error}); retrying in {Delay} ms", what, e.Message, delay.TotalMilliseconds);
                await Task.Delay(delay, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxDelay.Ticks));
            }
        }
    }

    /// <summary>Runs <paramref name="call"/>, retrying it on transient errors.</summary>
    public Task RunAsync(string what, Func<CancellationToken, Task> call, CancellationToken cancellationToken) =>
        RunAsync(what, async ct =>
        {
            await call(ct);
            return true;
        }, cancellationToken);
}
