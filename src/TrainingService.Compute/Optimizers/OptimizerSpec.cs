namespace TrainingService.Compute.Optimizers;

/// <summary>The optimizers offered, with PyTorch's update rules and defaults.</summary>
public enum OptimizerKind
{
    /// <summary>Stochastic gradient descent, optional (Nesterov) momentum.</summary>
    Sgd,
    /// <summary>Adam with coupled L2 weight decay.</summary>
    Adam,
    /// <summary>Adam with decoupled weight decay (default λ = 0.01).</summary>
    AdamW,
    /// <summary>RMSprop.</summary>
    RmsProp,
}

/// <summary>An optimizer and its hyperparameters; unset values take PyTorch's defaults for that optimizer.</summary>
/// <param name="Kind">Which optimizer.</param>
/// <param name="LearningRate">Initial learning rate (schedules scale from it).</param>
/// <param name="Momentum">SGD and RMSprop momentum μ (default 0).</param>
/// <param name="Nesterov">SGD Nesterov momentum (needs μ &gt; 0).</param>
/// <param name="Beta1">Adam β₁ (0.9).</param>
/// <param name="Beta2">Adam β₂ (0.999).</param>
/// <param name="Epsilon">Adam and RMSprop ε (1e−8).</param>
/// <param name="WeightDecay">λ (0; AdamW 0.01).</param>
/// <param name="Alpha">RMSprop α (0.99).</param>
/// <param name="Centered">RMSprop centered variant.</param>
/// <param name="GradientClipNorm">Clip the global gradient norm to this (null: no clipping).</param>
public sealed record OptimizerSpec(
    OptimizerKind Kind,
    double LearningRate,
    double? Momentum = null,
    bool Nesterov = false,
    double? Beta1 = null,
    double? Beta2 = null,
    double? Epsilon = null,
    double? WeightDecay = null,
    double? Alpha = null,
    bool Centered = false,
    double? GradientClipNorm = null)
{
    /// <summary>PyTorch's default learning rate for each optimizer (SGD has none there; 0.01 here).</summary>
    public static double DefaultLearningRate(OptimizerKind kind) => kind switch
    {
        OptimizerKind.Adam or OptimizerKind.AdamW => 1e-3,
        _ => 1e-2,
    };

    /// <summary>Number of per-parameter state slots the optimizer keeps.</summary>
    public int StateSlots => Kind switch
    {
        OptimizerKind.Sgd => Momentum is > 0 ? 1 : 0,
        OptimizerKind.Adam or OptimizerKind.AdamW => 2,
        _ => 3,
    };
}
