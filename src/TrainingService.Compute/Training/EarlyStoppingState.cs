using TrainingService.Compute.Schedules;

namespace TrainingService.Compute.Training;

/// <summary>
/// Best-epoch bookkeeping (Keras semantics): best monitored value, its epoch and weights, epochs waited. It serves early
/// stopping, and, without early stopping, <see cref="TrainerSpec.Keep"/>'s best model (then it never asks to stop).
/// </summary>
internal sealed class EarlyStoppingState
{
    private readonly EarlyStoppingSpec? _stopping;
    private readonly MonitorMode _mode;
    private readonly double _minDelta;
    private readonly bool _restoreBest;

    public EarlyStoppingState(EarlyStoppingSpec? stopping, KeepBest? keep = null)
    {
        _stopping = stopping;
        Monitor = stopping?.Monitor ?? keep?.Monitor;
        _mode = stopping?.EffectiveMode ?? keep?.EffectiveMode ?? MonitorMode.Min;
        _minDelta = stopping?.MinDelta ?? 0;
        _restoreBest = stopping?.RestoreBest ?? keep is not null;
    }

    /// <summary>The monitored quantity, or null when nothing is tracked.</summary>
    public string? Monitor { get; }
    public double Best { get; private set; } = double.NaN;
    public int BestEpoch { get; private set; }
    public int Wait { get; private set; }
    public float[]? BestParameters { get; private set; }

    /// <summary>Early stopping's best epoch and value; null when early stopping is off.</summary>
    public int? BestEpochOrNull => _stopping is not null && BestEpoch > 0 ? BestEpoch : null;
    public double? BestValueOrNull => _stopping is not null && BestEpoch > 0 ? Best : null;

    /// <summary>Records epoch <paramref name="epoch"/>'s monitored value; true when training should stop.</summary>
    public bool Update(int epoch, double value, float[] parameters)
    {
        if (Monitor is null || double.IsNaN(value))
        {
            return false;
        }
        bool improved = double.IsNaN(Best) || (_mode == MonitorMode.Min ? value < Best - _minDelta : value > Best + _minDelta);
        if (improved)
        {
            Best = value;
            BestEpoch = epoch;
            Wait = 0;
            if (_restoreBest)
            {
                BestParameters = (float[])parameters.Clone();
            }
            return false;
        }
        Wait++;
        return _stopping is not null && Wait >= _stopping.Patience;
    }

    /// <summary>The model to keep: the best epoch's parameters when restoring, else <paramref name="last"/>.</summary>
    public float[] FinalParameters(float[] last) => _restoreBest && BestParameters is not null ? BestParameters : last;

    /// <summary>The epoch <see cref="FinalParameters"/> comes from, given the last completed one.</summary>
    public int FinalEpoch(int last) => _restoreBest && BestParameters is not null ? BestEpoch : last;

    public void Restore(TrainingCheckpoint checkpoint)
    {
        Best = checkpoint.BestValue;
        BestEpoch = checkpoint.BestEpoch;
        Wait = checkpoint.Wait;
        BestParameters = checkpoint.BestParameters;
    }
}
