using System.Collections.Concurrent;

namespace TrainingService.Server.Jobs;

/// <summary>
/// Each job's state row (status, epochs completed, and the version its ETags are made of), cached in the API process so
/// a conditional GET answered 304, or a poll with nothing new after its epoch, costs no database round trip. Correct
/// because every version bump sends a NOTIFY: any event for a job drops its entry, a listener reconnect drops them all,
/// and while the listener is down the cache is bypassed. A read keeps what it found only if no event for the job
/// arrived meanwhile (per-job generations, plus a count of whole-cache resets), and entries expire after a few seconds
/// as a last safety net. The cache is bounded: past <see cref="MaxJobs"/> jobs it starts afresh.
/// </summary>
public sealed class JobStates
{
    public const int MaxJobs = 10_000;
    private static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(5);

    private readonly JobEventHub _events;
    private readonly JobStore _store;
    private readonly ConcurrentDictionary<Guid, (JobState State, long Expires)> _states = new();
    private readonly ConcurrentDictionary<Guid, long> _generations = new();
    private long _resets;

    public JobStates(JobEventHub events, JobStore store)
    {
        _events = events;
        _store = store;
        events.AnyEvent += e =>
        {
            if (_generations.Count >= MaxJobs)
            {
                Reset();
            }
            _generations.AddOrUpdate(e.JobId, 1, (_, g) => g + 1);
            _states.TryRemove(e.JobId, out _);
        };
        events.Resynchronised += Reset;
    }

    /// <summary>
    /// The tenant's job's current state, or null if it does not exist or is another tenant's: cached or not, the caller
    /// cannot tell those apart.
    /// </summary>
    public async Task<JobState?> GetAsync(string tenant, Guid id, CancellationToken cancellationToken)
    {
        var state = await GetAnyAsync(tenant, id, cancellationToken);
        return state?.Tenant == tenant ? state : null;
    }

    private async Task<JobState?> GetAnyAsync(string tenant, Guid id, CancellationToken cancellationToken)
    {
        long now = Environment.TickCount64;
        // Only the job's own tenant is answered from the cache: another tenant's request reads the database, as it would
        // for an id that does not exist, so not even the time it takes tells them apart.
        if (_events.IsListening && _states.TryGetValue(id, out var cached) && cached.Expires > now && cached.State.Tenant == tenant)
        {
            return cached.State;
        }
        var before = Stamp(id);
        var state = await _store.StateAsync(id, cancellationToken);
        if (state is not null && _events.IsListening && Stamp(id) == before)
        {
            if (_states.Count >= MaxJobs)
            {
                Reset();
                return state;
            }
            _states[id] = (state, now + (long)Lifetime.TotalMilliseconds);
            if (Stamp(id) != before)
            {
                _states.TryRemove(id, out _); // an event slipped in between the check and the store
            }
        }
        return state;
    }

    private (long Resets, long Generation) Stamp(Guid id) => (Interlocked.Read(ref _resets), _generations.GetValueOrDefault(id));

    private void Reset()
    {
        Interlocked.Increment(ref _resets);
        _generations.Clear();
        _states.Clear();
    }
}
