using TrainingService.Compute.Losses;
using TrainingService.Compute.Training;
using TrainingService.Server.Datasets;

namespace TrainingService.Server.Preprocessing;

/// <summary>What preprocessing did to the data, reported on the job.</summary>
public sealed record DataSummary
{
    public required long Rows { get; init; }
    public required long RowsDroppedMissingTarget { get; init; }
    public required long RowsDroppedMissingFeatures { get; init; }
    public required int TrainRows { get; init; }
    public required int ValidationRows { get; init; }
    public required IReadOnlyList<string> Features { get; init; }
    public required IReadOnlyList<string> Inputs { get; init; }
    public required IReadOnlyList<string> TargetColumns { get; init; }
    public IReadOnlyList<string>? Labels { get; init; }
    public IReadOnlyList<double>? ClassWeights { get; init; }
    /// <summary>The metrics each history row of this job carries.</summary>
    public required IReadOnlyList<string> Metrics { get; init; }
}

/// <summary>How class weights were asked for.</summary>
public enum ClassWeightMode
{
    None,
    /// <summary>scikit-learn's n / (C · count_c), counted on the training split.</summary>
    Balanced,
    Explicit,
}

/// <summary>What to prepare: columns, target, the split, missing values, scaling and class weights.</summary>
public sealed record PreprocessingSpec
{
    public required IReadOnlyList<ColumnSchema> Features { get; init; }
    public required TargetInfo Target { get; init; }
    /// <summary>Impute missing feature values (fitted on the training split) rather than drop their rows.</summary>
    public required bool ImputeMissing { get; init; }
    public required bool Standardize { get; init; }
    /// <summary>Share of rows held out for validation; 0 for none.</summary>
    public required double ValidationFraction { get; init; }
    public required bool Stratify { get; init; }
    /// <summary>Seeds the validation split.</summary>
    public required int Seed { get; init; }
    public required ClassWeightMode ClassWeightMode { get; init; }
    public double[]? ExplicitClassWeights { get; init; }
    /// <summary>The metrics each history row will carry, reported in the summary.</summary>
    public required IReadOnlyList<string> Metrics { get; init; }
}

/// <summary>Training and validation matrices, the fitted pipeline, and the resolved class weights.</summary>
public sealed record PreparedData(TrainingSet Train, TrainingSet? Validation, FeaturePipeline Pipeline, DataSummary Summary, double[]? ClassWeights);

/// <summary>
/// Turns loaded columns into training matrices: drops rows whose target is missing (always) or whose features are
/// missing (drop_rows), splits off the validation rows (seeded, stratified for classification), fits imputation and
/// standardization on the training rows only, and encodes both splits with that fit.
/// </summary>
public static class Preprocessor
{
    public static PreparedData Prepare(PreprocessingSpec spec, IReadOnlyDictionary<string, LoadedColumn> loaded, long rowCount)
    {
        int rows = checked((int)rowCount);
        var features = spec.Features.Select(f => loaded[f.Name]).ToList();
        var targets = spec.Target.Columns.Select(c => loaded[c]).ToList();
        var targetWidth = spec.Target.Task == LossTask.Multiclass ? 1 : spec.Target.Outputs;
        var targetValues = new float[(long)rows * targetWidth];

        var kept = new List<int>(rows);
        long missingTarget = 0, missingFeatures = 0;
        for (int r = 0; r < rows; r++)
        {
            if (!ReadTarget(spec, targets, r, targetValues.AsSpan(r * targetWidth, targetWidth)))
            {
                missingTarget++;
                continue;
            }
            if (!spec.ImputeMissing && features.Any(f => IsMissing(f, r)))
            {
                missingFeatures++;
                continue;
            }
            kept.Add(r);
        }
        if (kept.Count < 2)
        {
            throw new TrainingDataException("data.too_few_rows",
                $"Only {kept.Count} rows remain after dropping {missingTarget} with a missing target and {missingFeatures} with missing features.");
        }
        if (spec.Target.Task == LossTask.Distribution)
        {
            CheckDistributions(kept, targetValues, targetWidth);
        }

        var (trainRows, validationRows) = Split(spec, kept, targetValues, targetWidth);
        var pipeline = Fit(spec, features, trainRows);
        var classWeights = spec.ClassWeightMode switch
        {
            ClassWeightMode.Explicit => spec.ExplicitClassWeights,
            ClassWeightMode.Balanced => Balanced(trainRows, targetValues, spec.Target.Labels!.Count),
            _ => null,
        };
        var train = Encode(pipeline, features, trainRows, targetValues, targetWidth);
        var validation = validationRows.Count > 0 ? Encode(pipeline, features, validationRows, targetValues, targetWidth) : null;
        var summary = new DataSummary
        {
            Rows = rowCount,
            RowsDroppedMissingTarget = missingTarget,
            RowsDroppedMissingFeatures = missingFeatures,
            TrainRows = trainRows.Count,
            ValidationRows = validationRows.Count,
            Features = spec.Features.Select(f => f.Name).ToList(),
            Inputs = pipeline.InputNames,
            TargetColumns = spec.Target.Columns,
            Labels = spec.Target.Labels,
            ClassWeights = classWeights,
            Metrics = spec.Metrics,
        };
        return new PreparedData(train, validation, pipeline, summary, classWeights);
    }

