using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Algorithms.ScanReduceOperations;
using TrainingService.Compute.Devices;

namespace TrainingService.Compute.Optimizers;

/// <summary>One optimizer's update of parameter i from its (clipped) gradient and up to three state slots.</summary>
public interface IOptimizerRule
{
    /// <summary>Updates <c>parameters[i]</c> and the rule's state at i (state pointers the rule does not use may be null).</summary>
    unsafe void Step(int i, float* parameters, float gradient, float* state1, float* state2, float* state3);
}

/// <summary>Arguments of <see cref="OptimizerKernels.PrepareGradients"/>.</summary>
public struct GradientArgs
{
    /// <summary>L1 coefficient.</summary>
    public float L1;
    /// <summary>c in the L2 gradient c·w (2·l2 Keras, l2 PyTorch).</summary>
    public float L2Factor;
    /// <summary>Where the penalty partial sums go.</summary>
    public int PenaltyPartialOffset;
    /// <summary>Where the squared-gradient partial sums go.</summary>
    public int NormPartialOffset;
    /// <summary>Elements a thread takes in one contiguous run (<see cref="ViewPointers.RunLength"/>).</summary>
    public int Run;
}

/// <summary>Arguments of <see cref="OptimizerKernels.Update{TRule}"/>.</summary>
public struct UpdateArgs
{
    /// <summary>Where this step's squared-gradient partial sums are.</summary>
    public int NormPartialOffset;
    /// <summary>How many partial sums to add.</summary>
    public int NormPartialCount;
    /// <summary>Maximum global gradient norm; 0 disables clipping.</summary>
    public float ClipNorm;
    /// <summary>Elements a thread takes in one contiguous run (<see cref="ViewPointers.RunLength"/>).</summary>
    public int Run;
}

/// <summary>Kernels run once per optimizer step over the flat parameter vector.</summary>
public static class OptimizerKernels
{
    /// <summary>
    /// Adds the L1/L2 penalty gradient to masked parameters' gradients, and writes per-group partial sums of the
    /// penalty (l1·|w| + ½c·w²) and of the squared gradient (for the global norm, after the penalty).
    /// </summary>
    public static unsafe void PrepareGradients(ArrayView<float> parameters, ArrayView<float> gradients, ArrayView<float> mask,
        ArrayView<double> partials, GradientArgs args)
    {
        float* w = ViewPointers.Address(parameters), d = ViewPointers.Address(gradients), m = ViewPointers.Address(mask);
        int n = parameters.IntLength, run = Math.Max(1, args.Run), step = Grid.DimX * Group.DimX * run;
        double penalty = 0.0, squares = 0.0;
        for (int first = Grid.GlobalIndex.X * run; first < n; first += step)
        {
            for (int i = first, last = Math.Min(first + run, n); i < last; i++)
            {
                float g = Penalised(i, w, d, m, args, ref penalty);
                d[i] = g;
                squares += (double)g * g;
            }
        }
        WritePartials(penalty, squares, partials, args);
    }

    /// <summary>
    /// <see cref="PrepareGradients"/> and <see cref="Update{TRule}"/> in one pass, for steps without clipping (which
    /// needs the global norm before any parameter moves): one launch instead of two per batch.
    /// </summary>
    public static unsafe void PrepareAndUpdate<TRule>(ArrayView<float> parameters, ArrayView<float> gradients, ArrayView<float> mask,
        ArrayView<float> state1, ArrayView<float> state2, ArrayView<float> state3, ArrayView<double> partials, GradientArgs args, TRule rule)
        where TRule : struct, IOptimizerRule
    {
        float* w = ViewPointers.Address(parameters), d = ViewPointers.Address(gradients), m = ViewPointers.Address(mask);
        float* s1 = ViewPointers.Address(state1), s2 = ViewPointers.Address(state2), s3 = ViewPointers.Address(state3);
        int n = parameters.IntLength, run = Math.Max(1, args.Run), step = Grid.DimX * Group.DimX * run;
        double penalty = 0.0, squares = 0.0;
        for (int first = Grid.GlobalIndex.X * run; first < n; first += step)
        {
            for (int i = first, last = Math.Min(first + run, n); i < last; i++)
            {
                float g = Penalised(i, w, d, m, args, ref penalty);
                squares += (double)g * g;
                rule.Step(i, w, g, s1, s2, s3);
            }
        }
        WritePartials(penalty, squares, partials, args);
    }

