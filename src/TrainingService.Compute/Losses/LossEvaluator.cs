using ILGPU;
using ILGPU.Runtime;
using TrainingService.Compute.Devices;

namespace TrainingService.Compute.Losses;

/// <summary>Inputs of one loss evaluation, all row-major.</summary>
/// <param name="Predictions">[rows × classes] in each loss's input space.</param>
/// <param name="Targets">Same shape as predictions, or one class index per row.</param>
/// <param name="Rows">Number of rows.</param>
/// <param name="Classes">Predictions per row.</param>
/// <param name="Weights">Per-element weights (elementwise losses), or null.</param>
/// <param name="Variance">Per-element variance (gaussian_nll), or null.</param>
public sealed record LossInput(float[] Predictions, float[] Targets, int Rows, int Classes, float[]? Weights = null, float[]? Variance = null);

/// <summary>The reduced loss, its gradient with respect to the predictions, and per-item losses for <c>none</c>.</summary>
/// <param name="Loss">The reduced (weighted, combined) loss; for <c>none</c> the sum.</param>
/// <param name="Gradient">∂Loss/∂predictions, shaped like the predictions.</param>
/// <param name="PerItem">Per-element (or per-row) losses for reduction <c>none</c>, else null.</param>
public sealed record LossResult(double Loss, float[] Gradient, float[]? PerItem);

/// <summary>
/// Evaluates a <see cref="CombinedLoss"/> on the device with the same kernels the trainer launches:
/// uploads the inputs, runs one launch per term into a shared gradient buffer, and reads the result back.
/// </summary>
public static class LossEvaluator
{
    /// <summary>Validates <paramref name="input"/> for every term, then evaluates.</summary>
    /// <param name="device">The accelerator.</param>
    /// <param name="loss">The bound loss.</param>
    /// <param name="input">Predictions, targets and optional weights.</param>
    /// <param name="reduction">The reduction asked for; null lets each term use its default (kl_div: batchmean, others: mean).</param>
    /// <param name="cancellationToken">Cancels waiting for the device.</param>
    public static async Task<LossResult> EvaluateAsync(ComputeDevice device, CombinedLoss loss, LossInput input,
        Reduction? reduction, CancellationToken cancellationToken = default)
    {
        loss.ResolveReduction(reduction);
        Validate(loss, input);
        using var _ = await device.AcquireAsync(cancellationToken).ConfigureAwait(false);
        return Evaluate(device, loss, input, reduction);
    }

    /// <summary>Checks shapes, finiteness and each term's domain; throws <see cref="LossSpecException"/>.</summary>
    public static void Validate(CombinedLoss loss, LossInput input)
    {
        if (input.Rows == 0 || input.Predictions.Length == 0)
        {
            throw new LossSpecException("loss.empty_input", "predictions", "At least one prediction is needed.");
        }
        CheckLength(input.Predictions.Length, input.Rows * input.Classes, "predictions", "rows × outputs per row");
        CheckLength(input.Targets.Length,
            loss.Binding.Layout == TargetLayout.ClassIndex ? input.Rows : input.Predictions.Length, "targets",
            loss.Binding.Layout == TargetLayout.ClassIndex ? "one class index per row" : "predictions");
        CheckFinite(input.Predictions, "predictions");
        CheckFinite(input.Targets, "targets");
        if (input.Weights is not null)
        {
            CheckFinite(input.Weights, "weights");
            CheckLength(input.Weights.Length, input.Predictions.Length, "weights", "predictions");
            if (loss.Terms.Any(t => t.IsRowLoss))
            {
                throw new LossSpecException("loss.weights_not_supported", "weights",
                    "Per-element weights apply to elementwise losses; row losses take class weights.");
            }
        }
        if (input.Variance is not null)
        {
            CheckFinite(input.Variance, "variance");
            CheckLength(input.Variance.Length, input.Predictions.Length, "variance", "predictions");
            for (int i = 0; i < input.Variance.Length; i++)
            {
                if (input.Variance[i] < 0)
                {
                    throw new LossSpecException("loss.target_out_of_domain", $"variance[{i}]", "Variances must be ≥ 0.");
                }
            }
        }
        var sample = new LossSample(input.Predictions, input.Targets, input.Rows, input.Classes);
        foreach (var term in loss.Terms)
        {
            term.Validate(sample);
        }
    }

