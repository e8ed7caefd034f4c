using System.Runtime;
using Microsoft.Extensions.Options;
using TrainingService.Server.Configuration;

namespace TrainingService.Server.Losses;

/// <summary>
/// The evaluations in progress, at most <see cref="LossApiOptions.MaxConcurrentEvaluations"/>. Each holds its request's
/// numbers in memory from the first byte read to the last byte written, so a request past the cap is refused at once
/// (429 with Retry-After) rather than queued: memory stays bounded by the cap times the largest request.
/// </summary>
public sealed class LossEvaluationSlots(IOptions<LossApiOptions> options)
{
    /// <summary>Values (all arrays of a request) from which an evaluation's memory is handed back to the system afterwards.</summary>
    public const long LargeRequestValues = 1 << 20;

    private readonly int _capacity = options.Value.MaxConcurrentEvaluations;
    private readonly Lock _lock = new();
    private int _taken;
    private bool _largeSinceCollect;

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
    /// The last evaluation out after a large one compacts the heap: the arrays of a large request are garbage now, and
    /// without a collection an idle process would keep their memory (measured: 275 MiB after a 4M-value request instead of
    /// 138 MiB before it). One blocking collection of a small heap costs milliseconds; large requests take seconds.
    /// </summary>
    private void Release(bool large)
    {
        lock (_lock)
        {
            _taken--;
            _largeSinceCollect |= large;
            if (_taken > 0 || !_largeSinceCollect)
            {
                return;
            }
            _largeSinceCollect = false;
        }
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
    }

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
