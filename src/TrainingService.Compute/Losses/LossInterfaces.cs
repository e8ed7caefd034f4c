using ILGPU;

namespace TrainingService.Compute.Losses;

/// <summary>
/// An elementwise loss ℓ(x, y) of one model output <c>x</c> and its target <c>y</c>, and ∂ℓ/∂x.
/// </summary>
/// <remarks>
/// Implementations are small readonly structs holding their parameters; the generic pointwise kernel
/// is specialised per struct, so calls inline and nothing is boxed. Arithmetic is in double: inputs
/// are stored as float, but the loss and its sum are computed in double (PyTorch parity to ~1e-7).
/// <c>aux</c> is a per-element side input (the variance of <c>gaussian_nll</c>), NaN when none is given;
/// other losses ignore it.
/// </remarks>
public interface IPointwiseLoss
{
    /// <summary>
    /// The unweighted, unreduced loss of one element, and in <paramref name="derivative"/> ∂ℓ/∂x with the library's
    /// convention at kinks. One method, so what the two share (an exponential, a sigmoid) is computed once.
    /// </summary>
    double Evaluate(double x, double y, double aux, out double derivative);
}

/// <summary>
/// A loss over one row of <c>classes</c> model outputs (logits or log-probabilities) and the row's target,
/// which is either a class index (<c>targets[row]</c>) or a probability row (<c>targets[row·C .. row·C+C)</c>).
/// </summary>
public interface IRowLoss
{
    /// <summary>
    /// Returns the row's weighted loss (before the batch denominator) and, unless <paramref name="grad"/> is
    /// empty, writes <c>scale · ∂ℓ/∂x</c> into the row of <paramref name="grad"/> (added when
    /// <paramref name="accumulate"/> is set).
    /// </summary>
    /// <param name="x">All model outputs, row-major [rows × classes].</param>
    /// <param name="targets">Class indices [rows] or probabilities [rows × classes].</param>
    /// <param name="row">The row to evaluate.</param>
    /// <param name="classes">Number of classes C.</param>
    /// <param name="classWeights">Per-class weights [C], or empty for all ones.</param>
    /// <param name="grad">Gradient output [rows × classes], or empty for loss only.</param>
    /// <param name="scale">Factor applied to the gradient (term weight / batch denominator).</param>
    /// <param name="accumulate">Add to <paramref name="grad"/> instead of overwriting it.</param>
    double Row(ArrayView<float> x, ArrayView<float> targets, int row, int classes,
        ArrayView<float> classWeights, ArrayView<float> grad, double scale, bool accumulate);
}