    /// <summary>Gradient i plus the penalty's gradient when parameter i is penalised; adds its penalty to <paramref name="penalty"/>.</summary>
    private static unsafe float Penalised(int i, float* parameters, float* gradients, float* mask, GradientArgs args, ref double penalty)
    {
        float g = gradients[i];
        if ((args.L1 != 0f || args.L2Factor != 0f) && mask[i] != 0f)
        {
            float w = parameters[i];
            float sign = w > 0f ? 1f : w < 0f ? -1f : 0f;
            g += args.L1 * sign + args.L2Factor * w;
            penalty += args.L1 * Math.Abs((double)w) + 0.5 * args.L2Factor * (double)w * w;
        }
        return g;
    }

    private static void WritePartials(double penalty, double squares, ArrayView<double> partials, GradientArgs args)
    {
        double groupPenalty = GroupExtensions.Reduce<double, AddDouble>(penalty);
        double groupSquares = GroupExtensions.Reduce<double, AddDouble>(squares);
        if (Group.IsFirstThread)
        {
            partials[args.PenaltyPartialOffset + Grid.IdxX] = groupPenalty;
            partials[args.NormPartialOffset + Grid.IdxX] = groupSquares;
        }
    }

    /// <summary>
    /// Clips the gradient by global norm when asked (PyTorch's clip_grad_norm_: × min(1, max/(‖g‖ + 1e−6))), then
    /// applies the rule to every parameter.
    /// </summary>
    public static unsafe void Update<TRule>(ArrayView<float> parameters, ArrayView<float> gradients, ArrayView<float> state1,
        ArrayView<float> state2, ArrayView<float> state3, ArrayView<double> partials, UpdateArgs args, TRule rule)
        where TRule : struct, IOptimizerRule
    {
        float coefficient = 1f;
        if (args.ClipNorm > 0f)
        {
            double squares = 0.0;
            for (int p = 0; p < args.NormPartialCount; p++)
            {
                squares += partials[args.NormPartialOffset + p];
            }
            coefficient = (float)Math.Min(1.0, args.ClipNorm / (Math.Sqrt(squares) + 1e-6));
        }
        float* w = ViewPointers.Address(parameters), d = ViewPointers.Address(gradients);
        float* s1 = ViewPointers.Address(state1), s2 = ViewPointers.Address(state2), s3 = ViewPointers.Address(state3);
        int n = parameters.IntLength, run = Math.Max(1, args.Run), step = Grid.DimX * Group.DimX * run;
        for (int first = Grid.GlobalIndex.X * run; first < n; first += step)
        {
            for (int i = first, last = Math.Min(first + run, n); i < last; i++)
            {
                rule.Step(i, w, d[i] * coefficient, s1, s2, s3);
            }
        }
    }
}

/// <summary>
/// PyTorch SGD: g ← g + λw; with momentum μ: b ← μb + g, g ← nesterov ? g + μb : b; w ← w − lr·g.
/// State 1 is the momentum buffer.
/// </summary>
public struct SgdRule : IOptimizerRule
{
    /// <summary>Learning rate of this step.</summary>
    public float LearningRate;
    /// <summary>μ.</summary>
    public float Momentum;
    /// <summary>λ (coupled L2).</summary>
    public float WeightDecay;
    /// <summary>1 for Nesterov momentum.</summary>
    public int Nesterov;

