using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Algorithms.ScanReduceOperations;

namespace TrainingService.Compute.Losses;

/// <summary>Scalar arguments shared by the loss kernels (packed to stay under ILGPU's parameter limit).</summary>
public struct LossLaunchArgs
{
    /// <summary>Factor applied to every gradient element: term weight / batch denominator.</summary>
    public double Scale;
    /// <summary>1: add to the gradient buffer (later terms of a combined loss); 0: overwrite it.</summary>
    public int Accumulate;
    /// <summary>Where this launch writes its per-group partial sums in the partials buffer.</summary>
    public int PartialOffset;
    /// <summary>Outputs per row (C) for row losses.</summary>
    public int Classes;
}

/// <summary>
/// Grid-stride loss kernels: one per loss shape, specialised per loss struct. Each thread loops over its
/// elements (or rows), sums the loss in double, and each group writes one partial sum; no atomics, so
/// the result is bit-identical from run to run for a fixed launch shape.
/// </summary>
public static class LossKernels
{
    /// <summary>
    /// Elementwise loss: for every i, ℓ_i = w_i·ℓ(x_i, y_i, aux_i); grad_i (+)= scale·w_i·∂ℓ/∂x;
    /// perElement_i = ℓ_i. Empty <paramref name="weights"/>, <paramref name="aux"/>, <paramref name="grad"/>
    /// or <paramref name="perElement"/> mean "all ones", "none", "no gradient" and "not wanted".
    /// </summary>
    public static void Pointwise<TLoss>(ArrayView<float> x, ArrayView<float> y, ArrayView<float> weights,
        ArrayView<float> aux, ArrayView<float> grad, ArrayView<float> perElement, ArrayView<double> partials,
        LossLaunchArgs args, TLoss loss)
        where TLoss : struct, IPointwiseLoss
    {
        int stride = Grid.DimX * Group.DimX;
        int n = x.IntLength;
        bool weighted = weights.Length > 0, hasAux = aux.Length > 0, wantGrad = grad.Length > 0;
        bool keep = perElement.Length > 0, accumulate = args.Accumulate != 0;
        double sum = 0.0;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride)
        {
            double xi = x[i], yi = y[i], a = hasAux ? aux[i] : double.NaN;
            double w = weighted ? weights[i] : 1.0;
            double value = w * loss.Value(xi, yi, a);
            sum += value;
            if (keep)
            {
                perElement[i] = accumulate ? (float)(perElement[i] + value) : (float)value;
            }
            if (wantGrad)
            {
                double g = args.Scale * w * loss.Derivative(xi, yi, a);
                grad[i] = accumulate ? (float)(grad[i] + g) : (float)g;
            }
        }
        double groupSum = GroupExtensions.Reduce<double, AddDouble>(sum);
        if (Group.IsFirstThread)
        {
            partials[args.PartialOffset + Grid.IdxX] = groupSum;
        }
    }

    /// <summary>
    /// Row loss over [rows × C] outputs: each thread takes whole rows; perRow_r = ℓ_r; grad rows (+)= scale·∂ℓ_r/∂x.
    /// </summary>
    public static void Rows<TLoss>(ArrayView<float> x, ArrayView<float> targets, ArrayView<float> classWeights,
        ArrayView<float> grad, ArrayView<float> perRow, ArrayView<double> partials, LossLaunchArgs args, TLoss loss)
        where TLoss : struct, IRowLoss
    {
        int stride = Grid.DimX * Group.DimX;
        int rows = x.IntLength / args.Classes;
        bool keep = perRow.Length > 0, accumulate = args.Accumulate != 0;
        double sum = 0.0;
        for (int r = Grid.GlobalIndex.X; r < rows; r += stride)
        {
            double value = loss.Row(x, targets, r, args.Classes, classWeights, grad, args.Scale, accumulate);
            sum += value;
            if (keep)
            {
                perRow[r] = accumulate ? (float)(perRow[r] + value) : (float)value;
            }
        }
        double groupSum = GroupExtensions.Reduce<double, AddDouble>(sum);
        if (Group.IsFirstThread)
        {
            partials[args.PartialOffset + Grid.IdxX] = groupSum;
        }
    }
}
