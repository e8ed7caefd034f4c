using ILGPU;
using ILGPU.Runtime;
using TrainingService.Compute.Devices;

namespace TrainingService.Compute.Optimizers;

/// <summary>An optimizer's device state (one to three slots per parameter) and its step launch.</summary>
public sealed class Optimizer : IDisposable
{
    private readonly ComputeDevice _device;
    private readonly MemoryBuffer1D<float, Stride1D.Dense>[] _state;

    /// <summary>Allocates zeroed state for <paramref name="parameterCount"/> parameters.</summary>
    public Optimizer(ComputeDevice device, OptimizerSpec spec, int parameterCount)
    {
        _device = device;
        Spec = spec;
        _state = Enumerable.Range(0, spec.StateSlots).Select(_ => device.AllocateZeroed<float>(parameterCount)).ToArray();
    }

    /// <summary>The optimizer and hyperparameters.</summary>
    public OptimizerSpec Spec { get; }

    /// <summary>Steps taken so far (Adam's t).</summary>
    public long Steps { get; private set; }

    /// <summary>
    /// Takes one step: adds the L1/L2 penalty gradient to masked parameters, writes per-group partial sums of the
    /// penalty and of the squared gradient at <paramref name="penaltyPartialOffset"/> (and one slot of
    /// <see cref="ComputeDevice.MaxGroups"/> later), clips by the global norm when configured, and applies the rule.
    /// </summary>
    public void Step(ArrayView<float> parameters, ArrayView<float> gradients, ArrayView<float> mask, ArrayView<double> partials,
        int penaltyPartialOffset, Losses.Regularization regularization, double learningRate)
    {
        Steps++;
        var gradientArgs = new GradientArgs
        {
            L1 = (float)regularization.L1,
            L2Factor = (float)regularization.L2GradientFactor,
            PenaltyPartialOffset = penaltyPartialOffset,
            NormPartialOffset = penaltyPartialOffset + _device.MaxGroups,
            Run = ViewPointers.RunLength(_device.IsCpu, parameters.Length, _device.MaxGroups * _device.GroupSize),
        };
        switch (Spec.Kind)
        {
            case OptimizerKind.Sgd:
                Apply(parameters, gradients, mask, partials, gradientArgs, new SgdRule
                {
                    LearningRate = (float)learningRate,
                    Momentum = (float)(Spec.Momentum ?? 0.0),
                    WeightDecay = (float)(Spec.WeightDecay ?? 0.0),
                    Nesterov = Spec.Nesterov ? 1 : 0,
                });
                break;
            case OptimizerKind.Adam:
            case OptimizerKind.AdamW:
                double beta1 = Spec.Beta1 ?? 0.9, beta2 = Spec.Beta2 ?? 0.999;
                bool decoupled = Spec.Kind == OptimizerKind.AdamW;
                Apply(parameters, gradients, mask, partials, gradientArgs, new AdamRule
                {
                    LearningRate = (float)learningRate,
                    Beta1 = (float)beta1,
                    Beta2 = (float)beta2,
                    Epsilon = (float)(Spec.Epsilon ?? 1e-8),
                    WeightDecay = (float)(Spec.WeightDecay ?? (decoupled ? 0.01 : 0.0)),
                    Decoupled = decoupled ? 1 : 0,
                    BiasCorrection1 = (float)(1 - Math.Pow(beta1, Steps)),
                    SqrtBiasCorrection2 = (float)Math.Sqrt(1 - Math.Pow(beta2, Steps)),
                });
                break;
            default:
                Apply(parameters, gradients, mask, partials, gradientArgs, new RmsPropRule
                {
                    LearningRate = (float)learningRate,
                    Alpha = (float)(Spec.Alpha ?? 0.99),
                    Epsilon = (float)(Spec.Epsilon ?? 1e-8),
                    WeightDecay = (float)(Spec.WeightDecay ?? 0.0),
                    Momentum = (float)(Spec.Momentum ?? 0.0),
                    Centered = Spec.Centered ? 1 : 0,
                });
                break;
        }
    }

    /// <summary>Copies the state slots to the host (for a checkpoint).</summary>
    public float[][] SaveState() => _state.Select(s => s.GetAsArray1D()).ToArray();

    /// <summary>Restores state slots and the step count from a checkpoint.</summary>
    public void RestoreState(float[][] state, long steps)
    {
        if (state.Length != _state.Length)
        {
            throw new InvalidOperationException($"The checkpoint has {state.Length} optimizer state slots; {Spec.Kind} needs {_state.Length}.");
        }
        for (int i = 0; i < state.Length; i++)
        {
            _state[i].CopyFromCPU(state[i]);
        }
        Steps = steps;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var buffer in _state)
        {
            buffer.Dispose();
        }
    }

    private ArrayView<float> Slot(int i) => i < _state.Length ? _state[i].View : ArrayView<float>.Empty;

    /// <summary>Without clipping one fused launch; with clipping the norm must be complete before any update.</summary>
    private void Apply<TRule>(ArrayView<float> parameters, ArrayView<float> gradients, ArrayView<float> mask,
        ArrayView<double> partials, GradientArgs gradientArgs, TRule rule) where TRule : struct, IOptimizerRule
    {
        var config = _device.GridStride(parameters.Length);
        if (Spec.GradientClipNorm is not double clip)
        {
            _device.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<double>, GradientArgs, TRule>(OptimizerKernels.PrepareAndUpdate)(
                config, parameters, gradients, mask, Slot(0), Slot(1), Slot(2), partials, gradientArgs, rule);
            return;
        }
        _device.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<double>, GradientArgs>(OptimizerKernels.PrepareGradients)(
            config, parameters, gradients, mask, partials, gradientArgs);
        var updateArgs = new UpdateArgs
        {
            NormPartialOffset = gradientArgs.NormPartialOffset,
            NormPartialCount = _device.MaxGroups,
            ClipNorm = (float)clip,
            Run = gradientArgs.Run,
        };
        _device.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<double>, UpdateArgs, TRule>(OptimizerKernels.Update)(
            config, parameters, gradients, Slot(0), Slot(1), Slot(2), partials, updateArgs, rule);
    }
}
