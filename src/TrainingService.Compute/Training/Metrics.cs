namespace TrainingService.Compute.Training;

/// <summary>How model outputs are read: which metrics apply and how predictions are formed.</summary>
public enum OutputKind
{
    /// <summary>Real values, one or several outputs: rmse, mae, r2.</summary>
    Regression,
    /// <summary>One output for two classes: accuracy, precision, recall, f1, auc.</summary>
    Binary,
    /// <summary>C outputs, one class per row: accuracy, macroF1.</summary>
    Multiclass,
    /// <summary>C outputs against a target distribution: accuracy of the most likely class.</summary>
    Distribution,
}

/// <summary>What turns a raw model output into a prediction.</summary>
public enum OutputTransform
{
    /// <summary>The output itself (regression values, hinge scores).</summary>
    Identity,
    /// <summary>eˣ (Poisson log-rates).</summary>
    Exp,
    /// <summary>σ(x): probability of the positive class.</summary>
    Sigmoid,
    /// <summary>softmax(x) over the row.</summary>
    Softmax,
}

/// <summary>Per-epoch metrics, computed on the host in double from raw outputs and targets.</summary>
public static class Metrics
{
    /// <summary>
    /// The metric names a kind reports, in order. Classifiers whose outputs are probabilities (a sigmoid or a softmax;
    /// null: any) also report <c>logLoss</c> and <c>brier</c>, which do not depend on the loss trained with, so runs with
    /// different losses compare on them.
    /// </summary>
    public static IReadOnlyList<string> Names(OutputKind kind, OutputTransform? transform = null) => kind switch
    {
        OutputKind.Regression => ["rmse", "mae", "r2"],
        OutputKind.Binary when transform is null or OutputTransform.Sigmoid => ["accuracy", "precision", "recall", "f1", "auc", "logLoss", "brier"],
        OutputKind.Binary => ["accuracy", "precision", "recall", "f1", "auc"],
        OutputKind.Multiclass when transform is null or OutputTransform.Softmax => ["accuracy", "macroF1", "logLoss", "brier"],
        OutputKind.Multiclass => ["accuracy", "macroF1"],
        _ => ["accuracy"],
    };

    /// <summary>Probabilities are clipped into [ε, 1 − ε] for the log-loss, as scikit-learn does.</summary>
    private const double ProbabilityEpsilon = 1e-15;

    /// <summary>Whether a larger value of <paramref name="metric"/> is better.</summary>
    public static bool HigherIsBetter(string metric) => metric is "accuracy" or "precision" or "recall" or "f1" or "auc" or "macroF1" or "r2";

    /// <summary>Applies <paramref name="transform"/> to one row of raw outputs, in place.</summary>
    public static void Transform(OutputTransform transform, Span<double> row)
    {
        switch (transform)
        {
            case OutputTransform.Exp:
                for (int i = 0; i < row.Length; i++)
                {
                    row[i] = Math.Exp(row[i]);
                }
                break;
            case OutputTransform.Sigmoid:
                for (int i = 0; i < row.Length; i++)
                {
                    row[i] = Losses.StableMath.Sigmoid(row[i]);
                }
                break;
            case OutputTransform.Softmax:
                double max = double.NegativeInfinity, sum = 0;
                foreach (var v in row)
                {
                    max = Math.Max(max, v);
                }
                for (int i = 0; i < row.Length; i++)
                {
                    row[i] = Math.Exp(row[i] - max);
                    sum += row[i];
                }
                for (int i = 0; i < row.Length; i++)
                {
                    row[i] /= sum;
                }
                break;
        }
    }

    /// <summary>Computes the metrics of <paramref name="kind"/> from raw outputs [rows × outputs] and targets.</summary>
    /// <param name="kind">Output kind.</param>
    /// <param name="transform">How raw outputs become predictions.</param>
    /// <param name="outputs">Raw model outputs, row-major.</param>
    /// <param name="targets">Regression values [rows × outputs], 0/1 labels, class indices, or distributions.</param>
    /// <param name="rows">Number of rows.</param>
    /// <param name="width">Outputs per row.</param>
    public static Dictionary<string, double> Compute(OutputKind kind, OutputTransform transform, ReadOnlySpan<float> outputs,
        ReadOnlySpan<float> targets, int rows, int width)
    {
        var predictions = new double[rows * width];
        for (int r = 0; r < rows; r++)
        {
            var row = predictions.AsSpan(r * width, width);
            for (int c = 0; c < width; c++)
            {
                row[c] = outputs[r * width + c];
            }
            Transform(transform, row);
        }
        return kind switch
        {
            OutputKind.Regression => Regression(predictions, targets, rows, width),
            OutputKind.Binary => WithProbabilityScores(Binary(predictions, targets, rows, transform == OutputTransform.Identity ? 0.0 : 0.5),
                transform == OutputTransform.Sigmoid, predictions, targets, rows, 1),
            OutputKind.Multiclass => WithProbabilityScores(Multiclass(predictions, targets, rows, width, distribution: false),
                transform == OutputTransform.Softmax, predictions, targets, rows, width),
            _ => Multiclass(predictions, targets, rows, width, distribution: true),
        };
    }

