using System.Numerics;
using System.Runtime.InteropServices;

namespace TrainingService.Bench;

/// <summary>
/// One core's share of a hand-written loss: returns Σℓ over the range and writes scale·∂ℓ/∂x. Row losses get whole
/// rows: predictions [rows × C], targets [rows].
/// </summary>
internal delegate double LossChunk(ReadOnlySpan<float> predictions, ReadOnlySpan<float> targets, Span<float> gradient,
    double scale);

/// <summary>
/// The C# baselines: the catalogue's formulas (defaults as bound by the bench) written the way one would by hand,
/// in double like the kernels, with Vector&lt;double&gt; where the math is plain arithmetic and scalar code where it
/// needs exp/log. Independent of the kernel structs on purpose, so the loss check compares two implementations.
/// </summary>
internal static class LossBaselines
{
    private const double Ln2 = 0.69314718055994530942;

    /// <summary>ℓ and ∂ℓ/∂x of one element.</summary>
    public interface IScalarLoss
    {
        static abstract double Evaluate(double x, double y, out double derivative);
    }

    /// <summary>ℓ and ∂ℓ/∂x of Vector&lt;double&gt;.Count elements.</summary>
    public interface IVectorLoss : IScalarLoss
    {
        static abstract Vector<double> Evaluate(Vector<double> x, Vector<double> y, out Vector<double> derivative);
    }

    public static double Scalar<TLoss>(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> gradient, double scale)
        where TLoss : IScalarLoss
    {
        double sum = 0.0;
        for (int i = 0; i < x.Length; i++)
        {
            sum += TLoss.Evaluate(x[i], y[i], out double derivative);
            gradient[i] = (float)(scale * derivative);
        }
        return sum;
    }

    /// <summary>Loads Vector&lt;float&gt;, widens to two Vector&lt;double&gt; halves, narrows the gradient back.</summary>
    public static double Simd<TLoss>(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> gradient, double scale)
        where TLoss : IVectorLoss
    {
        var xs = MemoryMarshal.Cast<float, Vector<float>>(x);
        var ys = MemoryMarshal.Cast<float, Vector<float>>(y);
        var gs = MemoryMarshal.Cast<float, Vector<float>>(gradient);
        var sum = Vector<double>.Zero;
        var factor = new Vector<double>(scale);
        for (int v = 0; v < xs.Length; v++)
        {
            Vector.Widen(xs[v], out var xLow, out var xHigh);
            Vector.Widen(ys[v], out var yLow, out var yHigh);
            sum += TLoss.Evaluate(xLow, yLow, out var dLow) + TLoss.Evaluate(xHigh, yHigh, out var dHigh);
            gs[v] = Vector.Narrow(factor * dLow, factor * dHigh);
        }
        int done = xs.Length * Vector<float>.Count;
        return Vector.Sum(sum) + Scalar<TLoss>(x[done..], y[done..], gradient[done..], scale);
    }

    /// <summary>Reads every value (the memory floor's target pass); the sum only keeps the JIT from dropping the reads.</summary>
    public static float ReadAll(ReadOnlySpan<float> values)
    {
        var vectors = MemoryMarshal.Cast<float, Vector<float>>(values);
        var sum = Vector<float>.Zero;
        foreach (var v in vectors)
        {
            sum += v;
        }
        float total = Vector.Sum(sum);
        foreach (float v in values[(vectors.Length * Vector<float>.Count)..])
        {
            total += v;
        }
        return total;
    }

    public readonly struct Mse : IVectorLoss
    {
        public static double Evaluate(double x, double y, out double derivative)
        {
            double r = x - y;
            derivative = 2.0 * r;
            return r * r;
        }

        public static Vector<double> Evaluate(Vector<double> x, Vector<double> y, out Vector<double> derivative)
        {
            var r = x - y;
            derivative = r + r;
            return r * r;
        }
    }