    /// <summary>Reads a row's target(s); false when missing. Class labels become indices in the spec's label order.</summary>
    private static bool ReadTarget(PreprocessingSpec spec, List<LoadedColumn> targets, int row, Span<float> destination)
    {
        if (spec.Target.Labels is { } labels)
        {
            var column = targets[0];
            int index;
            if (column.Codes is { } codes)
            {
                index = codes[row]; // codes and labels both follow ColumnSchema.CategoriesInCodeOrder
            }
            else
            {
                double value = column.Numbers![row];
                if (double.IsNaN(value))
                {
                    return false;
                }
                index = column.Schema.Type == ColumnType.Boolean ? (int)value : ColumnResolver.LabelIndex(labels, CellValues.Canonical(value));
            }
            if (index < 0)
            {
                return false;
            }
            destination[0] = index;
            return true;
        }
        for (int c = 0; c < targets.Count; c++)
        {
            double value = targets[c].Numbers![row];
            if (double.IsNaN(value))
            {
                return false;
            }
            destination[c] = (float)value;
        }
        return true;
    }

    private static bool IsMissing(LoadedColumn column, int row) =>
        column.Codes is { } codes ? codes[row] < 0 : double.IsNaN(column.Numbers![row]);

    private static void CheckDistributions(List<int> rows, float[] targets, int width)
    {
        foreach (int r in rows)
        {
            double sum = 0;
            for (int c = 0; c < width; c++)
            {
                sum += targets[r * width + c];
            }
            if (Math.Abs(sum - 1) > 1e-4)
            {
                throw new TrainingDataException("data.invalid_distribution",
                    $"Data row {r + 1} (line {r + 2}): the target probabilities sum to {sum:G6}, not 1 (within 1e-4).");
            }
        }
    }

    /// <summary>A seeded shuffle, then the validation share taken per class (stratified) or overall.</summary>
    private static (List<int> Train, List<int> Validation) Split(PreprocessingSpec spec, List<int> kept, float[] targets, int width)
    {
        if (spec.ValidationFraction <= 0)
        {
            return (kept, []);
        }
        var random = new Random(spec.Seed ^ 0x5EED);
        var groups = spec.Stratify && spec.Target.Labels is not null
            ? kept.GroupBy(r => (int)targets[r * width]).OrderBy(g => g.Key).Select(g => g.ToList()).ToList()
            : [kept.ToList()];
        var train = new List<int>();
        var validation = new List<int>();
        foreach (var group in groups)
        {
            Shuffle(group, random);
            int take = (int)Math.Round(group.Count * spec.ValidationFraction, MidpointRounding.AwayFromZero);
            take = Math.Min(take, group.Count - 1);
            validation.AddRange(group.Take(take));
            train.AddRange(group.Skip(take));
        }
        if (validation.Count == 0)
        {
            validation.Add(train[^1]);
            train.RemoveAt(train.Count - 1);
        }
        train.Sort();
        validation.Sort();
        return (train, validation);
    }

    private static FeaturePipeline Fit(PreprocessingSpec spec, List<LoadedColumn> features, List<int> trainRows)
    {
        var encoders = new List<FeatureEncoder>(features.Count);
        foreach (var column in features)
        {
            if (column.Codes is { } codes)
            {
                var counts = new long[column.Categories!.Count];
                foreach (int r in trainRows)
                {
                    if (codes[r] >= 0)
                    {
                        counts[codes[r]]++;
                    }
                }
                encoders.Add(new FeatureEncoder
                {
                    Column = column.Schema.Name,
                    Type = column.Schema.Type,
                    Categories = column.Categories,
                    ImputeCategory = Array.IndexOf(counts, counts.Max()),
                });
                continue;
            }
            var moments = new ShiftedMoments();
            long ones = 0;
            foreach (int r in trainRows)
            {
                double v = column.Numbers![r];
                if (!double.IsNaN(v))
                {
                    moments.Add(v);
                    ones += v == 1 ? 1 : 0;
                }
            }
            long count = moments.Count;
            double mean = moments.Mean;
            double std = Math.Sqrt(moments.PopulationVariance);
            bool boolean = column.Schema.Type == ColumnType.Boolean;
            bool scale = spec.Standardize && !boolean;
            encoders.Add(new FeatureEncoder
            {
                Column = column.Schema.Name,
                Type = column.Schema.Type,
                Mean = scale ? mean : 0,
                Scale = scale && std > 0 ? std : 1,
                Impute = boolean ? (ones * 2 >= count ? 1 : 0) : mean,
            });
        }
        return new FeaturePipeline(encoders);
    }

    private static double[] Balanced(List<int> trainRows, float[] targets, int classes)
    {
        var counts = new long[classes];
        foreach (int r in trainRows)
        {
            counts[(int)targets[r]]++;
        }
        return counts.Select(c => c == 0 ? 0.0 : (double)trainRows.Count / (classes * c)).ToArray();
    }

    private static TrainingSet Encode(FeaturePipeline pipeline, List<LoadedColumn> features, List<int> rows, float[] targets, int width)
    {
        int inputs = pipeline.Width;
        var x = new float[(long)rows.Count * inputs];
        var y = new float[(long)rows.Count * width];
        for (int i = 0; i < rows.Count; i++)
        {
            pipeline.Encode(features, rows[i], x.AsSpan(i * inputs, inputs));
            Array.Copy(targets, (long)rows[i] * width, y, (long)i * width, width);
        }
        return new TrainingSet(x, y, rows.Count, inputs, width);
    }

    private static void Shuffle(List<int> items, Random random)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}

/// <summary>The data cannot be trained on as specified (found by the worker, after submission).</summary>
public sealed class TrainingDataException(string code, string message) : Exception(message)
{
    public string Code { get; } = code;
}
