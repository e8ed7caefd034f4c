using System.Collections.Concurrent;

namespace TrainingService.Server.Jobs;

/// <summary>
/// Each job's state row (status, epochs completed, and the version its ETags are made of), cached in the API process so
/// a conditional GET answered 304, or a poll with nothing new after its epoch, costs no database round trip. Correct because every version bump sends a NOTIFY: any event for a job drops its entry, a
/// listener reconnect drops them all, and while the listener is down the cache is bypassed. A read stores what it
/// found only if no event for the job arrived meanwhile (a per-job generation), and entries expire after a few
/// seconds as a last safety net.
/// </summary>
public sealed class JobStates
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(5);

    private readonly JobEventHub _events;
    private readonly JobStore _store;
    private readonly ConcurrentDictionary<Guid, (JobState State, long Generation, long Expires)> _states = new();
    private readonly ConcurrentDictionary<Guid, long> _generations = new();

    public JobStates(JobEventHub events, JobStore store)
    {
        _events = events;
        _store = store;
        events.AnyEvent += e =>
        {
            _generations.AddOrUpdate(e.JobId, 1, (_, g) => g + 1);
            _states.TryRemove(e.JobId, out _);
        };
        events.Resynchronised += () =>
        {
            _generations.Clear();
            _states.Clear();
        };
    }

    /// <summary>The job's current state, or null if it does not exist.</summary>
    public async Task<JobState?> GetAsync(Guid id, CancellationToken cancellationToken)
    {
        long now = Environment.TickCount64;
        if (_events.IsListening && _states.TryGetValue(id, out var cached) && cached.Expires > now
            && cached.Generation == _generations.GetValueOrDefault(id))
        {
            return cached.State;
        }
        long generation = _generations.GetValueOrDefault(id);
        var state = await _store.StateAsync(id, cancellationToken);
        if (state is not null && _events.IsListening && generation == _generations.GetValueOrDefault(id))
        {
            _states[id] = (state, generation, now + (long)Lifetime.TotalMilliseconds);
        }
        return state;
    }
}
