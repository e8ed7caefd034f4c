using System.Globalization;
using ILGPU;
using ILGPU.Runtime;
using TrainingService.Compute.Devices;

namespace TrainingService.Compute.Losses;

/// <summary>Host-side view of one batch: predictions [rows × classes] and targets in the bound layout.</summary>
public readonly ref struct LossSample
{
    /// <summary>Creates a sample view.</summary>
    public LossSample(ReadOnlySpan<float> predictions, ReadOnlySpan<float> targets, int rows, int classes)
    {
        Predictions = predictions;
        Targets = targets;
        Rows = rows;
        Classes = classes;
    }

    /// <summary>Predictions, row-major; may be empty when only targets matter (denominators in training).</summary>
    public ReadOnlySpan<float> Predictions { get; }
    /// <summary>Targets: one per prediction, or one class index per row.</summary>
    public ReadOnlySpan<float> Targets { get; }
    /// <summary>Number of rows B.</summary>
    public int Rows { get; }
    /// <summary>Outputs per row C.</summary>
    public int Classes { get; }
}

/// <summary>Device views a loss launch reads and writes.</summary>
public readonly struct LossViews
{
    /// <summary>Predictions (or model outputs) [rows × classes].</summary>
    public ArrayView<float> Predictions { get; init; }
    /// <summary>Targets, as laid out by the binding.</summary>
    public ArrayView<float> Targets { get; init; }
    /// <summary>Per-element weights (pointwise losses), or empty.</summary>
    public ArrayView<float> Weights { get; init; }
    /// <summary>Per-element side input, or empty.</summary>
    public ArrayView<float> Aux { get; init; }
    /// <summary>Per-class weights (row losses), or empty.</summary>
    public ArrayView<float> ClassWeights { get; init; }
    /// <summary>Gradient output, or empty.</summary>
    public ArrayView<float> Gradient { get; init; }
    /// <summary>Per-element (per-row) loss output, or empty.</summary>
    public ArrayView<float> PerItem { get; init; }
    /// <summary>Per-group partial sums of the loss.</summary>
    public ArrayView<double> Partials { get; init; }
}

/// <summary>Which quantity a loss's <see cref="Reduction.Mean"/> divides by (PyTorch's choice for that loss).</summary>
public enum MeanDenominator
{
    /// <summary>Number of prediction elements (elementwise losses; weights never enter).</summary>
    Elements,
    /// <summary>Number of rows B.</summary>
    Rows,
    /// <summary>Σ w[y_n] over rows whose target is not the ignore index (class-index cross-entropy and NLL).</summary>
    TargetClassWeights,
}

/// <summary>What values targets (or predictions) of a loss may take.</summary>
internal enum Domain
{
    Finite,
    UnitInterval,
    SignedLabel,
    NonNegative,
    ClassIndex,
    ProbabilityRows,
}

/// <summary>
/// One loss bound to its parameters and to a target layout: it validates data on the host, knows its mean
/// denominator, and launches its kernel. A combined loss is a weighted list of terms.
/// </summary>
public abstract class LossTerm
{
    private protected LossTerm(LossDefinition definition, double weight, IReadOnlyDictionary<string, object?> parameters,
        MeanDenominator denominator, Domain targetDomain, Domain predictionDomain, int? ignoreIndex)
    {
        Definition = definition;
        Weight = weight;
        Parameters = parameters;
        Denominator = denominator;
        TargetDomain = targetDomain;
        PredictionDomain = predictionDomain;
        IgnoreIndex = ignoreIndex;
    }

    /// <summary>The catalogue entry.</summary>
    public LossDefinition Definition { get; }
    /// <summary>Weight of this term in a combined loss.</summary>
    public double Weight { get; }
    /// <summary>The parameter values in effect (defaults filled in).</summary>
    public IReadOnlyDictionary<string, object?> Parameters { get; }
    /// <summary>What <see cref="Reduction.Mean"/> divides by.</summary>
    public MeanDenominator Denominator { get; }
    /// <summary>True when the loss works on whole rows (one value per row).</summary>
    public abstract bool IsRowLoss { get; }
    /// <summary>Rows whose class-index target equals this are skipped (CE, NLL).</summary>
    public int? IgnoreIndex { get; }
    /// <summary>
    /// Per-class weights in effect: row losses pass them to the kernel; binary elementwise losses weight each
    /// element by its label (see <see cref="ElementWeights"/>). Null when unweighted.
    /// </summary>
    public double[]? ClassWeights { get; init; }

