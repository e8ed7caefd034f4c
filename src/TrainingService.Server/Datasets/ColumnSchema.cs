namespace TrainingService.Server.Datasets;

/// <summary>Inferred column types.</summary>
public static class ColumnType
{
    /// <summary>Every non-missing cell is a finite number.</summary>
    public const string Numeric = "numeric";
    /// <summary>Every non-missing cell is true or false (any case).</summary>
    public const string Boolean = "boolean";
    /// <summary>Text with at most Datasets:MaxCategories distinct values.</summary>
    public const string Categorical = "categorical";
    /// <summary>ISO 8601 dates or date-times; reported, not used as features.</summary>
    public const string Datetime = "datetime";
    /// <summary>Free text (too many distinct values); reported, not used as features.</summary>
    public const string Text = "text";
}

/// <summary>Summary statistics of a numeric column (standard deviation with n − 1).</summary>
public sealed record NumericStats(double Min, double Max, double Mean, double Std);

/// <summary>A distinct value and how often it occurs.</summary>
public sealed record CategoryCount(string Value, long Count);

/// <summary>
/// A column as stored with the dataset: name exactly as written, inferred type, missing count, statistics, and for
/// columns with few distinct values every value with its count (the label and one-hot vocabularies).
/// </summary>
public sealed record ColumnSchema
{
    public required string Name { get; init; }
    public required int Index { get; init; }
    public required string Type { get; init; }
    /// <summary>Whether the column can be a feature (numeric, boolean, categorical).</summary>
    public required bool Usable { get; init; }
    /// <summary>Cells that are empty, NA, N/A, null or NaN (any case).</summary>
    public required long Missing { get; init; }
    /// <summary>Distinct non-missing values, counted up to Datasets:MaxCategories (see <see cref="DistinctCapped"/>).</summary>
    public required int Distinct { get; init; }
    /// <summary>True when there are more distinct values than were counted.</summary>
    public required bool DistinctCapped { get; init; }
    /// <summary>For numeric columns.</summary>
    public NumericStats? Stats { get; init; }
    /// <summary>For numeric columns: every value is a whole number.</summary>
    public bool? Integral { get; init; }
    /// <summary>Every distinct value with its count, most frequent first, when not capped.</summary>
    public IReadOnlyList<CategoryCount>? Values { get; init; }
    /// <summary>Why the column cannot be a feature, when it cannot.</summary>
    public string? Note { get; init; }

    /// <summary>
    /// A categorical column's categories in code order (ordinal string order): the one order behind stored codes,
    /// one-hot positions and class labels.
    /// </summary>
    public List<string> CategoriesInCodeOrder() => Values!.Select(v => v.Value).OrderBy(v => v, StringComparer.Ordinal).ToList();
}
