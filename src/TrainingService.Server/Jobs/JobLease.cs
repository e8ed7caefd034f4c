using Npgsql;

namespace TrainingService.Server.Jobs;

/// <summary>
/// Ownership of one job: a session-level advisory lock held on a connection of its own for as long as the job trains.
/// Disposing unlocks it explicitly (a pooled connection would otherwise keep the lock until it is next reused); if the
/// owning process dies, PostgreSQL ends the session and the lock with it.
/// </summary>
public sealed class JobLease : IAsyncDisposable
{
    private readonly NpgsqlConnection _connection;
    private readonly long _key;

    private JobLease(NpgsqlConnection connection, long key)
    {
        _connection = connection;
        _key = key;
    }

    /// <summary>The job's lease, or null when another session holds it.</summary>
    public static async Task<JobLease?> TryAcquireAsync(NpgsqlDataSource dataSource, Guid jobId, CancellationToken cancellationToken)
    {
        var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        try
        {
            long key = KeyOf(jobId);
            await using var command = new NpgsqlCommand("SELECT pg_try_advisory_lock(@key)", connection);
            command.Parameters.AddWithValue("key", key);
            if ((bool)(await command.ExecuteScalarAsync(cancellationToken))!)
            {
                return new JobLease(connection, key);
            }
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
        await connection.DisposeAsync();
        return null;
    }

    /// <summary>The advisory lock key of a job: its 128 bits folded to 64.</summary>
    public static long KeyOf(Guid jobId)
    {
        Span<byte> bytes = stackalloc byte[16];
        jobId.TryWriteBytes(bytes);
        return BitConverter.ToInt64(bytes[..8]) ^ BitConverter.ToInt64(bytes[8..]);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await using var command = new NpgsqlCommand("SELECT pg_advisory_unlock(@key)", _connection);
            command.Parameters.AddWithValue("key", _key);
            await command.ExecuteScalarAsync(CancellationToken.None);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException)
        {
            // A broken connection is discarded, not pooled: its session, and the lock, end with it.
        }
        await _connection.DisposeAsync();
    }
}
