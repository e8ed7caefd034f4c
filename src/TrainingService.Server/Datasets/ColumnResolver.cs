using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using TrainingService.Compute.Losses;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Datasets;

/// <summary>What the model predicts: the task, the target columns, and for classification the label order.</summary>
/// <param name="Task">Regression, binary, multiclass or distribution.</param>
/// <param name="Columns">Target column names.</param>
/// <param name="Labels">Class labels in index order (sorted: numbers ascending, text ordinally, false before true).</param>
/// <param name="Outputs">Model outputs.</param>
public sealed record TargetInfo(LossTask Task, IReadOnlyList<string> Columns, IReadOnlyList<string>? Labels, int Outputs);

/// <summary>
/// Resolves the column names of a spec against a dataset's schema: the target (which tasks it supports and, for a label
/// column, its class labels in index order) and the features. Mismatches with the data are 422 problems naming the field.
/// </summary>
public static class ColumnResolver
{
    /// <summary>
    /// The target for losses that fit <paramref name="lossTasks"/>: the first of those tasks the columns support.
    /// </summary>
    public static bool TryResolveTarget(IReadOnlyList<ColumnSchema> columns, IReadOnlyList<string> names, IReadOnlyList<LossTask> lossTasks,
        string lossName, [NotNullWhen(true)] out TargetInfo? target, [NotNullWhen(false)] out ApiProblem? problem)
    {
        target = null;
        var targets = new List<ColumnSchema>(names.Count);
        for (int i = 0; i < names.Count; i++)
        {
            string field = names.Count == 1 ? "target" : $"target[{i}]";
            if (!TryFind(columns, names[i], field, out var column, out problem))
            {
                return false;
            }
            if (!column.Usable)
            {
                problem = ApiProblem.Unprocessable("job.unusable_column", $"Column '{column.Name}' is {column.Type} and cannot be a target. {column.Note}", field);
                return false;
            }
            targets.Add(column);
        }
        var (possible, description, labels) = Describe(targets);
        var task = lossTasks.FirstOrDefault(possible.Contains, (LossTask)(-1));
        problem = (int)task == -1 ? Mismatch(targets, lossTasks, lossName, description, labels)
            : task == LossTask.Binary && labels!.Count != 2 ? ApiProblem.Unprocessable("job.loss_target_mismatch",
                $"Loss '{lossName}' is binary, but target '{targets[0].Name}' has {labels.Count} classes; use cross_entropy.", "loss",
                new Dictionary<string, object?> { ["loss"] = lossName, ["target"] = new[] { targets[0].Name } })
            : null;
        if (problem is not null)
        {
            return false;
        }
        target = task switch
        {
            LossTask.Binary => new TargetInfo(task, [targets[0].Name], labels, 1),
            LossTask.Multiclass => new TargetInfo(task, [targets[0].Name], labels, labels!.Count),
            _ => new TargetInfo(task, targets.Select(t => t.Name).ToList(), null, targets.Count),
        };
        return true;
    }

    /// <summary>The named features, or every usable column except the target when <paramref name="names"/> is null.</summary>
    public static bool TryResolveFeatures(IReadOnlyList<ColumnSchema> columns, IReadOnlyList<string>? names, IReadOnlyList<string> targetNames,
        [NotNullWhen(true)] out List<ColumnSchema>? features, [NotNullWhen(false)] out ApiProblem? problem)
    {
        features = names is null ? columns.Where(c => c.Usable && !targetNames.Contains(c.Name)).ToList() : [];
        problem = null;
        for (int i = 0; names is not null && i < names.Count; i++)
        {
            if (!TryFind(columns, names[i], $"features[{i}]", out var column, out problem))
            {
                features = null;
                return false;
            }
            features.Add(column);
        }
        for (int i = 0; names is not null && i < features.Count && problem is null; i++)
        {
            var column = features[i];
            problem = !column.Usable
                ? ApiProblem.Unprocessable("job.unusable_column", $"Column '{column.Name}' is {column.Type} and cannot be a feature. {column.Note}", $"features[{i}]")
                : targetNames.Contains(column.Name) ? ApiProblem.Unprocessable("job.target_in_features", $"Column '{column.Name}' is the target.", $"features[{i}]")
                : null;
        }
        if (problem is null && features.Select(f => f.Name).Distinct().Count() != features.Count)
        {
            problem = ApiProblem.BadRequest("job.duplicate_feature", "A column is listed twice in features.", "features");
        }
        if (problem is null && features.Count == 0)
        {
            problem = ApiProblem.Unprocessable("job.no_features", "No usable feature columns remain besides the target.", "features");
        }
        features = problem is null ? features : null;
        return problem is null;
    }

