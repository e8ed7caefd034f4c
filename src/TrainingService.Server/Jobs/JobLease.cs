using Npgsql;

namespace TrainingService.Server.Jobs;

/// <summary>
/// Ownership of one job: a session-level advisory lock held on a connection of its own for as long as the job trains.
/// Disposing unlocks it explicitly (a pooled connection would otherwise keep the lock until it is next reused); if the
/// owning process dies, PostgreSQL ends the session and the lock with it, which is how <see cref="JobRecovery"/> sees a
/// dead worker in seconds. A database restart ends every session too: <see cref="KeepAsync"/> takes the lock again
/// as soon as the server is back, and reports the job lost if another session took it first. A network blip can break
/// the connection while its server session lives on, still holding the lock (the server notices a silent peer only when
/// TCP keepalive gives up, hours by default): the lease remembers its session (process id and start time), and ends that
/// session, its own, to take the lock again.
/// </summary>
public sealed class JobLease : IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly long _key;
    private NpgsqlConnection _connection;
    private Session _session;

    /// <summary>A server session: its backend's process id and start time (process ids are reused).</summary>
    private readonly record struct Session(int Pid, DateTime Started);

    private JobLease(NpgsqlDataSource dataSource, NpgsqlConnection connection, long key, Session session)
    {
        _dataSource = dataSource;
        _connection = connection;
        _key = key;
        _session = session;
    }

    /// <summary>
    /// The job's lease, or null when another session still holds it after <paramref name="wait"/>. The short wait lets a
    /// new delivery outlast a recovery pass that holds the lease for a moment, or an owner that is handing the job over.
    /// </summary>
    public static async Task<JobLease?> TryAcquireAsync(NpgsqlDataSource dataSource, Guid jobId, TimeSpan wait, CancellationToken cancellationToken)
    {
        long key = KeyOf(jobId);
        var deadline = DateTime.UtcNow + wait;
        var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        try
        {
            while (true)
            {
                if (await TryLockAsync(connection, key, cancellationToken) is { } session)
                {
                    return new JobLease(dataSource, connection, key, session);
                }
                if (DateTime.UtcNow >= deadline)
                {
                    break;
                }
                await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
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

    /// <summary>The job's lease, or null when another session holds it now.</summary>
    public static Task<JobLease?> TryAcquireAsync(NpgsqlDataSource dataSource, Guid jobId, CancellationToken cancellationToken) =>
        TryAcquireAsync(dataSource, jobId, TimeSpan.Zero, cancellationToken);

    /// <summary>Whether some session holds the job's lease, asked without taking it (so an owner about to take it is never refused).</summary>
    public static async Task<bool> IsHeldAsync(NpgsqlDataSource dataSource, Guid jobId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand($"SELECT EXISTS (SELECT 1 FROM pg_locks l WHERE {HeldBy})");
        command.Parameters.AddWithValue("key", KeyOf(jobId));
        return (bool)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>The advisory lock key of a job: its 128 bits folded to 64.</summary>
    public static long KeyOf(Guid jobId)
    {
        Span<byte> bytes = stackalloc byte[16];
        jobId.TryWriteBytes(bytes);
        return BitConverter.ToInt64(bytes[..8]) ^ BitConverter.ToInt64(bytes[8..]);
    }

    /// <summary>
    /// Checks the lease's session every <paramref name="interval"/> until <paramref name="stop"/> fires (returns true), and
    /// takes the lock again on a new session when the old one is gone (a database restart). Returns false when another
    /// session took the lock meanwhile: the job is no longer this worker's.
    /// </summary>
    public async Task<bool> KeepAsync(TimeSpan interval, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                if (!await StillHeldAsync(stop))
                {
                    return false;
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        return true;
    }

    /// <summary>True while this session holds the lock, or once a new session holds it again; false when another session has it.</summary>
    private async Task<bool> StillHeldAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var ping = new NpgsqlCommand("SELECT 1", _connection);
            await ping.ExecuteScalarAsync(cancellationToken);
            return true;
        }
        catch (Exception e) when (TransientRetry.IsTransient(e) || e is InvalidOperationException)
        {
            await _connection.DisposeAsync();
        }
        try
        {
            _dataSource.Clear(); // the pool's idle sessions died with the old one
            _connection = await _dataSource.OpenConnectionAsync(cancellationToken);
            return await RetakeAsync(cancellationToken);
        }
        catch (Exception e) when (TransientRetry.IsTransient(e))
        {
            return true; // the server is still away: nobody else can take the lock either; try again at the next tick
        }
    }

    /// <summary>
    /// Takes the lock on the new connection. If this lease's old session still holds it (a blip broke the connection, not
    /// the session), ends that session and takes the lock once it is gone; false if another session holds it.
    /// </summary>
    private async Task<bool> RetakeAsync(CancellationToken cancellationToken)
    {
        if (await TryLockAsync(_connection, _key, cancellationToken) is { } session)
        {
            _session = session;
            return true;
        }
        await using (var end = new NpgsqlCommand($"""
            SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE {HeldBy} AND l.pid = @pid AND a.backend_start = @started
            """, _connection))
        {
            end.Parameters.AddWithValue("key", _key);
            end.Parameters.AddWithValue("pid", _session.Pid);
            end.Parameters.AddWithValue("started", _session.Started);
            if ((long)(await end.ExecuteScalarAsync(cancellationToken))! == 0)
            {
                return false; // another session holds it: the job is someone else's
            }
        }
        // The old session releases the lock as it exits, a moment after the signal.
        for (var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5); DateTime.UtcNow < deadline;)
        {
            if (await TryLockAsync(_connection, _key, cancellationToken) is { } retaken)
            {
                _session = retaken;
                return true;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(20), cancellationToken);
        }
        return false;
    }

    /// <summary>The granted advisory lock on <c>@key</c> in this database, as a condition on <c>pg_locks l</c>.</summary>
    private const string HeldBy = """
        l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND ((l.classid::bigint << 32) | l.objid::bigint) = @key
        """;

    /// <summary>Takes the lock on <paramref name="connection"/> if it is free; returns the session that holds it then, else null.</summary>
    private static async Task<Session?> TryLockAsync(NpgsqlConnection connection, long key, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "SELECT pg_try_advisory_lock(@key), pg_backend_pid(), (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())",
            connection);
        command.Parameters.AddWithValue("key", key);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return reader.GetBoolean(0) ? new Session(reader.GetInt32(1), reader.GetDateTime(2)) : null;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await using var command = new NpgsqlCommand("SELECT pg_advisory_unlock(@key)", _connection);
            command.Parameters.AddWithValue("key", _key);
            await command.ExecuteScalarAsync(CancellationToken.None);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException or IOException)
        {
            // A broken connection is discarded, not pooled: its session, and the lock, end with it.
        }
        await _connection.DisposeAsync();
    }
}
