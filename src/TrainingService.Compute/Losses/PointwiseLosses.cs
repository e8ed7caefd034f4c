namespace TrainingService.Compute.Losses;

// Elementwise losses. Formulas, kink conventions and clamps follow PyTorch (see docs/losses.md);
// each struct's summary gives ℓ and ∂ℓ/∂x with r = x − y. Kinks are written with Min, Max, Ceiling and 0/1 integer
// selects rather than if/else: on the CPU accelerator a data-dependent branch mispredicts on about every other
// element of real data and cost these cheap losses 4–5× their speed.

/// <summary>Squared error: ℓ = r², ∂ℓ/∂x = 2r (PyTorch <c>MSELoss</c>).</summary>
public readonly struct MseLoss : IPointwiseLoss
{
    /// <inheritdoc />
    public double Evaluate(double x, double y, double aux, out double derivative)
    {
        double r = x - y;
        derivative = 2.0 * r;
        return r * r;
    }
}

/// <summary>Absolute error: ℓ = |r|, ∂ℓ/∂x = sgn(r), 0 at r = 0 (PyTorch <c>L1Loss</c>).</summary>
public readonly struct L1Loss : IPointwiseLoss
{
    /// <inheritdoc />
    public double Evaluate(double x, double y, double aux, out double derivative)
    {
        double r = x - y;
        derivative = Sign(r);
        return Math.Abs(r);
    }

    internal static double Sign(double r) => (r > 0.0 ? 1 : 0) - (r < 0.0 ? 1 : 0);
}

/// <summary>
/// Huber: ℓ = ½r² for |r| &lt; δ, else δ(|r| − ½δ); ∂ℓ/∂x = clamp(r, −δ, δ) (PyTorch <c>HuberLoss</c>).
/// </summary>
public readonly struct HuberLoss(double delta) : IPointwiseLoss
{
    /// <summary>δ &gt; 0: where the quadratic part ends.</summary>
    public readonly double Delta = delta;

    /// <inheritdoc />
    public double Evaluate(double x, double y, double aux, out double derivative)
    {
        // With m = min(|r|, δ): m(|r| − ½m) is ½r² below δ and δ(|r| − ½δ) above it.
        double r = x - y, z = Math.Abs(r), m = Math.Min(z, Delta);
        derivative = Math.Min(Math.Max(r, -Delta), Delta);
        return m * (z - 0.5 * m);
    }
}

/// <summary>
/// Smooth L1: ℓ = ½r²/β for |r| &lt; β, else |r| − ½β; ∂ℓ/∂x = clamp(r/β, −1, 1); β = 0 is L1
/// (PyTorch <c>SmoothL1Loss</c>). Equals Huber(δ = β) / β.
/// </summary>
public readonly struct SmoothL1Loss(double beta) : IPointwiseLoss
{
    /// <summary>β ≥ 0.</summary>
    public readonly double Beta = beta;

    /// <inheritdoc />
    public double Evaluate(double x, double y, double aux, out double derivative)
    {
        double r = x - y, z = Math.Abs(r);
        if (Beta == 0.0)
        {
            derivative = L1Loss.Sign(r);
            return z;
        }
        double m = Math.Min(z, Beta); // as for Huber(δ = β), then / β
        derivative = Math.Min(Math.Max(r / Beta, -1.0), 1.0);
        return m * (z - 0.5 * m) / Beta;
    }
}

/// <summary>
/// Log-cosh: ℓ = log cosh(r), computed as r + softplus(−2r) − log 2 (no overflow);
/// ∂ℓ/∂x = tanh(r) (Keras <c>LogCosh</c>; PyTorch has none).
/// </summary>
public readonly struct LogCoshLoss : IPointwiseLoss
{
    /// <inheritdoc />
    public double Evaluate(double x, double y, double aux, out double derivative)
    {
        double r = x - y;
        derivative = Math.Tanh(r);
        return r + StableMath.Softplus(-2.0 * r) - StableMath.Ln2;
    }
}

