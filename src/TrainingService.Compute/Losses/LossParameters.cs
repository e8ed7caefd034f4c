using System.Globalization;

namespace TrainingService.Compute.Losses;

/// <summary>The value type of a loss parameter.</summary>
public enum ParameterType
{
    /// <summary>A real number.</summary>
    Number,
    /// <summary>An integer.</summary>
    Integer,
    /// <summary>true or false.</summary>
    Boolean,
    /// <summary>One number per class.</summary>
    NumberArray,
}

/// <summary>A documented parameter of a loss: type, default and valid range.</summary>
/// <param name="Name">snake_case name as in PyTorch (camelCase spellings are accepted too).</param>
/// <param name="Type">Value type.</param>
/// <param name="Default">Default value (null: no default, optional).</param>
/// <param name="Range">Valid range in interval notation, e.g. "(0, ∞)" (null: any).</param>
/// <param name="Description">One line.</param>
public sealed record ParameterDefinition(string Name, ParameterType Type, object? Default, string? Range, string Description)
{
    internal Func<double, bool>? Accepts { get; init; }
    internal IReadOnlySet<double>? AllowedValues { get; init; }
}

/// <summary>
/// Parameter values given for one loss term, read with the definitions' defaults and checked against their ranges.
/// Values are <see cref="double"/>, <see cref="bool"/> or <see cref="double"/>[] (as parsed from JSON).
/// </summary>
public sealed class LossArguments
{
    private readonly Dictionary<string, object?> _values;
    private readonly string _fieldPrefix;

    /// <summary>Wraps raw values; names are matched case-insensitively, ignoring underscores.</summary>
    /// <param name="values">Raw values by name.</param>
    /// <param name="fieldPrefix">Prefix for error fields, e.g. <c>loss.terms[1]</c>.</param>
    public LossArguments(IReadOnlyDictionary<string, object?>? values, string fieldPrefix = "loss")
    {
        _fieldPrefix = fieldPrefix;
        _values = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in values ?? new Dictionary<string, object?>())
        {
            _values[Normalize(name)] = value;
        }
    }

    /// <summary>No parameters.</summary>
    public static LossArguments Empty { get; } = new(null);

    /// <summary>The lookup form of a parameter name: lower case, no underscores (label_smoothing = labelSmoothing).</summary>
    public static string Normalize(string name) => name.Replace("_", "", StringComparison.Ordinal).ToLowerInvariant();

    /// <summary>Rejects names that <paramref name="definitions"/> does not declare.</summary>
    internal void RejectUnknown(string lossName, IReadOnlyList<ParameterDefinition> definitions)
    {
        foreach (var name in _values.Keys)
        {
            if (!definitions.Any(d => Normalize(d.Name) == name))
            {
                var known = definitions.Count == 0 ? "none" : string.Join(", ", definitions.Select(d => d.Name));
                throw new LossSpecException("loss.unknown_parameter", $"{_fieldPrefix}.{name}",
                    $"Loss '{lossName}' has no parameter '{name}' (it takes: {known}).");
            }
        }
    }

    internal double Number(ParameterDefinition definition)
    {
        var value = Raw(definition);
        if (value is null)
        {
            return Convert.ToDouble(definition.Default, CultureInfo.InvariantCulture);
        }
        if (value is not double number)
        {
            throw Invalid(definition, "must be a number");
        }
        Check(definition, number);
        return number;
    }

    internal int Integer(ParameterDefinition definition)
    {
        double number = Number(definition);
        if (number != Math.Floor(number) || Math.Abs(number) > int.MaxValue)
        {
            throw Invalid(definition, "must be an integer");
        }
        return (int)number;
    }

    internal bool Boolean(ParameterDefinition definition)
    {
        var value = Raw(definition);
        return value switch
        {
            null => (bool)definition.Default!,
            bool b => b,
            _ => throw Invalid(definition, "must be true or false"),
        };
    }

    internal double[]? Numbers(ParameterDefinition definition)
    {
        var value = Raw(definition);
        switch (value)
        {
            case null:
                return null;
            case double single:
                Check(definition, single);
                return [single];
            case double[] array:
                foreach (var element in array)
                {
                    Check(definition, element);
                }
                return array;
            default:
                throw Invalid(definition, "must be a number or an array of numbers");
        }
    }

    private object? Raw(ParameterDefinition definition) =>
        _values.TryGetValue(Normalize(definition.Name), out var value) ? value : null;

    private void Check(ParameterDefinition definition, double value)
    {
        bool ok = double.IsFinite(value)
            && (definition.Accepts?.Invoke(value) ?? true)
            && (definition.AllowedValues?.Contains(value) ?? true);
        if (!ok)
        {
            throw new LossSpecException("loss.parameter_out_of_range", $"{_fieldPrefix}.{definition.Name}",
                $"Parameter '{definition.Name}' = {value.ToString(CultureInfo.InvariantCulture)} is outside its valid range {definition.Range}.");
        }
    }

    private LossSpecException Invalid(ParameterDefinition definition, string what) =>
        new("loss.invalid_parameter", $"{_fieldPrefix}.{definition.Name}", $"Parameter '{definition.Name}' {what}.");
}