    private static LossResult Evaluate(ComputeDevice device, CombinedLoss loss, LossInput input, Reduction? reduction)
    {
        var accelerator = device.Accelerator;
        int terms = loss.Terms.Count;
        using var predictions = accelerator.Allocate1D(input.Predictions);
        using var targets = accelerator.Allocate1D(input.Targets);
        using var variance = device.Upload(input.Variance);
        using var gradient = accelerator.Allocate1D<float>(input.Predictions.Length);
        using var partials = device.AllocateZeroed<double>((long)terms * device.MaxGroups);
        var sample = new LossSample(input.Predictions, input.Targets, input.Rows, input.Classes);

        double total = 0.0;
        float[]? perItem = null;
        for (int t = 0; t < terms; t++)
        {
            var term = loss.Terms[t];
            double scale = term.ReductionScale(CombinedLoss.TermReduction(term, reduction), sample);
            using var classWeights = device.Upload(term.IsRowLoss ? ToFloats(term.ClassWeights) : null);
            using var termWeights = device.Upload(ElementWeights(term, input));
            int items = term.ItemCount(input.Rows, input.Classes);
            using var termItems = reduction == Reduction.None ? accelerator.Allocate1D<float>(items) : null;
            var views = new LossViews
            {
                Predictions = predictions.View,
                Targets = targets.View,
                Weights = termWeights.ViewOrEmpty(),
                Aux = variance.ViewOrEmpty(),
                ClassWeights = classWeights.ViewOrEmpty(),
                Gradient = gradient.View,
                PerItem = termItems.ViewOrEmpty(),
                Partials = partials.View,
            };
            var args = new LossLaunchArgs
            {
                Scale = term.Weight * scale,
                Accumulate = t == 0 ? 0 : 1,
                PartialOffset = t * device.MaxGroups,
                Classes = input.Classes,
            };
            term.Launch(device, views, args, input.Rows);
            accelerator.Synchronize();

            double termSum = partials.View.SubView((long)t * device.MaxGroups, device.MaxGroups).GetAsArray1D().Sum();
            total += term.Weight * termSum * scale;
            if (reduction == Reduction.None)
            {
                perItem = AddWeighted(perItem, termItems!.GetAsArray1D(), term.Weight);
            }
        }
        return new LossResult(total, gradient.GetAsArray1D(), perItem);
    }

    /// <summary>A term's per-element weights: the caller's, the term's class-wise ones, or their product when both are given.</summary>
    private static float[]? ElementWeights(LossTerm term, LossInput input)
    {
        float[]? elementWeights = input.Weights ?? term.ElementWeights(input.Targets);
        if (input.Weights is not null && term.ElementWeights(input.Targets) is { } classWise)
        {
            elementWeights = input.Weights.Select((w, i) => w * classWise[i]).ToArray();
        }
        return elementWeights;
    }

    /// <summary>Adds <paramref name="weight"/> × <paramref name="values"/> to the per-item losses, allocating them on the first term.</summary>
    private static float[] AddWeighted(float[]? perItem, float[] values, double weight)
    {
        perItem ??= new float[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            perItem[i] += (float)(weight * values[i]);
        }
        return perItem;
    }

    private static float[]? ToFloats(double[]? values) => values is null ? null : Array.ConvertAll(values, v => (float)v);

    private static void CheckFinite(float[] values, string field)
    {
        for (int i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
            {
                throw new LossSpecException("loss.non_finite_input", $"{field}[{i}]", $"{field}[{i}] is not a finite number.");
            }
        }
    }

    private static void CheckLength(int actual, int expected, string field, string expectedName)
    {
        if (actual != expected)
        {
            throw new LossSpecException("loss.shape_mismatch", field,
                $"{field} has {actual} values; expected {expected} ({expectedName}).");
        }
    }
}