    /// <summary>
    /// Adds the log-loss (mean −log p of the true class) and the Brier score (mean over rows of Σ_c (p_c − [c = y])², the
    /// original multi-class form; for one output, the binary form (p − y)²) when the outputs are probabilities.
    /// </summary>
    private static Dictionary<string, double> WithProbabilityScores(Dictionary<string, double> metrics, bool probabilities, double[] p,
        ReadOnlySpan<float> targets, int rows, int width)
    {
        if (!probabilities)
        {
            return metrics;
        }
        double logLoss = 0, brier = 0;
        for (int r = 0; r < rows; r++)
        {
            if (width == 1)
            {
                double y = targets[r] > 0.5f ? 1 : 0, q = Math.Clamp(p[r], ProbabilityEpsilon, 1 - ProbabilityEpsilon);
                logLoss -= y * Math.Log(q) + (1 - y) * Math.Log(1 - q);
                brier += (p[r] - y) * (p[r] - y);
                continue;
            }
            int actual = (int)targets[r];
            logLoss -= Math.Log(Math.Clamp(p[r * width + actual], ProbabilityEpsilon, 1 - ProbabilityEpsilon));
            for (int c = 0; c < width; c++)
            {
                double e = p[r * width + c] - (c == actual ? 1 : 0);
                brier += e * e;
            }
        }
        metrics["logLoss"] = logLoss / rows;
        metrics["brier"] = brier / rows;
        return metrics;
    }

    private static Dictionary<string, double> Regression(double[] predictions, ReadOnlySpan<float> targets, int rows, int width)
    {
        double squared = 0, absolute = 0, r2 = 0;
        for (int c = 0; c < width; c++)
        {
            double mean = 0;
            for (int r = 0; r < rows; r++)
            {
                mean += targets[r * width + c];
            }
            mean /= rows;
            double residual = 0, total = 0;
            for (int r = 0; r < rows; r++)
            {
                double y = targets[r * width + c], e = predictions[r * width + c] - y;
                residual += e * e;
                total += (y - mean) * (y - mean);
                absolute += Math.Abs(e);
            }
            squared += residual;
            // scikit-learn: a constant target gives r2 = 1 for a perfect fit, else 0.
            r2 += total > 0 ? 1 - residual / total : residual == 0 ? 1 : 0;
        }
        int n = rows * width;
        return new() { ["rmse"] = Math.Sqrt(squared / n), ["mae"] = absolute / n, ["r2"] = r2 / width };
    }

    private static Dictionary<string, double> Binary(double[] scores, ReadOnlySpan<float> targets, int rows, double threshold)
    {
        long tp = 0, fp = 0, tn = 0, fn = 0;
        for (int r = 0; r < rows; r++)
        {
            bool positive = targets[r] > 0.5f, predicted = scores[r] > threshold;
            if (predicted)
            {
                if (positive) tp++; else fp++;
            }
            else
            {
                if (positive) fn++; else tn++;
            }
        }
        double precision = tp + fp == 0 ? 0 : (double)tp / (tp + fp);
        double recall = tp + fn == 0 ? 0 : (double)tp / (tp + fn);
        return new()
        {
            ["accuracy"] = (double)(tp + tn) / rows,
            ["precision"] = precision,
            ["recall"] = recall,
            ["f1"] = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall),
            ["auc"] = Auc(scores, targets, rows),
        };
    }

    /// <summary>ROC AUC as the Mann–Whitney statistic with tied scores sharing ranks; NaN when one class is absent.</summary>
    private static double Auc(double[] scores, ReadOnlySpan<float> targets, int rows)
    {
        var order = Enumerable.Range(0, rows).ToArray();
        Array.Sort(scores[..rows], order);
        double positiveRankSum = 0;
        long positives = 0;
        for (int i = 0; i < rows;)
        {
            int j = i;
            while (j + 1 < rows && scores[order[j + 1]] == scores[order[i]])
            {
                j++;
            }
            double rank = (i + j) / 2.0 + 1;
            for (int k = i; k <= j; k++)
            {
                if (targets[order[k]] > 0.5f)
                {
                    positiveRankSum += rank;
                    positives++;
                }
            }
            i = j + 1;
        }
        long negatives = rows - positives;
        if (positives == 0 || negatives == 0)
        {
            return double.NaN;
        }
        return (positiveRankSum - positives * (positives + 1) / 2.0) / ((double)positives * negatives);
    }

    private static Dictionary<string, double> Multiclass(double[] probabilities, ReadOnlySpan<float> targets, int rows, int width, bool distribution)
    {
        var truePositives = new long[width];
        var predictedCounts = new long[width];
        var actualCounts = new long[width];
        long correct = 0;
        for (int r = 0; r < rows; r++)
        {
            int predicted = ArgMax(probabilities.AsSpan(r * width, width));
            int actual = distribution ? ArgMax(targets.Slice(r * width, width)) : (int)targets[r];
            predictedCounts[predicted]++;
            actualCounts[actual]++;
            if (predicted == actual)
            {
                correct++;
                truePositives[actual]++;
            }
        }
        var result = new Dictionary<string, double> { ["accuracy"] = (double)correct / rows };
        if (!distribution)
        {
            // scikit-learn's macro F1 averages over labels seen in either the targets or the predictions.
            double f1Sum = 0;
            int labels = 0;
            for (int c = 0; c < width; c++)
            {
                if (predictedCounts[c] + actualCounts[c] == 0)
                {
                    continue;
                }
                labels++;
                f1Sum += 2.0 * truePositives[c] / (predictedCounts[c] + actualCounts[c]);
            }
            result["macroF1"] = f1Sum / labels;
        }
        return result;
    }

    private static int ArgMax(ReadOnlySpan<double> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }
        return best;
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }
        return best;
    }
}
