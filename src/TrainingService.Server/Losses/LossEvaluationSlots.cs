using System.Diagnostics;
using System.Runtime;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Options;
using TrainingService.Server.Configuration;

namespace TrainingService.Server.Losses;

/// <summary>
/// The evaluations in progress, at most <see cref="LossApiOptions.MaxConcurrentEvaluations"/>. Each holds its request's
/// numbers in memory from the first byte read to the last byte written, so a request past the cap is refused at once
/// (429 with Retry-After) rather than queued: memory stays bounded by the cap times the largest request.
/// </summary>
public sealed partial class LossEvaluationSlots(IOptions<LossApiOptions> options, ILogger<LossEvaluationSlots> logger) : IDisposable
{
    /// <summary>Values (all arrays of a request) from which an evaluation's memory is handed back to the system afterwards.</summary>
    public const long LargeRequestValues = 1 << 20;

    private readonly int _capacity = options.Value.MaxConcurrentEvaluations;
    private readonly Lock _lock = new();
    private int _taken;
    private bool _largeSinceCollect;
    private long _lastCollect = long.MinValue / 2;
    private Timer? _deferred;
    private int _compactions;

    /// <summary>At most one compaction in this interval, so no client can pause the process at will.</summary>
    internal TimeSpan CompactionInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Compactions run so far (for tests).</summary>
    internal int Compactions => Volatile.Read(ref _compactions);

    public int Capacity => _capacity;

    /// <summary>A slot, released by disposing it; null when all are taken.</summary>
    public Slot? TryTake()
    {
        lock (_lock)
        {
            if (_taken == _capacity)
            {
                return null;
            }
            _taken++;
            return new Slot(this);
        }
    }

    /// <summary>
    /// The last evaluation out after a large one hands its memory back. Its arrays are garbage now, but an idle process
    /// runs no collection and would keep them (measured: 275 MiB resident after a 4M-value request, 138 MiB before it);
    /// and the accelerator's buffers were malloc'd, so glibc keeps their freed pages in its arenas unless trimmed
    /// (measured after two at once: 278 MiB with the collection alone, 167 MiB with the trim). The blocking collection
    /// of a small heap takes 30–60 ms; a large request takes seconds. Compactions are at least
    /// <see cref="CompactionInterval"/> apart.
    /// </summary>
    private void Release(bool large)
    {
        lock (_lock)
        {
            _taken--;
            _largeSinceCollect |= large;
            if (!TryStartCompaction())
            {
                return;
            }
        }
        Compact();
    }

    /// <summary>
    /// Under the lock: true when the caller must compact now. Too soon after the last one, a compaction is deferred to
    /// the end of the interval (a timer), so an idle process still hands the memory back without another request.
    /// </summary>
    private bool TryStartCompaction()
    {
        long now = Environment.TickCount64;
        long wait = _lastCollect + (long)CompactionInterval.TotalMilliseconds - now;
        if (_taken > 0 || !_largeSinceCollect)
        {
            return false; // the last evaluation out does it (the flag stays)
        }
        if (wait > 0)
        {
            _deferred ??= new Timer(_ => Deferred(), null, TimeSpan.FromMilliseconds(wait), Timeout.InfiniteTimeSpan);
            return false;
        }
        _largeSinceCollect = false;
        _lastCollect = now;
        return true;
    }

    private void Deferred()
    {
        lock (_lock)
        {
            _deferred?.Dispose();
            _deferred = null;
            if (!TryStartCompaction())
            {
                return;
            }
        }
        Compact();
    }

    private void Compact()
    {
        Interlocked.Increment(ref _compactions);
        long before = Environment.WorkingSet;
        var clock = Stopwatch.StartNew();
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        TrimNativeHeap();
        LogCompacted(clock.Elapsed.TotalMilliseconds, before >> 20, Environment.WorkingSet >> 20);
    }

    private static void TrimNativeHeap()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        try
        {
            MallocTrim(0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc (musl has no malloc_trim): freed native memory stays with the allocator.
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _deferred?.Dispose();
            _deferred = null;
        }
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    [LoggerMessage(LogLevel.Information, "Compacted the heap after a large loss evaluation in {Milliseconds:F0} ms: resident {BeforeMiB} → {AfterMiB} MiB")]
    private partial void LogCompacted(double milliseconds, long beforeMiB, long afterMiB);

    public sealed class Slot(LossEvaluationSlots slots) : IDisposable
    {
        private int _released;

        /// <summary>Set when the request held <see cref="LargeRequestValues"/> or more.</summary>
        public bool Large { get; set; }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                slots.Release(Large);
            }
        }
    }
}

public static class LossSetup
{
    public static IServiceCollection AddLosses(this IServiceCollection services) => services.AddSingleton<LossEvaluationSlots>();
}
