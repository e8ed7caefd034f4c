namespace TrainingService.Server.Sweeps;

/// <summary>
/// A mixture of Gaussians truncated to [low, high]: one per observation plus a prior one that spans the whole range, as
/// Optuna's univariate estimator. Each observation's width is the larger gap to its neighbours, clipped to
/// [(high − low) / min(100, n + 2), high − low]: dense regions get narrow kernels, and the clip keeps one lucky point
/// from collapsing the search (Optuna's "magic clip", n + 1 kernels with the prior).
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
        // The prior: one wide component in the middle, weight one, so unexplored regions keep some probability. Its
        // mean also counts as a neighbour when the widths are set, as in Optuna.
        double[] means = [.. observations, 0.5 * (low + high)];
        double[] widths = Widths(means, low, high);
        for (int i = 0; i < n; i++)
        {
            widths[i] = Math.Clamp(widths[i], range / Math.Min(100.0, n + 2), range);
        }
        widths[n] = range;
        double[] weights = [.. TreeParzen.ObservationWeights(n), 1.0];
        double total = weights.Sum();
        return new ParzenEstimator(means, widths, weights.Select(w => w / total).ToArray(), low, high);
    }

    /// <summary>
    /// Each mean's larger gap to its sorted neighbours, the bounds counting as neighbours; the outermost two look only
    /// inwards (Optuna's consider_endpoints = false), so a point near a bound does not get a width of the whole range.
    /// </summary>
    private static double[] Widths(double[] means, double low, double high)
    {
        var order = Enumerable.Range(0, means.Length).OrderBy(i => means[i]).ToArray();
        double[] sorted = [low, .. order.Select(i => means[i]), high];
        var widths = new double[means.Length];
        for (int j = 1; j <= means.Length; j++)
        {
            double inward = j == 1 ? sorted[2] - sorted[1] : j == means.Length ? sorted[j] - sorted[j - 1] : 0;
            bool outermost = means.Length >= 2 && (j == 1 || j == means.Length);
            widths[order[j - 1]] = outermost ? inward : Math.Max(sorted[j] - sorted[j - 1], sorted[j + 1] - sorted[j]);
        }
        return widths;
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