    /// <summary>
    /// Per-element weights for an elementwise term with two class weights: w = y·w₁ + (1 − y)·w₀ for labels in [0, 1]
    /// (hinge's −1 counts as class 0). Null when the term has no class weights or is a row loss.
    /// </summary>
    public float[]? ElementWeights(ReadOnlySpan<float> targets)
    {
        if (IsRowLoss || ClassWeights is not [double w0, double w1])
        {
            return null;
        }
        var weights = new float[targets.Length];
        for (int i = 0; i < targets.Length; i++)
        {
            double y = Math.Max(targets[i], 0f);
            weights[i] = (float)(y * w1 + (1.0 - y) * w0);
        }
        return weights;
    }
    internal Domain TargetDomain { get; }
    internal Domain PredictionDomain { get; }

    /// <summary>Number of values a <see cref="Reduction.None"/> result has.</summary>
    public int ItemCount(int rows, int classes) => IsRowLoss ? rows : rows * classes;

    /// <summary>The factor applied to the summed loss (and to the gradient) for <paramref name="reduction"/>.</summary>
    public double ReductionScale(Reduction reduction, in LossSample sample) => reduction switch
    {
        Reduction.Sum or Reduction.None => 1.0,
        Reduction.BatchMean => 1.0 / sample.Rows,
        _ => 1.0 / MeanDivisor(sample),
    };

    /// <summary>The mean-reduction divisor of <paramref name="sample"/> (may be 0: the mean is then NaN, as in PyTorch).</summary>
    public double MeanDivisor(in LossSample sample)
    {
        switch (Denominator)
        {
            case MeanDenominator.Elements:
                return (double)sample.Rows * sample.Classes;
            case MeanDenominator.Rows:
                return sample.Rows;
            default:
                double sum = 0.0;
                for (int r = 0; r < sample.Rows; r++)
                {
                    int y = (int)sample.Targets[r];
                    if (y != IgnoreIndex)
                    {
                        sum += ClassWeights?[y] ?? 1.0;
                    }
                }
                return sum;
        }
    }

    /// <summary>Checks targets and predictions against the loss's domain; throws with the first offending index.</summary>
    public void Validate(in LossSample sample)
    {
        CheckDomain(PredictionDomain, sample.Predictions, sample, "predictions");
        CheckDomain(TargetDomain, sample.Targets, sample, "targets");
    }

    /// <summary>Launches the kernel over <paramref name="rows"/> rows of <paramref name="views"/>.</summary>
    public abstract void Launch(ComputeDevice device, in LossViews views, LossLaunchArgs args, int rows);

    private void CheckDomain(Domain domain, ReadOnlySpan<float> values, in LossSample sample, string field)
    {
        string name = Definition.Name;
        switch (domain)
        {
            case Domain.UnitInterval:
                for (int i = 0; i < values.Length; i++)
                {
                    if (values[i] is < 0f or > 1f)
                    {
                        throw OutOfDomain(field, i, values[i], $"'{name}' needs {field} in [0, 1]");
                    }
                }
                break;
            case Domain.SignedLabel:
                for (int i = 0; i < values.Length; i++)
                {
                    if (values[i] is not (-1f or 0f or 1f))
                    {
                        throw OutOfDomain(field, i, values[i], $"'{name}' needs labels in {{0, 1}} or {{-1, 1}}");
                    }
                }
                break;
            case Domain.NonNegative:
                for (int i = 0; i < values.Length; i++)
                {
                    if (values[i] < 0f)
                    {
                        throw OutOfDomain(field, i, values[i], $"'{name}' needs non-negative {field}");
                    }
                }
                break;
            case Domain.ClassIndex:
                CheckClassIndices(values, sample.Classes, field);
                break;
            case Domain.ProbabilityRows:
                CheckProbabilityRows(values, sample, field);
                break;
        }
    }