    /// <inheritdoc />
    public unsafe void Step(int i, float* parameters, float gradient, float* state1, float* state2, float* state3)
    {
        float w = parameters[i];
        float g = gradient + WeightDecay * w;
        if (Momentum != 0f)
        {
            float buffer = Momentum * state1[i] + g;
            state1[i] = buffer;
            g = Nesterov != 0 ? g + Momentum * buffer : buffer;
        }
        parameters[i] = w - LearningRate * g;
    }
}

/// <summary>
/// PyTorch Adam / AdamW: m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², w ← w − (lr/bc₁)·m/(√v/√bc₂ + ε) with
/// bc = 1 − βᵗ. Adam adds λw to g (coupled); AdamW first scales w by (1 − lr·λ) (decoupled). States: m, v.
/// </summary>
public struct AdamRule : IOptimizerRule
{
    /// <summary>Learning rate of this step.</summary>
    public float LearningRate;
    /// <summary>β₁.</summary>
    public float Beta1;
    /// <summary>β₂.</summary>
    public float Beta2;
    /// <summary>ε.</summary>
    public float Epsilon;
    /// <summary>λ.</summary>
    public float WeightDecay;
    /// <summary>1 for AdamW's decoupled decay.</summary>
    public int Decoupled;
    /// <summary>1 − β₁ᵗ for this step t.</summary>
    public float BiasCorrection1;
    /// <summary>√(1 − β₂ᵗ) for this step t.</summary>
    public float SqrtBiasCorrection2;

    /// <inheritdoc />
    public unsafe void Step(int i, float* parameters, float gradient, float* state1, float* state2, float* state3)
    {
        float w = parameters[i];
        float g = gradient;
        if (Decoupled != 0)
        {
            w *= 1f - LearningRate * WeightDecay;
        }
        else
        {
            g += WeightDecay * w;
        }
        float m = Beta1 * state1[i] + (1f - Beta1) * g;
        float v = Beta2 * state2[i] + (1f - Beta2) * g * g;
        state1[i] = m;
        state2[i] = v;
        float denominator = MathF.Sqrt(v) / SqrtBiasCorrection2 + Epsilon;
        parameters[i] = w - LearningRate / BiasCorrection1 * (m / denominator);
    }
}

/// <summary>
/// PyTorch RMSprop: g ← g + λw; v ← αv + (1 − α)g²; centered: ḡ ← αḡ + (1 − α)g and d = √(v − ḡ²) + ε, else
/// d = √v + ε; with momentum μ: b ← μb + g/d, w ← w − lr·b, else w ← w − lr·g/d. States: v, b, ḡ.
/// </summary>
public struct RmsPropRule : IOptimizerRule
{
    /// <summary>Learning rate of this step.</summary>
    public float LearningRate;
    /// <summary>α (smoothing).</summary>
    public float Alpha;
    /// <summary>ε.</summary>
    public float Epsilon;
    /// <summary>λ.</summary>
    public float WeightDecay;
    /// <summary>μ.</summary>
    public float Momentum;
    /// <summary>1 to normalise by the variance rather than the second moment.</summary>
    public int Centered;

    /// <inheritdoc />
    public unsafe void Step(int i, float* parameters, float gradient, float* state1, float* state2, float* state3)
    {
        float w = parameters[i];
        float g = gradient + WeightDecay * w;
        float v = Alpha * state1[i] + (1f - Alpha) * g * g;
        state1[i] = v;
        float average;
        if (Centered != 0)
        {
            float mean = Alpha * state3[i] + (1f - Alpha) * g;
            state3[i] = mean;
            average = MathF.Sqrt(v - mean * mean) + Epsilon;
        }
        else
        {
            average = MathF.Sqrt(v) + Epsilon;
        }
        if (Momentum > 0f)
        {
            float buffer = Momentum * state2[i] + g / average;
            state2[i] = buffer;
            parameters[i] = w - LearningRate * buffer;
        }
        else
        {
            parameters[i] = w - LearningRate * g / average;
        }
    }
}
