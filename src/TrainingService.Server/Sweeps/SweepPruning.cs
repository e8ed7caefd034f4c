namespace TrainingService.Server.Sweeps;

/// <summary>
/// Early termination of a sweep's trials. <paramref name="MinEpochs"/> is the first epoch at which a trial can be
/// stopped (ASHA's first rung; median stopping's warm-up). <paramref name="ReductionFactor"/> (η, ASHA only) sets both
/// the rung spacing and the share that continues, 1/η. <paramref name="MinTrials"/> (median only) is how many other
/// trials must have reported an epoch before it is judged.
/// </summary>
public sealed record EarlyTermination(EarlyTerminationType Type, int MinEpochs, int ReductionFactor = 3, int MinTrials = 5);

/// <summary>Which early-termination rule a sweep runs.</summary>
public enum EarlyTerminationType
{
    /// <summary>Asynchronous successive halving (Li et al. 2020), in Optuna's stopping form.</summary>
    Asha,
    /// <summary>Median stopping (Golovin et al. 2017, Google Vizier).</summary>
    Median,
}

/// <summary>
/// Decides, from per-epoch values alone, whether a running trial stops. All values are normalised so that lower is
/// better (a maximised metric is negated). Epochs count from 1, as the job histories do.
/// </summary>
public static class SweepPruning
{
    /// <summary>
    /// Whether a trial must be judged after <paramref name="epoch"/>. ASHA judges at its rungs, minEpochs·η^k for k = 0, 1, …
    /// (3, 9, 27 for minEpochs 3 and η 3); median stopping judges every epoch from minEpochs on. The last epoch is never
    /// a decision: the trial ends there anyway.
    /// </summary>
    public static bool IsDecisionEpoch(EarlyTermination rule, int epoch, int maxEpochs)
    {
        Check(rule);
        if (epoch < rule.MinEpochs || epoch >= maxEpochs)
        {
            return false;
        }
        if (rule.Type == EarlyTerminationType.Median)
        {
            return true;
        }
        long rung = rule.MinEpochs;
        while (rung < epoch)
        {
            rung *= rule.ReductionFactor;
        }
        return rung == epoch;
    }

    /// <summary>ASHA's rungs below <paramref name="maxEpochs"/>, or every decision epoch for median stopping.</summary>
    public static IReadOnlyList<int> DecisionEpochs(EarlyTermination rule, int maxEpochs) =>
        Enumerable.Range(1, Math.Max(0, maxEpochs - 1)).Where(e => IsDecisionEpoch(rule, e, maxEpochs)).ToList();

    /// <summary>
    /// Whether the trial stops at a decision epoch. <paramref name="value"/> is its value at this epoch,
    /// <paramref name="bestSoFar"/> its best value up to and including it, and <paramref name="peersAtEpoch"/> the values
    /// the other trials of the sweep recorded at this same epoch (running, finished or pruned), itself excluded.
    /// <list type="bullet">
    /// <item>ASHA, as Optuna's SuccessiveHalvingPruner: with the n values at this rung (the peers and the trial's own), the
    /// trial continues when its value is at most the k-th smallest, k = max(1, ⌊n/η⌋), i.e. it is in the top 1/η so far.
    /// With fewer than η values only the best continues (k = 1): a trial cannot be paused and resumed later, so this is
    /// how the first arrivals at a rung are judged. The very first trial to reach a rung always continues.</item>
    /// <item>Median: stop when the trial's best value so far is worse than the median of the peers' values at this
    /// epoch, once at least MinTrials peers reported it (Optuna's MedianPruner compares the same best-so-far).</item>
    /// </list>
    /// Before minEpochs nothing stops; from there a value that is not a number (a diverged trial) always does.
    /// </summary>
    public static bool ShouldPrune(EarlyTermination rule, int epoch, double value, double bestSoFar, IReadOnlyList<double> peersAtEpoch)
    {
        Check(rule);
        if (epoch < rule.MinEpochs)
        {
            return false;
        }
        if (double.IsNaN(value))
        {
            return true;
        }
        var peers = peersAtEpoch.Where(v => !double.IsNaN(v)).ToList();
        if (rule.Type == EarlyTerminationType.Median)
        {
            return peers.Count >= rule.MinTrials && bestSoFar > Median(peers);
        }
        var rung = peers.Append(value).Order().ToList();
        int keep = Math.Max(1, rung.Count / rule.ReductionFactor);
        return value > rung[keep - 1];
    }

    /// <summary>The middle value, or the mean of the two middle ones.</summary>
    internal static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToList();
        int middle = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[middle] : 0.5 * (sorted[middle - 1] + sorted[middle]);
    }

    private static void Check(EarlyTermination rule)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rule.MinEpochs, 1, nameof(rule.MinEpochs));
        ArgumentOutOfRangeException.ThrowIfLessThan(rule.ReductionFactor, 2, nameof(rule.ReductionFactor));
        ArgumentOutOfRangeException.ThrowIfNegative(rule.MinTrials, nameof(rule.MinTrials));
    }
}