/// <summary>
/// Poisson negative log-likelihood (PyTorch <c>PoissonNLLLoss</c>). With <c>logInput</c>: ℓ = eˣ − y·x,
/// ∂ℓ/∂x = eˣ − y; otherwise ℓ = x − y·log(x + ε), ∂ℓ/∂x = 1 − y/(x + ε). <c>full</c> adds Stirling's
/// term y·log y − y + ½log(2πy) where y &gt; 1 (no gradient).
/// </summary>
public readonly struct PoissonNllLoss(bool logInput, bool full, double eps) : IPointwiseLoss
{
    // Flags are ints: ILGPU kernel parameters must be blittable, and bool is not.
    private readonly int _logInput = logInput ? 1 : 0;
    private readonly int _full = full ? 1 : 0;

    /// <summary>Added inside the log when inputs are rates.</summary>
    public readonly double Eps = eps;

    /// <summary>Inputs are log-rates (true, the default) or rates.</summary>
    public bool LogInput => _logInput != 0;

    /// <summary>Add the Stirling approximation term.</summary>
    public bool Full => _full != 0;

    /// <inheritdoc />
    public double Evaluate(double x, double y, double aux, out double derivative)
    {
        double loss;
        if (LogInput)
        {
            double rate = Math.Exp(x);
            loss = rate - y * x;
            derivative = rate - y;
        }
        else
        {
            loss = x - y * Math.Log(x + Eps);
            derivative = 1.0 - y / (x + Eps);
        }
        if (Full && y > 1.0)
        {
            loss += y * Math.Log(y) - y + 0.5 * Math.Log(2.0 * Math.PI * y);
        }
        return loss;
    }
}

/// <summary>
/// Gaussian negative log-likelihood (PyTorch <c>GaussianNLLLoss</c>): v = max(var, ε),
/// ℓ = ½(log v + r²/v) (+ ½log 2π when <c>full</c>), ∂ℓ/∂x = r/v. The variance is the per-element
/// side input when one is given (the kernel passes NaN otherwise), else the fixed <see cref="Variance"/>.
/// </summary>
public readonly struct GaussianNllLoss(double variance, bool full, double eps) : IPointwiseLoss
{
    private readonly int _full = full ? 1 : 0;

    /// <summary>The variance used when no per-element variance is given.</summary>
    public readonly double Variance = variance;

    /// <summary>Lower clamp of the variance.</summary>
    public readonly double Eps = eps;

    // log max(var, ε) of the fixed variance, taken once rather than per element.
    private readonly double _logFixedVariance = Math.Log(Math.Max(variance, eps));

    /// <summary>Add the constant ½log 2π.</summary>
    public bool Full => _full != 0;

    /// <inheritdoc />
    public double Evaluate(double x, double y, double aux, out double derivative)
    {
        bool fixedVariance = double.IsNaN(aux);
        double v = Math.Max(fixedVariance ? Variance : aux, Eps);
        double r = x - y;
        derivative = r / v;
        double loss = 0.5 * ((fixedVariance ? _logFixedVariance : Math.Log(v)) + r * r / v);
        return Full ? loss + 0.5 * Math.Log(2.0 * Math.PI) : loss;
    }
}

/// <summary>
/// Binary cross-entropy on probabilities (PyTorch <c>BCELoss</c>): ℓ = −[y·max(log p, −100) +
/// (1 − y)·max(log(1 − p), −100)], ∂ℓ/∂p = (p − y) / max(p(1 − p), 1e−12).
/// </summary>
public readonly struct BceLoss : IPointwiseLoss
{
    /// <inheritdoc />
    public double Evaluate(double x, double y, double aux, out double derivative)
    {
        derivative = (x - y) / Math.Max(x * (1.0 - x), 1e-12);
        return -(y * Math.Max(Math.Log(x), -100.0) + (1.0 - y) * Math.Max(StableMath.Log1p(-x), -100.0));
    }
}

/// <summary>
/// Binary cross-entropy on logits (PyTorch <c>BCEWithLogitsLoss</c>): with l = 1 + (pw − 1)·y,
/// ℓ = (1 − y)·x − l·logσ(x), ∂ℓ/∂x = l·σ(x) − pw·y.
/// </summary>
public readonly struct BceWithLogitsLoss(double posWeight) : IPointwiseLoss
{
    /// <summary>Weight of the positive term (1 = none); PyTorch's rule of thumb is #neg/#pos.</summary>
    public readonly double PosWeight = posWeight;

    /// <inheritdoc />
    public double Evaluate(double x, double y, double aux, out double derivative)
    {
        double sigmoid = StableMath.SigmoidWithLog(x, out double logSigmoid);
        double l = 1.0 + (PosWeight - 1.0) * y;
        derivative = l * sigmoid - PosWeight * y;
        return (1.0 - y) * x - l * logSigmoid;
    }
}

/// <summary>
/// Binary hinge: with labels mapped to ±1 (0 → −1), ℓ = max(0, 1 − y·x); ∂ℓ/∂x = −y where 1 − y·x &gt; 0,
/// and 0 at the margin itself (strict, like PyTorch's <c>MultiMarginLoss</c> and <c>relu</c>).
/// </summary>
public readonly struct HingeLoss : IPointwiseLoss
{
    /// <inheritdoc />
    public double Evaluate(double x, double y, double aux, out double derivative)
    {
        double s = SignedLabel(y), margin = 1.0 - s * x, hinge = Math.Max(0.0, margin);
        // min(1, ⌈max(0, margin)⌉) is 1 where the margin is violated and 0 elsewhere, in floating point only (an
        // integer select here measured 2x slower); + 0.0 turns the −0 of an inactive positive label into 0.
        derivative = -s * Math.Min(1.0, Math.Ceiling(hinge)) + 0.0;
        return hinge;
    }

    internal static double SignedLabel(double y) => 2 * (y > 0.0 ? 1 : 0) - 1;
}

