using ILGPU;

namespace TrainingService.Compute.Losses;

// Losses over a row of C outputs. Each works in three passes over the row (max, log-sum-exp, output)
// so no per-row scratch memory is needed inside a kernel. w_c are class weights (1 when none given),
// s = softmax(x), lsm = log_softmax(x) = x − m − log Σ exp(x − m).

/// <summary>Row-wise log-softmax pieces: the row maximum and log Σ exp(x − max).</summary>
internal static class RowSoftmax
{
    public static double LogSumExp(ArrayView<float> x, int offset, int classes, out double max)
    {
        max = double.NegativeInfinity;
        for (int c = 0; c < classes; c++)
        {
            max = Math.Max(max, x[offset + c]);
        }
        double sum = 0.0;
        for (int c = 0; c < classes; c++)
        {
            sum += Math.Exp(x[offset + c] - max);
        }
        return Math.Log(sum);
    }

    public static double Weight(ArrayView<float> classWeights, int c) => classWeights.Length > 0 ? classWeights[c] : 1.0;

    public static void Write(ArrayView<float> grad, int index, double value, bool accumulate) =>
        grad[index] = accumulate ? (float)(grad[index] + value) : (float)value;
}

/// <summary>
/// Cross-entropy on logits with class-index targets (PyTorch <c>CrossEntropyLoss</c>), including PyTorch's
/// weighted label smoothing: ℓ_n = (1 − ε)·w[y]·(−lsm_y) + (ε/C)·Σ_c w_c·(−lsm_c);
/// ∂ℓ_n/∂x_k = (1 − ε)·w[y]·(s_k − δ_ky) + (ε/C)·(s_k·Σ_c w_c − w_k). Rows whose target equals
/// <see cref="IgnoreIndex"/> contribute nothing. The mean divides by Σ w[y] over kept rows.
/// </summary>
public readonly struct CrossEntropyLoss(double labelSmoothing, int ignoreIndex) : IRowLoss
{
    /// <summary>ε in [0, 1).</summary>
    public readonly double LabelSmoothing = labelSmoothing;
    /// <summary>Target value whose rows are skipped (PyTorch default −100).</summary>
    public readonly int IgnoreIndex = ignoreIndex;

    /// <inheritdoc />
    public double Row(ArrayView<float> x, ArrayView<float> targets, int row, int classes,
        ArrayView<float> classWeights, ArrayView<float> grad, double scale, bool accumulate)
    {
        int offset = row * classes;
        int y = (int)targets[row];
        if (y == IgnoreIndex)
        {
            if (grad.Length > 0 && !accumulate)
            {
                for (int c = 0; c < classes; c++)
                {
                    grad[offset + c] = 0f;
                }
            }
            return 0.0;
        }
        double lse = RowSoftmax.LogSumExp(x, offset, classes, out double max);
        double wy = RowSoftmax.Weight(classWeights, y);
        double smooth = LabelSmoothing / classes;
        double loss = (1.0 - LabelSmoothing) * wy * -(x[offset + y] - max - lse);
        double weightSum = 0.0;
        if (LabelSmoothing > 0.0)
        {
            double smoothed = 0.0;
            for (int c = 0; c < classes; c++)
            {
                double wc = RowSoftmax.Weight(classWeights, c);
                weightSum += wc;
                smoothed += wc * -(x[offset + c] - max - lse);
            }
            loss += smooth * smoothed;
        }
        if (grad.Length > 0)
        {
            for (int c = 0; c < classes; c++)
            {
                double s = Math.Exp(x[offset + c] - max - lse);
                double g = (1.0 - LabelSmoothing) * wy * (s - (c == y ? 1.0 : 0.0));
                if (LabelSmoothing > 0.0)
                {
                    g += smooth * (s * weightSum - RowSoftmax.Weight(classWeights, c));
                }
                RowSoftmax.Write(grad, offset + c, scale * g, accumulate);
            }
        }
        return loss;
    }
}