    public readonly struct L1 : IVectorLoss
    {
        public static double Evaluate(double x, double y, out double derivative)
        {
            double r = x - y;
            derivative = r > 0 ? 1.0 : r < 0 ? -1.0 : 0.0;
            return Math.Abs(r);
        }

        public static Vector<double> Evaluate(Vector<double> x, Vector<double> y, out Vector<double> derivative)
        {
            var r = x - y;
            var zero = Vector<double>.Zero;
            derivative = Vector.ConditionalSelect(Vector.GreaterThan(r, zero), Vector<double>.One, zero)
                - Vector.ConditionalSelect(Vector.LessThan(r, zero), Vector<double>.One, zero);
            return Vector.Abs(r);
        }
    }

    /// <summary>δ = 1.</summary>
    public readonly struct Huber : IVectorLoss
    {
        private const double Delta = 1.0;

        public static double Evaluate(double x, double y, out double derivative)
        {
            double r = x - y, z = Math.Abs(r);
            derivative = Math.Clamp(r, -Delta, Delta);
            return z < Delta ? 0.5 * z * z : Delta * (z - 0.5 * Delta);
        }

        public static Vector<double> Evaluate(Vector<double> x, Vector<double> y, out Vector<double> derivative)
        {
            var r = x - y;
            var z = Vector.Abs(r);
            var delta = new Vector<double>(Delta);
            derivative = Vector.Min(Vector.Max(r, -delta), delta);
            return Vector.ConditionalSelect(Vector.LessThan(z, delta), 0.5 * z * z, delta * (z - 0.5 * delta));
        }
    }

    /// <summary>β = 1.</summary>
    public readonly struct SmoothL1 : IVectorLoss
    {
        private const double Beta = 1.0;

        public static double Evaluate(double x, double y, out double derivative)
        {
            double r = x - y, z = Math.Abs(r);
            derivative = Math.Clamp(r / Beta, -1.0, 1.0);
            return z < Beta ? 0.5 * z * z / Beta : z - 0.5 * Beta;
        }

        public static Vector<double> Evaluate(Vector<double> x, Vector<double> y, out Vector<double> derivative)
        {
            var r = x - y;
            var z = Vector.Abs(r);
            var beta = new Vector<double>(Beta);
            derivative = Vector.Min(Vector.Max(r / beta, -Vector<double>.One), Vector<double>.One);
            return Vector.ConditionalSelect(Vector.LessThan(z, beta), 0.5 * z * z / beta, z - 0.5 * beta);
        }
    }

    /// <summary>log cosh r = |r| + log(1 + e^(−2|r|)) − log 2; ∂ = tanh r.</summary>
    public readonly struct LogCosh : IScalarLoss
    {
        public static double Evaluate(double x, double y, out double derivative)
        {
            double r = x - y, a = Math.Abs(r);
            derivative = Math.Tanh(r);
            return a + double.LogP1(Math.Exp(-2.0 * a)) - Ln2;
        }
    }

    /// <summary>log_input = true, full = false: ℓ = eˣ − y·x.</summary>
    public readonly struct PoissonLogInput : IScalarLoss
    {
        public static double Evaluate(double x, double y, out double derivative)
        {
            double e = Math.Exp(x);
            derivative = e - y;
            return e - y * x;
        }
    }

    /// <summary>var = 1, eps = 1e−6, full = false: ℓ = ½(log v + r²/v).</summary>
    public readonly struct GaussianFixedVariance : IVectorLoss
    {
        private static readonly double Variance = Math.Max(1.0, 1e-6);
        private static readonly double HalfLogVariance = 0.5 * Math.Log(Variance);

        public static double Evaluate(double x, double y, out double derivative)
        {
            double r = x - y;
            derivative = r / Variance;
            return HalfLogVariance + 0.5 * r * r / Variance;
        }

        public static Vector<double> Evaluate(Vector<double> x, Vector<double> y, out Vector<double> derivative)
        {
            var r = x - y;
            var variance = new Vector<double>(Variance);
            derivative = r / variance;
            return new Vector<double>(HalfLogVariance) + 0.5 * r * r / variance;
        }
    }