/// <summary>Squared hinge: ℓ = max(0, 1 − y·x)², ∂ℓ/∂x = −2y·max(0, 1 − y·x); labels as for hinge.</summary>
public readonly struct SquaredHingeLoss : IPointwiseLoss
{
    /// <inheritdoc />
    public double Evaluate(double x, double y, double aux, out double derivative)
    {
        double s = HingeLoss.SignedLabel(y), m = Math.Max(0.0, 1.0 - s * x);
        derivative = -2.0 * s * m;
        return m * m;
    }
}

/// <summary>
/// Sigmoid focal loss on logits (torchvision <c>sigmoid_focal_loss</c>): p = σ(x), p_t = p·y + (1 − p)(1 − y),
/// ℓ = α_t·ce·(1 − p_t)^γ with ce = BCEWithLogits(x, y) and α_t = α·y + (1 − α)(1 − y) (α &lt; 0: no α).
/// ∂ℓ/∂x = α_t·[(1 − p_t)^γ·(p − y) − γ·(1 − p_t)^(γ−1)·p(1 − p)(2y − 1)·ce].
/// </summary>
public readonly struct SigmoidFocalLoss(double alpha, double gamma) : IPointwiseLoss
{
    /// <summary>Weight of positives in [0, 1], or negative to disable.</summary>
    public readonly double Alpha = alpha;
    /// <summary>Focusing exponent γ ≥ 0.</summary>
    public readonly double Gamma = gamma;

    /// <inheritdoc />
    public double Evaluate(double x, double y, double aux, out double derivative)
    {
        double p = StableMath.SigmoidWithLog(x, out double logSigmoid);
        double oneMinusPt = 1.0 - (p * y + (1.0 - p) * (1.0 - y));
        double ce = x - x * y - logSigmoid;
        double alphaT = Alpha < 0.0 ? 1.0 : Alpha * y + (1.0 - Alpha) * (1.0 - y);
        double modulator = StableMath.Pow(oneMinusPt, Gamma);
        // (1 − p_t)^(γ − 1) is infinite at p_t = 1 when γ < 1, but ce → 0 there and the product's limit is 0.
        double focusTerm = oneMinusPt > 0.0 && Gamma != 0.0
            ? Gamma * StableMath.Pow(oneMinusPt, Gamma - 1.0) * p * (1.0 - p) * (2.0 * y - 1.0) * ce
            : 0.0;
        derivative = alphaT * (modulator * (p - y) - focusTerm);
        return alphaT * ce * modulator;
    }
}

/// <summary>
/// Kullback–Leibler divergence on log-probabilities x against probabilities p (PyTorch <c>KLDivLoss</c>):
/// ℓ = p·log p − p·x (0 where p = 0), ∂ℓ/∂x = −p. With <c>logTarget</c> the target is t = log p:
/// ℓ = eᵗ(t − x), ∂ℓ/∂x = −eᵗ.
/// </summary>
public readonly struct KlDivLoss(bool logTarget) : IPointwiseLoss
{
    private readonly int _logTarget = logTarget ? 1 : 0;

    /// <summary>Targets are log-probabilities.</summary>
    public bool LogTarget => _logTarget != 0;

    /// <inheritdoc />
    public double Evaluate(double x, double y, double aux, out double derivative)
    {
        if (LogTarget)
        {
            double p = Math.Exp(y);
            derivative = -p;
            return p * (y - x);
        }
        derivative = -y;
        return y > 0.0 ? y * (Math.Log(y) - x) : 0.0;
    }
}

/// <summary>
/// Adapts a loss defined on probabilities to the model's logits: ℓ(z) = inner(σ(z)),
/// ∂ℓ/∂z = inner′(σ(z))·σ(z)(1 − σ(z)). Used when training with <c>bce</c>.
/// </summary>
public readonly struct SigmoidInput<TLoss>(TLoss inner) : IPointwiseLoss where TLoss : struct, IPointwiseLoss
{
    /// <summary>The loss applied to σ(z).</summary>
    public readonly TLoss Inner = inner;

    /// <inheritdoc />
    public double Evaluate(double x, double y, double aux, out double derivative)
    {
        double p = StableMath.Sigmoid(x);
        double value = Inner.Evaluate(p, y, aux, out double innerDerivative);
        derivative = innerDerivative * p * (1.0 - p);
        return value;
    }
}