/// <summary>
/// Cross-entropy on logits with probability targets q (PyTorch <c>CrossEntropyLoss</c> when the target has the
/// input's shape): q ← (1 − ε)q + ε/C, ℓ_n = −Σ_c w_c·q_c·lsm_c, ∂ℓ_n/∂x_k = s_k·Σ_c w_c q_c − w_k q_k.
/// The mean divides by the number of rows B (class weights do not enter the denominator).
/// </summary>
public readonly struct SoftCrossEntropyLoss(double labelSmoothing) : IRowLoss
{
    /// <summary>ε in [0, 1).</summary>
    public readonly double LabelSmoothing = labelSmoothing;

    /// <inheritdoc />
    public double Row(ArrayView<float> x, ArrayView<float> targets, int row, int classes,
        ArrayView<float> classWeights, ArrayView<float> grad, double scale, bool accumulate)
    {
        int offset = row * classes;
        double lse = RowSoftmax.LogSumExp(x, offset, classes, out double max);
        double loss = 0.0, weightedMass = 0.0;
        for (int c = 0; c < classes; c++)
        {
            double q = Smoothed(targets[offset + c], classes);
            double wq = RowSoftmax.Weight(classWeights, c) * q;
            weightedMass += wq;
            loss -= wq * (x[offset + c] - max - lse);
        }
        if (grad.Length > 0)
        {
            for (int c = 0; c < classes; c++)
            {
                double s = Math.Exp(x[offset + c] - max - lse);
                double wq = RowSoftmax.Weight(classWeights, c) * Smoothed(targets[offset + c], classes);
                RowSoftmax.Write(grad, offset + c, scale * (s * weightedMass - wq), accumulate);
            }
        }
        return loss;
    }

    private double Smoothed(double q, int classes) => q * (1.0 - LabelSmoothing) + LabelSmoothing / classes;
}

/// <summary>
/// Negative log-likelihood on log-probabilities (PyTorch <c>NLLLoss</c>): ℓ_n = −w[y]·x_y,
/// ∂ℓ_n/∂x_y = −w[y]; the mean divides by Σ w[y] over rows not equal to <see cref="IgnoreIndex"/>.
/// </summary>
public readonly struct NllLoss(int ignoreIndex) : IRowLoss
{
    /// <summary>Target value whose rows are skipped.</summary>
    public readonly int IgnoreIndex = ignoreIndex;

    /// <inheritdoc />
    public double Row(ArrayView<float> x, ArrayView<float> targets, int row, int classes,
        ArrayView<float> classWeights, ArrayView<float> grad, double scale, bool accumulate)
    {
        int offset = row * classes;
        int y = (int)targets[row];
        bool kept = y != IgnoreIndex;
        double wy = kept ? RowSoftmax.Weight(classWeights, y) : 0.0;
        if (grad.Length > 0)
        {
            for (int c = 0; c < classes; c++)
            {
                RowSoftmax.Write(grad, offset + c, kept && c == y ? -scale * wy : 0.0, accumulate);
            }
        }
        return kept ? -wy * x[offset + y] : 0.0;
    }
}

/// <summary>
/// Multi-class margin loss (PyTorch <c>MultiMarginLoss</c>, Weston–Watkins): with z_i = margin − x_y + x_i,
/// ℓ_n = (1/C)·Σ_{i≠y} w[y]·max(0, z_i)^p, p ∈ {1, 2}; the gradient uses strict z &gt; 0 (0 at the margin).
/// The mean divides by B.
/// </summary>
public readonly struct MultiMarginLoss(int p, double margin) : IRowLoss
{
    /// <summary>Exponent, 1 or 2.</summary>
    public readonly int P = p;
    /// <summary>Margin (default 1).</summary>
    public readonly double Margin = margin;

    /// <inheritdoc />
    public double Row(ArrayView<float> x, ArrayView<float> targets, int row, int classes,
        ArrayView<float> classWeights, ArrayView<float> grad, double scale, bool accumulate)
    {
        int offset = row * classes;
        int y = (int)targets[row];
        double wy = RowSoftmax.Weight(classWeights, y);
        double xy = x[offset + y];
        double loss = 0.0, gradY = 0.0;
        for (int i = 0; i < classes; i++)
        {
            if (i == y)
            {
                continue;
            }
            double z = Margin - xy + x[offset + i];
            double h = 0.0;
            if (z > 0.0)
            {
                loss += P == 1 ? z : z * z;
                h = wy * (P == 1 ? 1.0 : 2.0 * z) / classes;
                gradY -= h;
            }
            if (grad.Length > 0)
            {
                RowSoftmax.Write(grad, offset + i, scale * h, accumulate);
            }
        }
        if (grad.Length > 0)
        {
            RowSoftmax.Write(grad, offset + y, scale * gradY, accumulate);
        }
        return wy * loss / classes;
    }
}