    private void CheckClassIndices(ReadOnlySpan<float> values, int classes, string field)
    {
        for (int i = 0; i < values.Length; i++)
        {
            float y = values[i];
            bool ignored = IgnoreIndex is int ignore && y == ignore;
            if (!ignored && (y != MathF.Floor(y) || y < 0 || y >= classes))
            {
                throw OutOfDomain(field, i, y, $"'{Definition.Name}' needs class indices in [0, {classes})");
            }
        }
    }

    private void CheckProbabilityRows(ReadOnlySpan<float> values, in LossSample sample, string field)
    {
        string name = Definition.Name;
        for (int r = 0; r < sample.Rows; r++)
        {
            double sum = 0.0;
            for (int c = 0; c < sample.Classes; c++)
            {
                float p = values[r * sample.Classes + c];
                if (p is < 0f or > 1f)
                {
                    throw OutOfDomain(field, r * sample.Classes + c, p, $"'{name}' needs probabilities in [0, 1]");
                }
                sum += p;
            }
            if (Math.Abs(sum - 1.0) > 1e-4)
            {
                throw new LossSpecException("loss.target_out_of_domain", $"{field}[{r}]",
                    $"'{name}' needs each target row to sum to 1 (within 1e-4); row {r} sums to {sum.ToString("R", CultureInfo.InvariantCulture)}.");
            }
        }
    }

    private static LossSpecException OutOfDomain(string field, int index, float value, string what) =>
        new(field == "targets" ? "loss.target_out_of_domain" : "loss.prediction_out_of_domain", $"{field}[{index}]",
            $"{what}; {field}[{index}] is {value.ToString(CultureInfo.InvariantCulture)}.");
}

/// <summary>A term evaluated by the elementwise kernel.</summary>
internal sealed class PointwiseTerm<TLoss>(LossDefinition definition, double weight, IReadOnlyDictionary<string, object?> parameters,
    TLoss loss, MeanDenominator denominator, Domain targetDomain, Domain predictionDomain = Domain.Finite)
    : LossTerm(definition, weight, parameters, denominator, targetDomain, predictionDomain, ignoreIndex: null)
    where TLoss : struct, IPointwiseLoss
{
    public override bool IsRowLoss => false;

    public override void Launch(ComputeDevice device, in LossViews views, LossLaunchArgs args, int rows)
    {
        var config = device.GridStride(views.Predictions.Length);
        if (views.Weights.Length == 0 && views.Aux.Length == 0 && views.PerItem.Length == 0
            && StartsOnBlock(views.Predictions) && StartsOnBlock(views.Targets) && StartsOnBlock(views.Gradient))
        {
            var blocks = device.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<double>, LossLaunchArgs, TLoss>(
                LossKernels.PointwiseBlocks);
            args.BlocksPerPass = LossKernels.BlocksPerPass(device.IsCpu, views.Predictions.IntLength, config.GroupDim.Size * config.GridDim.Size);
            blocks(config, views.Predictions, views.Targets, views.Gradient, views.Partials, args, loss);
            return;
        }
        var kernel = device.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<double>, LossLaunchArgs, TLoss>(LossKernels.Pointwise);
        kernel(config, views.Predictions, views.Targets, views.Weights, views.Aux, views.Gradient, views.PerItem, views.Partials,
            args, loss);
    }

    // Generic so the interface call is constrained: no boxing on a path that runs every training step.
    private static bool StartsOnBlock<TView>(TView view) where TView : struct, IContiguousArrayView =>
        view.Index % LossKernels.BlockSize == 0;
}

/// <summary>A term evaluated by the row kernel.</summary>
internal sealed class RowTerm<TLoss>(LossDefinition definition, double weight, IReadOnlyDictionary<string, object?> parameters,
    TLoss loss, MeanDenominator denominator, Domain targetDomain, int? ignoreIndex = null)
    : LossTerm(definition, weight, parameters, denominator, targetDomain, Domain.Finite, ignoreIndex)
    where TLoss : struct, IRowLoss
{
    public override bool IsRowLoss => true;

    public override void Launch(ComputeDevice device, in LossViews views, LossLaunchArgs args, int rows)
    {
        var kernel = device.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<double>, LossLaunchArgs, TLoss>(LossKernels.Rows);
        kernel(device.GridStride(rows), views.Predictions, views.Targets, views.ClassWeights, views.Gradient,
            views.PerItem, views.Partials, args, loss);
    }
}
