namespace TrainingService.Compute.Schedules;

/// <summary>Learning-rate schedules, stepped once per epoch as PyTorch's schedulers usually are.</summary>
public enum ScheduleKind
{
    /// <summary>lr₀ throughout.</summary>
    Constant,
    /// <summary>lr₀·γ^⌊e / stepSize⌋ (StepLR).</summary>
    Step,
    /// <summary>lr₀·γᵉ (ExponentialLR).</summary>
    Exponential,
    /// <summary>Linear warm-up, then half-cosine decay to minLr (CosineAnnealingLR after a warm-up).</summary>
    Cosine,
    /// <summary>× factor when the monitored value stops improving (ReduceLROnPlateau).</summary>
    ReduceOnPlateau,
}

/// <summary>A schedule and its parameters; unset values take PyTorch's defaults.</summary>
/// <param name="Kind">Which schedule.</param>
/// <param name="StepSize">Step: epochs between decays.</param>
/// <param name="Gamma">Step and exponential: decay factor (step 0.1, exponential 0.95).</param>
/// <param name="WarmupEpochs">Cosine: linear warm-up epochs (0).</param>
/// <param name="MinLearningRate">Cosine and plateau: floor (0).</param>
/// <param name="Patience">Plateau: epochs without improvement before a decay (10).</param>
/// <param name="Factor">Plateau: decay factor (0.1).</param>
/// <param name="Threshold">Plateau: relative improvement that counts (1e−4).</param>
/// <param name="Monitor">Plateau: <c>valLoss</c> (default when validating), <c>trainLoss</c>, or a metric.</param>
/// <param name="Mode">Plateau: min or max (by default from the monitor).</param>
public sealed record ScheduleSpec(
    ScheduleKind Kind,
    int? StepSize = null,
    double? Gamma = null,
    int? WarmupEpochs = null,
    double? MinLearningRate = null,
    int? Patience = null,
    double? Factor = null,
    double? Threshold = null,
    string? Monitor = null,
    MonitorMode? Mode = null)
{
    /// <summary>A constant schedule.</summary>
    public static ScheduleSpec Constant { get; } = new(ScheduleKind.Constant);
}

/// <summary>Whether smaller or larger monitored values are better.</summary>
public enum MonitorMode
{
    /// <summary>Lower is better (losses, rmse, mae).</summary>
    Min,
    /// <summary>Higher is better (accuracy, f1, auc, r2).</summary>
    Max,
}

/// <summary>The state of a schedule: the learning rate to use for the next epoch, plus plateau bookkeeping.</summary>
public sealed class LearningRateSchedule
{
    private readonly ScheduleSpec _spec;
    private readonly double _initial;
    private readonly int _epochs;

    /// <summary>Creates the schedule for <paramref name="epochs"/> epochs starting at <paramref name="initial"/>.</summary>
    public LearningRateSchedule(ScheduleSpec spec, double initial, int epochs)
    {
        _spec = spec;
        _initial = initial;
        _epochs = epochs;
        Current = RateFor(0);
        PlateauBest = double.NaN;
    }

    /// <summary>The learning rate of the epoch about to run.</summary>
    public double Current { get; private set; }

    /// <summary>Plateau: best monitored value so far (NaN before the first).</summary>
    public double PlateauBest { get; private set; }

    /// <summary>Plateau: epochs since the last improvement.</summary>
    public int PlateauBadEpochs { get; private set; }

    /// <summary>The rate of epoch <paramref name="epoch"/> (0-based) for the closed-form schedules.</summary>
    public double RateFor(int epoch)
    {
        double minimum = _spec.MinLearningRate ?? 0.0;
        switch (_spec.Kind)
        {
            case ScheduleKind.Step:
                return _initial * Math.Pow(_spec.Gamma ?? 0.1, epoch / (_spec.StepSize ?? 10));
            case ScheduleKind.Exponential:
                return _initial * Math.Pow(_spec.Gamma ?? 0.95, epoch);
            case ScheduleKind.Cosine:
                int warmup = _spec.WarmupEpochs ?? 0;
                if (epoch < warmup)
                {
                    return _initial * (epoch + 1) / (warmup + 1);
                }
                double progress = (double)(epoch - warmup) / Math.Max(1, _epochs - warmup);
                return minimum + (_initial - minimum) * 0.5 * (1 + Math.Cos(Math.PI * progress));
            case ScheduleKind.ReduceOnPlateau:
                return Current == 0 ? _initial : Current;
            default:
                return _initial;
        }
    }

    /// <summary>Moves to epoch <paramref name="nextEpoch"/> after an epoch whose monitored value was <paramref name="monitored"/>.</summary>
    public void Advance(int nextEpoch, double monitored, MonitorMode mode)
    {
        if (_spec.Kind != ScheduleKind.ReduceOnPlateau)
        {
            Current = RateFor(nextEpoch);
            return;
        }
        double threshold = _spec.Threshold ?? 1e-4;
        bool improved = double.IsNaN(PlateauBest) || (mode == MonitorMode.Min
            ? monitored < PlateauBest * (1 - threshold)
            : monitored > PlateauBest * (1 + threshold));
        if (improved)
        {
            PlateauBest = monitored;
            PlateauBadEpochs = 0;
            return;
        }
        PlateauBadEpochs++;
        if (PlateauBadEpochs > (_spec.Patience ?? 10))
        {
            Current = Math.Max(Current * (_spec.Factor ?? 0.1), _spec.MinLearningRate ?? 0.0);
            PlateauBadEpochs = 0;
        }
    }

    /// <summary>Restores the state saved in a checkpoint.</summary>
    public void Restore(double current, double plateauBest, int plateauBadEpochs)
    {
        Current = current;
        PlateauBest = plateauBest;
        PlateauBadEpochs = plateauBadEpochs;
    }
}