/// <summary>
/// Softmax focal loss on logits with class-index targets (Keras <c>CategoricalFocalCrossentropy</c> on logits,
/// computed from log-softmax): ℓ_n = −α_y·(1 − p_y)^γ·log p_y with p = softmax(x);
/// ∂ℓ_n/∂x_k = α_y·[γ(1 − p_y)^(γ−1)·p_y·log p_y − (1 − p_y)^γ]·(δ_ky − p_k). α comes from the class-weight
/// input (per class). The mean divides by B.
/// </summary>
public readonly struct SoftmaxFocalLoss(double gamma) : IRowLoss
{
    /// <summary>Focusing exponent γ ≥ 0.</summary>
    public readonly double Gamma = gamma;

    /// <inheritdoc />
    public double Row(ArrayView<float> x, ArrayView<float> targets, int row, int classes,
        ArrayView<float> classWeights, ArrayView<float> grad, double scale, bool accumulate)
    {
        int offset = row * classes;
        int y = (int)targets[row];
        double lse = RowSoftmax.LogSumExp(x, offset, classes, out double max);
        double logPy = x[offset + y] - max - lse;
        double py = Math.Exp(logPy);
        double alpha = RowSoftmax.Weight(classWeights, y);
        double oneMinus = 1.0 - py;
        double focal = StableMath.Pow(oneMinus, Gamma);
        if (grad.Length > 0)
        {
            double focus = oneMinus > 0.0 && Gamma != 0.0
                ? Gamma * StableMath.Pow(oneMinus, Gamma - 1.0) * py * logPy
                : 0.0;
            double f = alpha * (focus - focal);
            for (int c = 0; c < classes; c++)
            {
                double s = Math.Exp(x[offset + c] - max - lse);
                RowSoftmax.Write(grad, offset + c, scale * f * ((c == y ? 1.0 : 0.0) - s), accumulate);
            }
        }
        return -alpha * focal * logPy;
    }
}

/// <summary>
/// KL divergence of probability targets p from softmax(x), taken on logits (what <c>kl_div</c> trains with):
/// ℓ_n = Σ_c p_c·(log p_c − lsm_c) (0·log 0 = 0), ∂ℓ_n/∂x_k = s_k·Σ_c p_c − p_k.
/// Equals <see cref="KlDivLoss"/> applied to log_softmax(x).
/// </summary>
public readonly struct KlDivOnLogitsLoss : IRowLoss
{
    /// <inheritdoc />
    public double Row(ArrayView<float> x, ArrayView<float> targets, int row, int classes,
        ArrayView<float> classWeights, ArrayView<float> grad, double scale, bool accumulate)
    {
        int offset = row * classes;
        double lse = RowSoftmax.LogSumExp(x, offset, classes, out double max);
        double loss = 0.0, mass = 0.0;
        for (int c = 0; c < classes; c++)
        {
            double p = targets[offset + c];
            mass += p;
            if (p > 0.0)
            {
                loss += p * (Math.Log(p) - (x[offset + c] - max - lse));
            }
        }
        if (grad.Length > 0)
        {
            for (int c = 0; c < classes; c++)
            {
                double s = Math.Exp(x[offset + c] - max - lse);
                RowSoftmax.Write(grad, offset + c, scale * (s * mass - targets[offset + c]), accumulate);
            }
        }
        return loss;
    }
}
