using System.Collections.Concurrent;
using System.Text.Json;
using Npgsql;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Jobs;

/// <summary>Something happened to a job: an epoch was stored, its status changed, or a cancel was asked for.</summary>
/// <param name="JobId">The job.</param>
/// <param name="Kind"><c>epoch</c>, <c>status</c>, <c>cancel</c>, or <c>resync</c> (the listener reconnected: re-read).</param>
/// <param name="Epoch">For <c>epoch</c>.</param>
/// <param name="Status">For <c>status</c>.</param>
public sealed record JobEvent(Guid JobId, string Kind, int? Epoch = null, string? Status = null);

/// <summary>
/// Cross-process job events through PostgreSQL LISTEN/NOTIFY: writers call <see cref="NotifySql"/> inside their
/// transaction (delivered on commit, to every process), and one dedicated connection per process listens and fans
/// events out to in-process subscribers. If the listening connection drops it reconnects and sends every subscriber a
/// <c>resync</c>, since notifications sent meanwhile are lost.
/// </summary>
public sealed class JobEventHub(NpgsqlDataSource dataSource, ILogger<JobEventHub> logger) : BackgroundService
{
    public const string Channel = "training_events";

    /// <summary>SQL that queues a notification: pass the payload from <see cref="Payload"/> as @event.</summary>
    public const string NotifySql = "SELECT pg_notify('training_events', @event)";

    private readonly ConcurrentDictionary<Guid, ConcurrentDictionary<long, Action<JobEvent>>> _subscribers = new();
    private long _nextId;
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _connected;

    /// <summary>Completes once the first LISTEN is in place.</summary>
    public Task Listening => _listening.Task;

    /// <summary>True while the listening connection is up: events are then complete and caches may trust them.</summary>
    public bool IsListening => _connected;

    /// <summary>Raised for every event of every job (after the job's own subscribers).</summary>
    public event Action<JobEvent>? AnyEvent;

    /// <summary>Raised when events may have been lost (the listener reconnected): anything derived from them is stale.</summary>
    public event Action? Resynchronised;

    public static string Payload(JobEvent e) => JsonSerializer.Serialize(e, ApiJson.Options);

    /// <summary>Calls <paramref name="handler"/> (on the listener's thread: keep it short) for each event of the job.</summary>
    public IDisposable Subscribe(Guid jobId, Action<JobEvent> handler)
    {
        long id = Interlocked.Increment(ref _nextId);
        _subscribers.GetOrAdd(jobId, _ => new()).TryAdd(id, handler);
        return new Subscription(() =>
        {
            if (_subscribers.TryGetValue(jobId, out var handlers))
            {
                handlers.TryRemove(id, out _);
            }
        });
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var delay = TimeSpan.FromMilliseconds(200);
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
                if (!_listening.TrySetResult())
                {
                    Resynchronised?.Invoke();
                    Broadcast(jobId => new JobEvent(jobId, "resync"));
                }
                _connected = true;
                delay = TimeSpan.FromMilliseconds(200);
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
            catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or IOException or TimeoutException)
            {
                _connected = false;
                Resynchronised?.Invoke();
                logger.LogWarning(e, "Job event listener lost its connection; reconnecting in {Delay}", delay);
                await Task.Delay(delay, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
            }
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
        if (e is null)
        {
            return;
        }
        if (_subscribers.TryGetValue(e.JobId, out var handlers))
        {
            foreach (var handler in handlers.Values)
            {
                handler(e);
            }
        }
        AnyEvent?.Invoke(e);
    }

    private void Broadcast(Func<Guid, JobEvent> create)
    {
        foreach (var (jobId, handlers) in _subscribers)
        {
            var e = create(jobId);
            foreach (var handler in handlers.Values)
            {
                handler(e);
            }
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
