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
    /// <summary>
    /// <see cref="LossKernels.PointwiseBlocks{TLoss}"/>: consecutive blocks a thread takes per pass (see
    /// <see cref="LossKernels.BlocksPerPass"/>).
    /// </summary>
    public int BlocksPerPass;
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
            double value = w * loss.Evaluate(xi, yi, a, out double derivative);
            sum += value;
            if (keep)
            {
                perElement[i] = accumulate ? (float)(perElement[i] + value) : (float)value;
            }
            if (wantGrad)
            {
                double g = args.Scale * w * derivative;
                grad[i] = accumulate ? (float)(grad[i] + g) : (float)g;
            }
        }
        double groupSum = GroupExtensions.Reduce<double, AddDouble>(sum);
        if (Group.IsFirstThread)
        {
            partials[args.PartialOffset + Grid.IdxX] = groupSum;
        }
    }

    /// <summary>Elements per block of <see cref="PointwiseBlocks{TLoss}"/>.</summary>
    public const int BlockSize = 8;

    /// <summary>
    /// Blocks per thread per pass of <see cref="PointwiseBlocks{TLoss}"/>. On the CPU each thread takes one contiguous
    /// run, so no cache line is written by two cores; on a GPU one block per pass, so neighbouring threads read
    /// neighbouring blocks.
    /// </summary>
    public static int BlocksPerPass(bool isCpu, int elements, int threads) =>
        isCpu ? Math.Max(1, (elements / BlockSize + threads - 1) / threads) : 1;

    /// <summary>
    /// The common case of <see cref="Pointwise{TLoss}"/> (no weights, side input or per-element output), read and
    /// written 8 floats at a time. On ILGPU's CPU accelerator a kernel runs as plain .NET code and every view access
    /// pays ILGPU's range and buffer checks, so one access per 8 elements is 4–5× faster for cheap losses; a GPU
    /// gets 32-byte accesses. Same values as <see cref="Pointwise{TLoss}"/>; the loss sum differs only in order.
    /// The caller guarantees every view starts at a multiple of 8 elements (a cast view's start is rounded down on
    /// the CPU).
    /// </summary>
    public static void PointwiseBlocks<TLoss>(ArrayView<float> x, ArrayView<float> y, ArrayView<float> grad,
        ArrayView<double> partials, LossLaunchArgs args, TLoss loss)
        where TLoss : struct, IPointwiseLoss
    {
        int threads = Grid.DimX * Group.DimX;
        int n = x.IntLength, blocks = n / BlockSize, run = args.BlocksPerPass;
        bool wantGrad = grad.Length > 0, accumulate = args.Accumulate != 0;
        var xs = x.Cast<Float8>();
        var ys = y.Cast<Float8>();
        var gs = grad.Cast<Float8>();
        double scale = args.Scale, sum = 0.0;
        for (int first = Grid.GlobalIndex.X * run; first < blocks; first += threads * run)
        {
            int last = Math.Min(first + run, blocks);
            for (int b = first; b < last; b++)
            {
                Float8 xb = xs[b], yb = ys[b];
                double v0 = loss.Evaluate(xb.E0, yb.E0, double.NaN, out double d0);
                double v1 = loss.Evaluate(xb.E1, yb.E1, double.NaN, out double d1);
                double v2 = loss.Evaluate(xb.E2, yb.E2, double.NaN, out double d2);
                double v3 = loss.Evaluate(xb.E3, yb.E3, double.NaN, out double d3);
                double v4 = loss.Evaluate(xb.E4, yb.E4, double.NaN, out double d4);
                double v5 = loss.Evaluate(xb.E5, yb.E5, double.NaN, out double d5);
                double v6 = loss.Evaluate(xb.E6, yb.E6, double.NaN, out double d6);
                double v7 = loss.Evaluate(xb.E7, yb.E7, double.NaN, out double d7);
                // Pairwise, so the eight values are not one chain of dependent additions.
                sum += ((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7));
                if (!wantGrad)
                {
                    continue;
                }
                Float8 gb = accumulate ? gs[b] : default;
                gb.E0 = (float)(gb.E0 + scale * d0);
                gb.E1 = (float)(gb.E1 + scale * d1);
                gb.E2 = (float)(gb.E2 + scale * d2);
                gb.E3 = (float)(gb.E3 + scale * d3);
                gb.E4 = (float)(gb.E4 + scale * d4);
                gb.E5 = (float)(gb.E5 + scale * d5);
                gb.E6 = (float)(gb.E6 + scale * d6);
                gb.E7 = (float)(gb.E7 + scale * d7);
                gs[b] = gb;
            }
        }
        // The last n mod 8 elements, one per thread.
        for (int i = blocks * BlockSize + Grid.GlobalIndex.X; i < n; i += threads)
        {
            double xi = x[i], yi = y[i];
            sum += loss.Evaluate(xi, yi, double.NaN, out double derivative);
            if (wantGrad)
            {
                double g = scale * derivative;
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

/// <summary>Eight consecutive floats: the unit <see cref="LossKernels.PointwiseBlocks{TLoss}"/> reads and writes.</summary>
internal struct Float8
{
    public float E0, E1, E2, E3, E4, E5, E6, E7;
}
