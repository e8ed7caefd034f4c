namespace TrainingService.Server.Sweeps;

/// <summary>
/// A mixture of Gaussians truncated to [low, high]: one per observation plus a prior one that spans the whole range, as
/// Optuna's univariate estimator. Each observation's width is the larger gap to its neighbours (the bounds count as
/// neighbours), clipped to [(high − low) / min(100, n + 1), high − low]: dense regions get narrow kernels, and the clip
/// keeps one lucky point from collapsing the search (Optuna's "magic clip").
/// </summary>
internal sealed class ParzenEstimator
{
    private const int MaxRejections = 100;

    private readonly double[] _means;
    private readonly double[] _widths;
    private readonly double[] _weights;
    // log(σ·√(2π)·(Φ(high) − Φ(low))) per component: the truncated Gaussian's normaliser.
    private readonly double[] _logNormalisers;
    private readonly double _low;
    private readonly double _high;

    private ParzenEstimator(double[] means, double[] widths, double[] weights, double low, double high)
    {
        (_means, _widths, _weights, _low, _high) = (means, widths, weights, low, high);
        _logNormalisers = means.Select((m, k) =>
            Math.Log(widths[k] * Math.Sqrt(2 * Math.PI) * (NormalCdf((high - m) / widths[k]) - NormalCdf((low - m) / widths[k])))).ToArray();
    }

    /// <summary>Fits the mixture to <paramref name="observations"/> (oldest first, which sets their weights).</summary>
    public static ParzenEstimator Fit(IReadOnlyList<double> observations, double low, double high)
    {
        int n = observations.Count;
        double range = high - low;
        var order = Enumerable.Range(0, n).OrderBy(i => observations[i]).ToArray();
        var widths = new double[n + 1];
        for (int j = 0; j < n; j++)
        {
            double mean = observations[order[j]];
            double left = j == 0 ? low : observations[order[j - 1]];
            double right = j == n - 1 ? high : observations[order[j + 1]];
            widths[order[j]] = Math.Clamp(Math.Max(mean - left, right - mean), range / Math.Min(100.0, n + 1), range);
        }
        // The prior: one wide component in the middle, weight one, so unexplored regions keep some probability.
        widths[n] = range;
        double[] means = [.. observations, 0.5 * (low + high)];
        double[] weights = [.. TreeParzen.ObservationWeights(n), 1.0];
        double total = weights.Sum();
        return new ParzenEstimator(means, widths, weights.Select(w => w / total).ToArray(), low, high);
    }

    /// <summary>A draw: a component by weight, then its Gaussian, redrawn until it falls inside the bounds.</summary>
    public double Sample(ref TrialRandom random)
    {
        double u = random.NextDouble();
        int k = 0;
        while (k < _weights.Length - 1 && (u -= _weights[k]) >= 0)
        {
            k++;
        }
        // Every component keeps at least a third of its mass inside the bounds (|mean − bound| ≤ range, σ ≤ range),
        // so a hundred misses in a row do not happen in practice; the clamp only makes the loop finite.
        for (int attempt = 0; attempt < MaxRejections; attempt++)
        {
            double x = _means[k] + _widths[k] * random.NextGaussian();
            if (x >= _low && x <= _high)
            {
                return x;
            }
        }
        return Math.Clamp(_means[k], _low, _high);
    }

    /// <summary>log p(x), summed over the components in log space so far tails do not underflow to log 0.</summary>
    public double LogDensity(double x)
    {
        var terms = new double[_means.Length];
        for (int k = 0; k < _means.Length; k++)
        {
            double z = (x - _means[k]) / _widths[k];
            terms[k] = Math.Log(_weights[k]) - 0.5 * z * z - _logNormalisers[k];
        }
        double max = terms.Max();
        return max + Math.Log(terms.Sum(t => Math.Exp(t - max)));
    }

    /// <summary>Φ(z) through erf; .NET has no erf, so Abramowitz and Stegun's 7.1.26 (absolute error below 1.5·10⁻⁷).</summary>
    internal static double NormalCdf(double z)
    {
        double x = Math.Abs(z) / Math.Sqrt(2);
        double t = 1 / (1 + 0.3275911 * x);
        double poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
        double erf = 1 - poly * Math.Exp(-x * x);
        return 0.5 * (1 + Math.Sign(z) * erf);
    }
}