    /// <summary>Probabilities p: ℓ = −[y·max(log p, −100) + (1 − y)·max(log(1 − p), −100)].</summary>
    public readonly struct Bce : IScalarLoss
    {
        public static double Evaluate(double p, double y, out double derivative)
        {
            derivative = (p - y) / Math.Max(p * (1.0 - p), 1e-12);
            return -(y * Math.Max(Math.Log(p), -100.0) + (1.0 - y) * Math.Max(double.LogP1(-p), -100.0));
        }
    }

    /// <summary>pos_weight = 1: ℓ = max(x, 0) − x·y + log(1 + e^−|x|); ∂ = σ(x) − y.</summary>
    public readonly struct BceWithLogits : IScalarLoss
    {
        public static double Evaluate(double x, double y, out double derivative)
        {
            double e = Math.Exp(-Math.Abs(x));
            derivative = Sigmoid(x, e) - y;
            return Math.Max(x, 0.0) - x * y + double.LogP1(e);
        }
    }

    /// <summary>Hinge with 0/1 labels read as ∓1.</summary>
    public readonly struct Hinge : IVectorLoss
    {
        public static double Evaluate(double x, double y, out double derivative)
        {
            double s = y > 0 ? 1.0 : -1.0, m = 1.0 - s * x;
            derivative = m > 0 ? -s : 0.0;
            return Math.Max(m, 0.0);
        }

        public static Vector<double> Evaluate(Vector<double> x, Vector<double> y, out Vector<double> derivative)
        {
            var zero = Vector<double>.Zero;
            var s = Vector.ConditionalSelect(Vector.GreaterThan(y, zero), Vector<double>.One, -Vector<double>.One);
            var m = Vector<double>.One - s * x;
            derivative = Vector.ConditionalSelect(Vector.GreaterThan(m, zero), -s, zero);
            return Vector.Max(m, zero);
        }
    }

    public readonly struct SquaredHinge : IVectorLoss
    {
        public static double Evaluate(double x, double y, out double derivative)
        {
            double s = y > 0 ? 1.0 : -1.0, m = Math.Max(1.0 - s * x, 0.0);
            derivative = -2.0 * s * m;
            return m * m;
        }

        public static Vector<double> Evaluate(Vector<double> x, Vector<double> y, out Vector<double> derivative)
        {
            var zero = Vector<double>.Zero;
            var s = Vector.ConditionalSelect(Vector.GreaterThan(y, zero), Vector<double>.One, -Vector<double>.One);
            var m = Vector.Max(Vector<double>.One - s * x, zero);
            derivative = -2.0 * s * m;
            return m * m;
        }
    }

    /// <summary>torchvision sigmoid focal loss, α = 0.25, γ = 2: ℓ = α_t·ce·(1 − p_t)².</summary>
    public readonly struct SigmoidFocal : IScalarLoss
    {
        private const double Alpha = 0.25, Gamma = 2.0;

        public static double Evaluate(double x, double y, out double derivative)
        {
            double e = Math.Exp(-Math.Abs(x));
            double p = Sigmoid(x, e);
            double ce = Math.Max(x, 0.0) - x * y + double.LogP1(e);
            double miss = p + y - 2.0 * p * y; // 1 − p_t
            double alphaT = Alpha * y + (1.0 - Alpha) * (1.0 - y);
            derivative = alphaT * (miss * miss * (p - y) - Gamma * miss * p * (1.0 - p) * (2.0 * y - 1.0) * ce);
            return alphaT * ce * miss * miss;
        }
    }