    /// <summary>Class labels of a label column in index order, or null for a continuous column.</summary>
    public static IReadOnlyList<string>? Labels(ColumnSchema column)
    {
        if (column.Values is null || column.DistinctCapped)
        {
            return null;
        }
        return column.Type switch
        {
            ColumnType.Numeric when column.Integral == true =>
                column.Values.Select(v => v.Value).OrderBy(v => double.Parse(v, CultureInfo.InvariantCulture)).ToList(),
            ColumnType.Boolean => column.Values.Select(v => v.Value.Trim().ToLowerInvariant()).Distinct().OrderBy(v => v == "true").ToList(),
            ColumnType.Categorical => column.CategoriesInCodeOrder(),
            _ => null,
        };
    }

    /// <summary>A label's index; a numeric label also matches by value ("1" and "1.0"), a boolean in any case.</summary>
    public static int LabelIndex(IReadOnlyList<string> labels, string label)
    {
        for (int i = 0; i < labels.Count; i++)
        {
            if (labels[i] == label || labels[i] == CellValues.Key(label) || labels[i] == label.Trim().ToLowerInvariant() && labels[i] is "true" or "false")
            {
                return i;
            }
        }
        return -1;
    }

    private static bool TryFind(IReadOnlyList<ColumnSchema> columns, string name, string field, [NotNullWhen(true)] out ColumnSchema? column,
        [NotNullWhen(false)] out ApiProblem? problem)
    {
        column = columns.FirstOrDefault(c => c.Name == name);
        problem = column is not null ? null : ApiProblem.Unprocessable("job.unknown_column",
            $"The dataset has no column '{name}'. Columns: {string.Join(", ", columns.Take(50).Select(c => c.Name))}{(columns.Count > 50 ? ", …" : "")}.", field);
        return column is not null;
    }

    private static ApiProblem Mismatch(List<ColumnSchema> targets, IReadOnlyList<LossTask> lossTasks, string lossName, string description,
        IReadOnlyList<string>? labels)
    {
        if (labels is { Count: 1 } && lossTasks.Any(t => t is LossTask.Binary or LossTask.Multiclass))
        {
            return ApiProblem.Unprocessable("job.single_class_target",
                $"Target '{targets[0].Name}' has a single class ('{labels[0]}'); classification needs at least two.", "target");
        }
        return ApiProblem.Unprocessable("job.loss_target_mismatch",
            $"Loss '{lossName}' fits {string.Join(" or ", lossTasks.Select(t => t.ToString().ToLowerInvariant()))} targets, but the target is {description}.",
            "loss", new Dictionary<string, object?> { ["loss"] = lossName, ["target"] = targets.Select(t => t.Name).ToList() });
    }

    /// <summary>Which tasks a target supports, in words, and its class labels when it is a label column.</summary>
    private static (List<LossTask> Tasks, string Description, IReadOnlyList<string>? Labels) Describe(List<ColumnSchema> targets)
    {
        if (targets.Count > 1)
        {
            var tasks = new List<LossTask>();
            if (targets.All(t => t.Type == ColumnType.Numeric))
            {
                tasks.Add(LossTask.Regression);
                if (targets.All(t => t.Stats is { Min: >= 0, Max: <= 1 }))
                {
                    tasks.Add(LossTask.Distribution);
                }
            }
            return (tasks, $"{targets.Count} columns" + (tasks.Contains(LossTask.Distribution) ? " of probabilities"
                : tasks.Count > 0 ? " of numbers (not all in [0, 1])" : " that are not all numeric"), null);
        }
        var column = targets[0];
        var labels = Labels(column);
        var possible = new List<LossTask>();
        if (column.Type == ColumnType.Numeric)
        {
            possible.Add(LossTask.Regression);
        }
        if (labels is { Count: >= 2 })
        {
            possible.AddRange(labels.Count == 2 ? [LossTask.Binary, LossTask.Multiclass] : [LossTask.Multiclass]);
        }
        string description = column.Type == ColumnType.Numeric && labels is null
            ? $"'{column.Name}', a continuous numeric column ({(column.DistinctCapped ? $"more than {column.Distinct}" : column.Distinct.ToString(CultureInfo.InvariantCulture))} distinct values" +
                (column.Integral == false ? ", not all whole numbers)" : ")")
            : $"'{column.Name}', a {column.Type} column with {labels?.Count ?? 0} classes";
        return (possible, description, labels);
    }
}
