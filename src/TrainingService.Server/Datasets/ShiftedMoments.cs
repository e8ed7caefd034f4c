namespace TrainingService.Server.Datasets;

/// <summary>
/// Running mean and variance from sums shifted by the first value: one pass, no division per value, and no
/// catastrophic cancellation when the values are large next to their spread (timestamps, say), as the textbook
/// Σx² / n − mean² has.
/// </summary>
public struct ShiftedMoments
{
    private double _shift, _sum, _squares;

    public long Count { get; private set; }

    public void Add(double value)
    {
        if (Count == 0)
        {
            _shift = value;
        }
        double shifted = value - _shift;
        _sum += shifted;
        _squares += shifted * shifted;
        Count++;
    }

    public readonly double Mean => Count > 0 ? _shift + _sum / Count : 0;

    /// <summary>Σ(x − mean)² / n.</summary>
    public readonly double PopulationVariance => Count > 0 ? Math.Max(0, (_squares - _sum * _sum / Count) / Count) : 0;

    /// <summary>Σ(x − mean)² / (n − 1).</summary>
    public readonly double SampleVariance => Count > 1 ? Math.Max(0, (_squares - _sum * _sum / Count) / (Count - 1)) : 0;
}
