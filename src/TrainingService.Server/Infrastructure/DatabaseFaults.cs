using Npgsql;

namespace TrainingService.Server.Infrastructure;

/// <summary>
/// PostgreSQL out of reach: a connection refused or reset, a timeout, the pool exhausted, the server shutting down,
/// starting up or out of connections. Npgsql marks all of these transient, also when Hangfire or EF Core wraps them.
/// The API answers them with 503 (<see cref="ApiExceptionHandler"/>); workers retry them (<c>Jobs.TransientRetry</c>).
/// </summary>
public static class DatabaseFaults
{
    public static bool IsUnreachable(Exception exception) =>
        Find<NpgsqlException>(exception) is { IsTransient: true } or PostgresException { SqlState: ['0', '8', ..] or ['5', '7', 'P', ..] or ['5', '3', ..] };

    /// <summary>The first exception of type <typeparamref name="T"/> in the chain of inner exceptions.</summary>
    public static T? Find<T>(Exception? exception) where T : Exception
    {
        for (int depth = 0; exception is not null && depth < 16; depth++)
        {
            if (exception is T found)
            {
                return found;
            }
            exception = exception is AggregateException { InnerExceptions.Count: 1 } aggregate ? aggregate.InnerExceptions[0] : exception.InnerException;
        }
        return null;
    }
}