    /// <summary>No class weights, no label smoothing: ℓ = lse(x) − x_y; ∂ = softmax − onehot.</summary>
    public static double CrossEntropy(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> gradient, double scale, int classes)
    {
        Span<double> exps = stackalloc double[classes];
        double sum = 0.0;
        for (int row = 0; row < y.Length; row++)
        {
            var logits = x.Slice(row * classes, classes);
            int target = (int)y[row];
            double logSumExp = Softmax(logits, exps, out double max);
            sum += logSumExp - (logits[target] - max);
            var g = gradient.Slice(row * classes, classes);
            for (int c = 0; c < classes; c++)
            {
                g[c] = (float)(scale * (exps[c] - (c == target ? 1.0 : 0.0)));
            }
        }
        return sum;
    }

    /// <summary>p = 1, margin = 1, no weights: ℓ = (1/C)·Σ_{i≠y} max(0, 1 − x_y + x_i).</summary>
    public static double MultiMargin(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> gradient, double scale, int classes)
    {
        double sum = 0.0, step = scale / classes;
        for (int row = 0; row < y.Length; row++)
        {
            var scores = x.Slice(row * classes, classes);
            var g = gradient.Slice(row * classes, classes);
            int target = (int)y[row];
            double xy = scores[target], loss = 0.0, gradientY = 0.0;
            for (int i = 0; i < classes; i++)
            {
                double z = 1.0 - xy + scores[i];
                bool active = i != target && z > 0.0;
                loss += active ? z : 0.0;
                gradientY -= active ? step : 0.0;
                g[i] = active ? (float)step : 0f;
            }
            g[target] = (float)gradientY;
            sum += loss / classes;
        }
        return sum;
    }

    /// <summary>α = 0.25 for every class, γ = 2: ℓ = −α·(1 − p_y)²·log p_y, p = softmax(x).</summary>
    public static double SoftmaxFocal(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> gradient, double scale, int classes)
    {
        const double Alpha = 0.25, Gamma = 2.0;
        Span<double> probabilities = stackalloc double[classes];
        double sum = 0.0;
        for (int row = 0; row < y.Length; row++)
        {
            var logits = x.Slice(row * classes, classes);
            int target = (int)y[row];
            double logSumExp = Softmax(logits, probabilities, out double max);
            double logPy = logits[target] - max - logSumExp, miss = 1.0 - probabilities[target];
            sum += -Alpha * miss * miss * logPy;
            double f = scale * Alpha * (Gamma * miss * probabilities[target] * logPy - miss * miss);
            var g = gradient.Slice(row * classes, classes);
            for (int c = 0; c < classes; c++)
            {
                g[c] = (float)(f * ((c == target ? 1.0 : 0.0) - probabilities[c]));
            }
        }
        return sum;
    }

    /// <summary>Log-probability inputs, no weights: ℓ = −x_y; ∂ = −1 at y, 0 elsewhere.</summary>
    public static double Nll(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> gradient, double scale, int classes)
    {
        double sum = 0.0;
        gradient.Clear();
        for (int row = 0; row < y.Length; row++)
        {
            int target = (int)y[row];
            sum -= x[row * classes + target];
            gradient[row * classes + target] = (float)-scale;
        }
        return sum;
    }

    /// <summary>Writes softmax(logits) into <paramref name="probabilities"/>; returns log Σ exp(x − max).</summary>
    private static double Softmax(ReadOnlySpan<float> logits, Span<double> probabilities, out double max)
    {
        max = double.NegativeInfinity;
        foreach (float v in logits)
        {
            max = Math.Max(max, v);
        }
        double total = 0.0;
        for (int c = 0; c < logits.Length; c++)
        {
            probabilities[c] = Math.Exp(logits[c] - max);
            total += probabilities[c];
        }
        for (int c = 0; c < logits.Length; c++)
        {
            probabilities[c] /= total;
        }
        return Math.Log(total);
    }

    private static double Sigmoid(double x, double expMinusAbs) =>
        x >= 0.0 ? 1.0 / (1.0 + expMinusAbs) : expMinusAbs / (1.0 + expMinusAbs);
}
