namespace TrainingService.Compute.Losses;

/// <summary>How per-element (or per-row) losses are combined into one number.</summary>
public enum Reduction
{
    /// <summary>Sum divided by the loss's documented denominator (PyTorch's, see each loss).</summary>
    Mean,
    /// <summary>Plain sum.</summary>
    Sum,
    /// <summary>No reduction: per-element (or per-row) losses; the gradient is that of their sum.</summary>
    None,
    /// <summary>Sum divided by the number of rows (KL divergence's true per-sample mean).</summary>
    BatchMean,
}

/// <summary>The kind of problem a loss fits.</summary>
public enum LossTask
{
    /// <summary>Real-valued targets, one or several outputs.</summary>
    Regression,
    /// <summary>Two classes, one output.</summary>
    Binary,
    /// <summary>C ≥ 2 classes, C outputs, one class index per row.</summary>
    Multiclass,
    /// <summary>A probability distribution over C outputs per row.</summary>
    Distribution,
}

/// <summary>What a loss expects its predictions to be.</summary>
public enum InputSpace
{
    /// <summary>Unbounded real values (regression outputs, hinge scores).</summary>
    Values,
    /// <summary>Unnormalised log-odds.</summary>
    Logits,
    /// <summary>Probabilities in [0, 1].</summary>
    Probabilities,
    /// <summary>Log-probabilities (≤ 0).</summary>
    LogProbabilities,
}

/// <summary>How targets line up with predictions.</summary>
public enum TargetLayout
{
    /// <summary>One target per prediction element (same shape).</summary>
    Elementwise,
    /// <summary>One class index per row of C predictions.</summary>
    ClassIndex,
}

/// <summary>The shape a loss is bound to: the target layout, outputs per row, and whether inputs are model logits.</summary>
/// <param name="Layout">How targets line up with predictions.</param>
/// <param name="Classes">Outputs per row (1 for a flat vector).</param>
/// <param name="OnLogits">
/// True in training: the model emits raw outputs and losses defined on probabilities or log-probabilities
/// are applied after a sigmoid or log-softmax. False when predictions are given in the loss's own input space.
/// </param>
/// <param name="ClassWeights">
/// Per-class weights given outside the loss (a job's <c>classWeights</c>): row losses use them as PyTorch's
/// <c>weight</c>; binary elementwise losses weight each element by its label's class.
/// </param>
public readonly record struct LossBinding(TargetLayout Layout, int Classes, bool OnLogits, double[]? ClassWeights = null);

/// <summary>A loss specification that cannot be honoured; <see cref="Code"/> is stable, <see cref="Field"/> names the culprit.</summary>
public sealed class LossSpecException(string code, string field, string message) : Exception(message)
{
    /// <summary>Machine-readable error code, e.g. <c>loss.unknown</c>.</summary>
    public string Code { get; } = code;

    /// <summary>The offending field, parameter or element (e.g. <c>targets[3]</c>).</summary>
    public string Field { get; } = field;
}
