using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Npgsql;
using TrainingService.Server.Configuration;

namespace TrainingService.Server.Access;

/// <summary>
/// Keys this process has read, so an authenticated poll costs a dictionary lookup and a SHA-256, not a query. A
/// revocation evicts its key in every process through LISTEN on <see cref="KeyStore.Channel"/>; while the listener is
/// down (and once it reconnects, since notifications sent meanwhile are lost) the cache is emptied, and an entry is never
/// trusted for longer than <see cref="AuthOptions.KeyCacheTime"/>. Unknown ids are remembered exactly as long as known ones
/// (a creation notifies too, so a new key is never refused for having been unknown): a client guessing ids cannot turn every
/// request into a query, and a wrong secret for an existing id costs what an unknown id costs, so timing does not tell
/// which ids exist. The cache is bounded and starts over when full.
/// </summary>
public sealed class KeyCache(KeyStore store, NpgsqlDataSource dataSource, IOptions<AuthOptions> options, ILogger<KeyCache> logger)
    : BackgroundService
{
    private const int MaxEntries = 100_000;

    private sealed record Entry(KeyRecord? Key, long ReadAt);

    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private volatile bool _listening;
    private long _evictions; // bumped by every eviction: a read that overlapped one is not kept, it may predate the change

    /// <summary>The key with this id as last read (null when none), from the cache when fresh.</summary>
    public async ValueTask<KeyRecord?> FindAsync(string id, CancellationToken cancellationToken)
    {
        if (_listening && _entries.TryGetValue(id, out var entry) && IsFresh(entry))
        {
            return entry.Key;
        }
        long readAt = Environment.TickCount64;
        long evictions = Interlocked.Read(ref _evictions);
        var key = await store.FindAsync(id, cancellationToken);
        if (_listening && Interlocked.Read(ref _evictions) == evictions)
        {
            if (_entries.Count >= MaxEntries)
            {
                _entries.Clear();
            }
            _entries[id] = new Entry(key, readAt);
            if (Interlocked.Read(ref _evictions) != evictions)
            {
                _entries.TryRemove(id, out _); // an eviction slipped in between the check and the store
            }
        }
        return key;
    }

    /// <summary>Drops a key now (this process revoked or created it; the notification follows for the others).</summary>
    public void Evict(string id)
    {
        Interlocked.Increment(ref _evictions);
        _entries.TryRemove(id, out _);
    }

    private void EvictAll()
    {
        Interlocked.Increment(ref _evictions);
        _entries.Clear();
    }

    private bool IsFresh(Entry entry) => TimeSpan.FromMilliseconds(Environment.TickCount64 - entry.ReadAt) < options.Value.KeyCacheTime;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
                connection.Notification += (_, e) => Evict(e.Payload);
                await using (var listen = new NpgsqlCommand($"LISTEN {KeyStore.Channel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }
                EvictAll(); // whatever was revoked while nobody listened
                _listening = true;
                delay = TimeSpan.FromMilliseconds(100);
                while (!stoppingToken.IsCancellationRequested)
                {
                    await connection.WaitAsync(stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                _listening = false;
                EvictAll();
                logger.LogWarning("Key revocation listener lost its connection ({Error}); keys are read from the database until it is back", e.Message);
                await Task.Delay(delay, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(1).Ticks));
            }
        }
        _listening = false;
    }
}
