using System.Globalization;
using System.Text.Json;
using TrainingService.Server.Datasets;

namespace TrainingService.Server.Preprocessing;

/// <summary>
/// How one input column becomes model inputs, as fitted on the training split: numeric and boolean columns give one
/// input (numeric standardized with the training mean and deviation), categorical columns one input per category
/// (one-hot; a category never seen in the dataset encodes as all zeros). Missing values take the fitted imputation value.
/// </summary>
public sealed record FeatureEncoder
{
    public required string Column { get; init; }
    /// <summary>numeric, boolean or categorical.</summary>
    public required string Type { get; init; }
    /// <summary>Subtracted before scaling (0 when not standardizing).</summary>
    public double Mean { get; init; }
    /// <summary>Divided by (1 when not standardizing; a constant column also gets 1).</summary>
    public double Scale { get; init; } = 1;
    /// <summary>Numeric and boolean: the value a missing cell takes (training mean, or majority for booleans).</summary>
    public double Impute { get; init; }
    /// <summary>Categorical: the one-hot vocabulary, ordinally sorted.</summary>
    public IReadOnlyList<string>? Categories { get; init; }
    /// <summary>Categorical: the index a missing cell takes (most frequent category in the training split).</summary>
    public int ImputeCategory { get; init; }

    public int Width => Categories?.Count ?? 1;

    /// <summary>A numeric or boolean value as the model sees it.</summary>
    public float Standardize(double value) => (float)((value - Mean) / Scale);
}

/// <summary>The fitted input encoding of a model: used for training, stored with the model, and applied by predict.</summary>
public sealed record FeaturePipeline(IReadOnlyList<FeatureEncoder> Encoders)
{
    /// <summary>Number of model inputs.</summary>
    public int Width => Encoders.Sum(e => e.Width);

    /// <summary>Names of the model inputs, e.g. <c>age</c>, <c>colour=red</c>.</summary>
    public IReadOnlyList<string> InputNames => Encoders
        .SelectMany(e => e.Categories is null ? [e.Column] : e.Categories.Select(c => $"{e.Column}={c}"))
        .ToList();

    /// <summary>Encodes row <paramref name="row"/> of loaded columns into <paramref name="destination"/>.</summary>
    public void Encode(IReadOnlyList<LoadedColumn> columns, int row, Span<float> destination)
    {
        int position = 0;
        for (int i = 0; i < Encoders.Count; i++)
        {
            var encoder = Encoders[i];
            if (encoder.Categories is { } categories)
            {
                int code = columns[i].Codes![row];
                destination.Slice(position, categories.Count).Clear();
                destination[position + (code < 0 ? encoder.ImputeCategory : code)] = 1f;
                position += categories.Count;
            }
            else
            {
                double value = columns[i].Numbers![row];
                destination[position++] = encoder.Standardize(double.IsNaN(value) ? encoder.Impute : value);
            }
        }
    }

    /// <summary>
    /// Encodes one prediction row given as JSON values by column name; records imputations and unseen categories
    /// in <paramref name="notes"/>.
    /// </summary>
    public void Encode(IReadOnlyDictionary<string, JsonElement> row, Span<float> destination, List<string> notes)
    {
        int position = 0;
        foreach (var encoder in Encoders)
        {
            var value = row[encoder.Column];
            bool missing = value.ValueKind == JsonValueKind.Null || (value.ValueKind == JsonValueKind.String && CellValues.IsMissing(value.GetString()));
            if (encoder.Categories is { } categories)
            {
                destination.Slice(position, categories.Count).Clear();
                int code = encoder.ImputeCategory;
                if (missing)
                {
                    notes.Add($"{encoder.Column}: missing, imputed as '{categories[code]}'");
                }
                else
                {
                    string key = CellValues.Key(Text(value));
                    code = IndexOf(categories, key);
                    if (code < 0)
                    {
                        notes.Add($"{encoder.Column}: category '{key}' was not in the training data, encoded as all zeros");
                    }
                }
                if (code >= 0)
                {
                    destination[position + code] = 1f;
                }
                position += categories.Count;
                continue;
            }
            double number;
            if (missing)
            {
                number = encoder.Impute;
                notes.Add($"{encoder.Column}: missing, imputed as {number.ToString(CultureInfo.InvariantCulture)}");
            }
            else
            {
                number = Number(encoder, value);
            }
            float encoded = encoder.Standardize(number);
            if (!float.IsFinite(encoded))
            {
                // 1e400 arrives as infinity and 1e39 overflows float: refused like the string "Infinity", not predicted as NaN.
                throw new FormatException($"{encoder.Column}: {Text(value)} is not a finite number the model can take");
            }
            destination[position++] = encoded;
        }
    }

    private static double Number(FeatureEncoder encoder, JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.Number)
        {
            return value.GetDouble();
        }
        if (value.ValueKind is JsonValueKind.True or JsonValueKind.False && encoder.Type == ColumnType.Boolean)
        {
            return value.ValueKind == JsonValueKind.True ? 1 : 0;
        }
        string text = Text(value);
        if (CellValues.TryNumber(text, out double number))
        {
            return number;
        }
        if (encoder.Type == ColumnType.Boolean && CellValues.TryBoolean(text, out bool flag))
        {
            return flag ? 1 : 0;
        }
        throw new FormatException($"{encoder.Column}: '{text}' is not a {encoder.Type} value");
    }

    private static string Text(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString()!,
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        _ => value.GetRawText(),
    };

    private static int IndexOf(IReadOnlyList<string> categories, string key)
    {
        for (int i = 0; i < categories.Count; i++)
        {
            if (categories[i] == key)
            {
                return i;
            }
        }
        return -1;
    }
}
