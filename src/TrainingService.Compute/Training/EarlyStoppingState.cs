using TrainingService.Compute.Schedules;

namespace TrainingService.Compute.Training;

/// <summary>Early-stopping bookkeeping (Keras semantics): best value, its epoch and weights, epochs waited.</summary>
internal sealed class EarlyStoppingState(EarlyStoppingSpec? spec)
{
    public double Best { get; private set; } = double.NaN;
    public int BestEpoch { get; private set; }
    public int Wait { get; private set; }
    public float[]? BestParameters { get; private set; }

    public int? BestEpochOrNull => BestEpoch > 0 ? BestEpoch : null;
    public double? BestValueOrNull => BestEpoch > 0 ? Best : null;

    /// <summary>Records epoch <paramref name="epoch"/>'s monitored value; true when training should stop.</summary>
    public bool Update(int epoch, double value, float[] parameters)
    {
        if (spec is null || double.IsNaN(value))
        {
            return false;
        }
        bool improved = double.IsNaN(Best) || (spec.EffectiveMode == MonitorMode.Min
            ? value < Best - spec.MinDelta
            : value > Best + spec.MinDelta);
        if (improved)
        {
            Best = value;
            BestEpoch = epoch;
            Wait = 0;
            if (spec.RestoreBest)
            {
                BestParameters = (float[])parameters.Clone();
            }
            return false;
        }
        Wait++;
        return Wait >= spec.Patience;
    }

    /// <summary>The model to keep: the best epoch's parameters when restoring, else <paramref name="last"/>.</summary>
    public float[] FinalParameters(float[] last) => spec?.RestoreBest == true && BestParameters is not null ? BestParameters : last;

    public void Restore(TrainingCheckpoint checkpoint)
    {
        Best = checkpoint.BestValue;
        BestEpoch = checkpoint.BestEpoch;
        Wait = checkpoint.Wait;
        BestParameters = checkpoint.BestParameters;
    }
}
