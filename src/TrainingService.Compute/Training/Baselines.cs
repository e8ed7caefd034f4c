namespace TrainingService.Compute.Training;

/// <summary>The trivial model a trained one must beat: a constant output row fitted to the training targets.</summary>
public static class Baselines
{
    /// <summary>Probabilities are clipped into [ε, 1 − ε] before their logits are taken, so an absent class costs a finite loss.</summary>
    private const double Epsilon = 1e-7;

    /// <summary><c>mean</c> for regression, <c>prior</c> for classification.</summary>
    public static string ModelName(OutputKind kind) => kind == OutputKind.Regression ? "mean" : "prior";

    /// <summary>
    /// The raw output row whose prediction is the training targets' mean (regression, per output) or class prior
    /// (classification): the mean itself, its log under <see cref="OutputTransform.Exp"/>, its logit under a sigmoid, the
    /// log prior under a softmax; a hinge's identity scores get the expected ±1 label (binary) or the prior (classes).
    /// </summary>
    /// <param name="kind">How outputs are read.</param>
    /// <param name="transform">How raw outputs become predictions.</param>
    /// <param name="targets">Training targets: values [rows × outputs], 0/1 labels, class indices, or distributions.</param>
    /// <param name="rows">Training rows.</param>
    /// <param name="outputs">Outputs per row.</param>
    public static double[] ConstantOutputs(OutputKind kind, OutputTransform transform, ReadOnlySpan<float> targets, int rows, int outputs)
    {
        var mean = kind == OutputKind.Multiclass ? ClassPrior(targets, rows, outputs) : ColumnMeans(targets, rows, outputs);
        for (int c = 0; c < outputs; c++)
        {
            mean[c] = (kind, transform) switch
            {
                (_, OutputTransform.Exp) => Math.Log(Math.Max(mean[c], Epsilon)),
                (_, OutputTransform.Sigmoid) => Logit(Math.Clamp(mean[c], Epsilon, 1 - Epsilon)),
                (_, OutputTransform.Softmax) => Math.Log(Math.Max(mean[c], Epsilon)),
                (OutputKind.Binary, _) => 2 * mean[c] - 1,
                _ => mean[c],
            };
        }
        return mean;
    }

    private static double Logit(double p) => Math.Log(p / (1 - p));

    private static double[] ColumnMeans(ReadOnlySpan<float> targets, int rows, int width)
    {
        var sums = new double[width];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < width; c++)
            {
                sums[c] += targets[r * width + c];
            }
        }
        for (int c = 0; c < width; c++)
        {
            sums[c] /= Math.Max(rows, 1);
        }
        return sums;
    }

    private static double[] ClassPrior(ReadOnlySpan<float> classIndices, int rows, int classes)
    {
        var prior = new double[classes];
        for (int r = 0; r < rows; r++)
        {
            prior[(int)classIndices[r]]++;
        }
        for (int c = 0; c < classes; c++)
        {
            prior[c] /= Math.Max(rows, 1);
        }
        return prior;
    }
}
