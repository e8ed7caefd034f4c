using System.Text.Json;
using Npgsql;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Jobs;

/// <summary>Something happened to a job: an epoch was stored, its status changed, or a cancel was asked for.</summary>
/// <param name="JobId">The job.</param>
/// <param name="Kind"><c>epoch</c>, <c>status</c>, <c>cancel</c>, <c>data</c> (data summary stored), <c>dataset</c> (its dataset
/// was deleted), or <c>resync</c> (the listener reconnected: re-read).</param>
/// <param name="Epoch">For <c>epoch</c>.</param>
/// <param name="Status">For <c>status</c>.</param>
public sealed record JobEvent(Guid JobId, string Kind, int? Epoch = null, string? Status = null);

/// <summary>
/// Cross-process job events through PostgreSQL LISTEN/NOTIFY: writers call <see cref="NotifySql"/> inside their
/// transaction (delivered on commit, to every process), and one dedicated connection per process listens and fans
/// events out to in-process subscribers. If the listening connection drops it reconnects and sends every subscriber a
/// <c>resync</c>, since notifications sent meanwhile are lost. Reconnects back off from 100 ms to at most a second, so a
/// one-second database restart costs the listener about a second; each failure clears the pool, whose idle connections
/// died with the server.
/// </summary>
public sealed class JobEventHub(NpgsqlDataSource dataSource, ILogger<JobEventHub> logger) : BackgroundService
{
    public const string Channel = "training_events";

    /// <summary>SQL that queues a notification: pass the payload from <see cref="Payload"/> as @event.</summary>
    public const string NotifySql = "SELECT pg_notify('training_events', @event)";

    private static readonly TimeSpan FirstDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromSeconds(1);

    // Per job, its handlers; a job's entry goes when its last handler does. Guarded by its own lock (events are few).
    private readonly Dictionary<Guid, Dictionary<long, Action<JobEvent>>> _subscribers = new();
    private long _nextId;
    private volatile bool _connected;
    private bool _connectedBefore;

    /// <summary>True while the listening connection is up: events are then complete and caches may trust them.</summary>
    public bool IsListening => _connected;

    /// <summary>Raised for every event of every job, before the job's own subscribers (so caches are fresh when they run).</summary>
    public event Action<JobEvent>? AnyEvent;

    /// <summary>Raised when events may have been lost (the listener reconnected): anything derived from them is stale.</summary>
    public event Action? Resynchronised;

    public static string Payload(JobEvent e) => JsonSerializer.Serialize(e, ApiJson.Options);

    /// <summary>Calls <paramref name="handler"/> (on the listener's thread: keep it short) for each event of the job.</summary>
    public IDisposable Subscribe(Guid jobId, Action<JobEvent> handler)
    {
        lock (_subscribers)
        {
            long id = ++_nextId;
            if (!_subscribers.TryGetValue(jobId, out var handlers))
            {
                _subscribers[jobId] = handlers = new();
            }
            handlers[id] = handler;
            return new Subscription(() =>
            {
                lock (_subscribers)
                {
                    if (_subscribers.TryGetValue(jobId, out var current) && current.Remove(id) && current.Count == 0)
                    {
                        _subscribers.Remove(jobId);
                    }
                }
            });
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var delay = FirstDelay;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
                connection.Notification += (_, e) => Dispatch(e.Payload);
                await using (var listen = new NpgsqlCommand($"LISTEN {Channel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }
                if (_connectedBefore)
                {
                    InvokeResynchronised();
                    Broadcast(jobId => new JobEvent(jobId, "resync"));
                }
                _connected = _connectedBefore = true;
                delay = FirstDelay;
                while (!stoppingToken.IsCancellationRequested)
                {
                    await connection.WaitAsync(stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                _connected = false;
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // Any failure, not only a lost connection: the listener must outlive every error, or caches and cancels go stale.
                _connected = false;
                InvokeResynchronised();
                dataSource.Clear();
                logger.LogWarning("Job event listener lost its connection ({Error}); reconnecting in {Delay}", e.Message, delay);
                await Task.Delay(delay, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxDelay.Ticks));
            }
        }
    }

    /// <summary>Delivers an event this process committed to its own subscribers now, ahead of the NOTIFY's echo.</summary>
    public void Publish(JobEvent e)
    {
        Invoke(AnyEvent, e);
        Action<JobEvent>[] handlers;
        lock (_subscribers)
        {
            handlers = _subscribers.TryGetValue(e.JobId, out var found) ? [.. found.Values] : [];
        }
        foreach (var handler in handlers)
        {
            Invoke(handler, e);
        }
    }

    private void Dispatch(string payload)
    {
        JobEvent? e;
        try
        {
            e = JsonSerializer.Deserialize<JobEvent>(payload, ApiJson.Options);
        }
        catch (JsonException)
        {
            logger.LogWarning("Ignoring malformed job event {Payload}", payload);
            return;
        }
        if (e is not null)
        {
            Publish(e);
        }
    }

    private void Broadcast(Func<Guid, JobEvent> create)
    {
        (Guid JobId, Action<JobEvent>[] Handlers)[] all;
        lock (_subscribers)
        {
            all = [.. _subscribers.Select(s => (s.Key, s.Value.Values.ToArray()))];
        }
        foreach (var (jobId, handlers) in all)
        {
            var e = create(jobId);
            foreach (var handler in handlers)
            {
                Invoke(handler, e);
            }
        }
    }

    private void InvokeResynchronised()
    {
        try
        {
            Resynchronised?.Invoke();
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "A job event resynchronisation handler failed");
        }
    }

    // A handler that throws (say, one whose owner just disposed its token source) must not stop the listener.
    private void Invoke(Action<JobEvent>? handler, JobEvent e)
    {
        try
        {
            handler?.Invoke(e);
        }
        catch (Exception ex)
        {
            logger.LogWarning(ex, "A handler of job event {Kind} for job {JobId} failed", e.Kind, e.JobId);
        }
    }

    private sealed class Subscription(Action dispose) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                dispose();
            }
        }
    }
}
