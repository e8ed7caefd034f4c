using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace TrainingService.Server.Sweeps;

/// <summary>
/// One parameter's search space. <paramref name="Path"/> is a dotted path into the job spec
/// (<c>optimizer.learningRate</c>, <c>loss</c>, <c>model.hiddenLayers</c>), so any field of a job can be searched.
/// </summary>
public abstract record ParameterSpace(string Path);

/// <summary>A list of values (<c>{"values": [...]}</c>), each any JSON: numbers, arrays, whole loss objects.</summary>
public sealed record ChoiceSpace(string Path, IReadOnlyList<JsonNode?> Values) : ParameterSpace(Path);

/// <summary>A numeric range, both ends included (<c>{"distribution": "log_uniform", "min": 1e-4, "max": 1e-1}</c>).</summary>
public sealed record RangeSpace(string Path, RangeDistribution Distribution, double Min, double Max) : ParameterSpace(Path)
{
    /// <summary>The integers an <c>int_uniform</c> range holds: ⌈min⌉ … ⌊max⌋.</summary>
    public (long First, long Last) IntegerBounds => ((long)Math.Ceiling(Min), (long)Math.Floor(Max));
}

/// <summary>How a <see cref="RangeSpace"/> is drawn.</summary>
public enum RangeDistribution
{
    /// <summary>Uniform on [min, max].</summary>
    Uniform,
    /// <summary>Uniform in log space: each decade is as likely as the next (learning rates, regularisation).</summary>
    LogUniform,
    /// <summary>A uniform integer in [min, max], both ends included.</summary>
    IntUniform,
}

/// <summary>How a sweep picks its trials' parameters.</summary>
public enum SweepMethod
{
    /// <summary>Every combination once, in order.</summary>
    Grid,
    /// <summary>Independent draws.</summary>
    Random,
    /// <summary>Tree-structured Parzen estimator (Optuna's default): draws where good trials were, away from bad ones.</summary>
    Tpe,
}

/// <summary>One trial's parameter values, path → value, in the order of the search's parameters.</summary>
public sealed record Assignment(IReadOnlyList<KeyValuePair<string, JsonNode?>> Values)
{
    /// <summary>The value at <paramref name="path"/>; false when the assignment does not set it.</summary>
    public bool TryGet(string path, out JsonNode? value)
    {
        foreach (var (key, node) in Values)
        {
            if (key == path)
            {
                value = node;
                return true;
            }
        }
        value = null;
        return false;
    }

    /// <summary><c>{"optimizer.learningRate": 0.003, "loss": {"name": "huber"}}</c>: what a trial reports as its parameters.</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject();
        foreach (var (path, value) in Values)
        {
            json[path] = value?.DeepClone();
        }
        return json;
    }

    /// <summary>Reads <see cref="ToJson"/>'s form back (a trial's stored parameters), keeping its order.</summary>
    public static Assignment FromJson(JsonObject json) =>
        new(json.Select(p => new KeyValuePair<string, JsonNode?>(p.Key, p.Value?.DeepClone())).ToList());

    /// <summary>
    /// A copy of <paramref name="spec"/> (a job spec as JSON) with every value written at its dotted path, creating the
    /// objects on the way (<c>optimizer.learningRate</c> creates <c>optimizer</c> when the base spec has none).
    /// </summary>
    public JsonObject AppliedTo(JsonObject spec)
    {
        var copy = spec.DeepClone().AsObject();
        foreach (var (path, value) in Values)
        {
            string[] parts = path.Split('.');
            var target = copy;
            foreach (string part in parts[..^1])
            {
                if (target[part] is not JsonObject next)
                {
                    next = new JsonObject();
                    target[part] = next;
                }
                target = next;
            }
            target[parts[^1]] = value?.DeepClone();
        }
        return copy;
    }

    /// <summary>A JSON number's value, whatever .NET type the node was built from (long, double, a parsed element).</summary>
    internal static double? Number(JsonNode? node) =>
        node is JsonValue value && value.GetValueKind() == JsonValueKind.Number
            ? double.Parse(value.ToJsonString(), CultureInfo.InvariantCulture)
            : null;
}

/// <summary>
/// A trial the sampler may learn from: its assignment and its objective normalised so that lower is better (a maximised
/// metric is negated), or null when it has no value (failed, cancelled, still running).
/// </summary>
public sealed record ObservedTrial(int Index, Assignment Assignment, double? Objective);
