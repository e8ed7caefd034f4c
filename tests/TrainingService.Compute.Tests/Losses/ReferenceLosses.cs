namespace TrainingService.Compute.Tests.Losses;

/// <summary>
/// Independent double-precision re-implementations of each loss's reduced value, written from the formulas in
/// shared/reference/losses.md (not from the kernels). Finite differences of these are the gradient oracle.
/// </summary>
public static class ReferenceLosses
{
    public delegate double Reduced(double[] x);

    public static double Sigmoid(double v) => v >= 0 ? 1 / (1 + Math.Exp(-v)) : Math.Exp(v) / (1 + Math.Exp(v));

    public static double LogSigmoid(double v) => Math.Min(v, 0) - Math.Log(1 + Math.Exp(-Math.Abs(v)));

    public static double[] LogSoftmax(double[] x, int offset, int classes)
    {
        double max = double.NegativeInfinity;
        for (int c = 0; c < classes; c++)
        {
            max = Math.Max(max, x[offset + c]);
        }
        double sum = 0;
        for (int c = 0; c < classes; c++)
        {
            sum += Math.Exp(x[offset + c] - max);
        }
        var result = new double[classes];
        for (int c = 0; c < classes; c++)
        {
            result[c] = x[offset + c] - max - Math.Log(sum);
        }
        return result;
    }

    /// <summary>Mean (or sum) of an elementwise function, optionally weighted per element.</summary>
    public static Reduced Elementwise(Func<double, double, double> f, double[] y, bool sum = false, double[]? weights = null, double? divisor = null) =>
        x =>
        {
            double total = 0;
            for (int i = 0; i < x.Length; i++)
            {
                total += (weights?[i] ?? 1.0) * f(x[i], y[i]);
            }
            return sum ? total : total / (divisor ?? x.Length);
        };

    public static double Huber(double r, double delta) => Math.Abs(r) < delta ? 0.5 * r * r : delta * (Math.Abs(r) - 0.5 * delta);

    public static double SmoothL1(double r, double beta) => beta == 0 ? Math.Abs(r) : Math.Abs(r) < beta ? 0.5 * r * r / beta : Math.Abs(r) - 0.5 * beta;

    public static double Bce(double p, double y) => -(y * Math.Max(Math.Log(p), -100) + (1 - y) * Math.Max(Math.Log(1 - p), -100));

    public static double BceWithLogits(double x, double y, double posWeight) => (1 - y) * x - (1 + (posWeight - 1) * y) * LogSigmoid(x);

    public static double Hinge(double x, double y) => Math.Max(0, 1 - (y > 0 ? 1 : -1) * x);

    public static double SigmoidFocal(double x, double y, double alpha, double gamma)
    {
        double p = Sigmoid(x);
        double pt = p * y + (1 - p) * (1 - y);
        double ce = BceWithLogits(x, y, 1);
        double alphaT = alpha < 0 ? 1 : alpha * y + (1 - alpha) * (1 - y);
        return alphaT * ce * Math.Pow(1 - pt, gamma);
    }

    /// <summary>PyTorch CrossEntropyLoss with class-index targets, weights, label smoothing and ignore_index.</summary>
    public static Reduced CrossEntropy(double[] targets, int classes, double[]? weights, double smoothing, int ignoreIndex = -100, bool sum = false) =>
        x =>
        {
            double numerator = 0, denominator = 0, smoothed = 0;
            for (int r = 0; r < targets.Length; r++)
            {
                int y = (int)targets[r];
                if (y == ignoreIndex)
                {
                    continue;
                }
                var lsm = LogSoftmax(x, r * classes, classes);
                double wy = weights?[y] ?? 1;
                numerator += -wy * lsm[y];
                denominator += wy;
                for (int c = 0; c < classes; c++)
                {
                    smoothed += -(weights?[c] ?? 1) * lsm[c];
                }
            }
            double scale = sum ? 1 : 1 / denominator;
            return (1 - smoothing) * numerator * scale + smoothing / classes * smoothed * scale;
        };

    /// <summary>Cross-entropy against probability rows q, smoothed, class-weighted, divided by B.</summary>
    public static Reduced SoftCrossEntropy(double[] q, int classes, double[]? weights, double smoothing) =>
        x =>
        {
            int rows = x.Length / classes;
            double total = 0;
            for (int r = 0; r < rows; r++)
            {
                var lsm = LogSoftmax(x, r * classes, classes);
                for (int c = 0; c < classes; c++)
                {
                    double target = q[r * classes + c] * (1 - smoothing) + smoothing / classes;
                    total -= (weights?[c] ?? 1) * target * lsm[c];
                }
            }
            return total / rows;
        };

    public static Reduced Nll(double[] targets, int classes, double[]? weights, int ignoreIndex = -100) =>
        x =>
        {
            double numerator = 0, denominator = 0;
            for (int r = 0; r < targets.Length; r++)
            {
                int y = (int)targets[r];
                if (y == ignoreIndex)
                {
                    continue;
                }
                double wy = weights?[y] ?? 1;
                numerator -= wy * x[r * classes + y];
                denominator += wy;
            }
            return numerator / denominator;
        };

    public static Reduced MultiMargin(double[] targets, int classes, int p, double margin, double[]? weights) =>
        x =>
        {
            double total = 0;
            for (int r = 0; r < targets.Length; r++)
            {
                int y = (int)targets[r];
                for (int i = 0; i < classes; i++)
                {
                    if (i != y)
                    {
                        double z = Math.Max(0, margin - x[r * classes + y] + x[r * classes + i]);
                        total += (weights?[y] ?? 1) * Math.Pow(z, p) / classes;
                    }
                }
            }
            return total / targets.Length;
        };

    public static Reduced SoftmaxFocal(double[] targets, int classes, double[] alpha, double gamma) =>
        x =>
        {
            double total = 0;
            for (int r = 0; r < targets.Length; r++)
            {
                int y = (int)targets[r];
                double logP = LogSoftmax(x, r * classes, classes)[y];
                total -= alpha[y] * Math.Pow(1 - Math.Exp(logP), gamma) * logP;
            }
            return total / targets.Length;
        };

    /// <summary>KL(p ‖ softmax(x)) averaged over rows (kl_div trained on logits, batchmean).</summary>
    public static Reduced KlOnLogits(double[] p, int classes) =>
        x =>
        {
            int rows = x.Length / classes;
            double total = 0;
            for (int r = 0; r < rows; r++)
            {
                var lsm = LogSoftmax(x, r * classes, classes);
                for (int c = 0; c < classes; c++)
                {
                    double pc = p[r * classes + c];
                    total += pc > 0 ? pc * (Math.Log(pc) - lsm[c]) : 0;
                }
            }
            return total / rows;
        };
}
