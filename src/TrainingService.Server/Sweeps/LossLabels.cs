using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using TrainingService.Compute.Losses;

namespace TrainingService.Server.Sweeps;

/// <summary>
/// One spelling per loss, so trials group by the function they trained with rather than by how the spec was written:
/// <c>"mae"</c>, <c>{"name": "l1"}</c> and <c>{"name": "L1"}</c> are one loss, as are <c>{"name": "huber"}</c> and
/// <c>{"delta": 1.0, "name": "huber"}</c>.
/// </summary>
public static class LossLabels
{
    /// <summary>
    /// The canonical form of a job spec's <c>loss</c>: <c>{"name", params…}</c> with the catalogue's name (aliases
    /// resolved), every parameter the loss declares (given, else its default; unset array parameters stay out) under the
    /// catalogue's spelling, keys sorted and numbers written as doubles. Combined losses keep their terms, each with its
    /// weight, sorted (a sum does not depend on order). Names the catalogue does not know are kept, lower-cased.
    /// </summary>
    public static JsonObject Canonical(JsonNode? loss) => loss switch
    {
        JsonValue value when value.GetValueKind() == JsonValueKind.String => Term(value.GetValue<string>(), [], withWeight: false),
        JsonObject { } spec when spec["terms"] is JsonArray terms => new JsonObject
        {
            ["terms"] = new JsonArray(terms.OfType<JsonObject>().Select(t => TermOf(t, withWeight: true))
                .OrderBy(t => t.ToJsonString(), StringComparer.Ordinal).Select(t => (JsonNode?)t).ToArray()),
        },
        JsonObject spec => TermOf(spec, withWeight: false),
        _ => new JsonObject { ["name"] = loss?.ToJsonString() ?? "null" },
    };

    /// <summary>"huber (delta 1)", "mse", "huber (delta 1) + 0.5 × l1": how the verdict names a canonical loss.</summary>
    public static string Label(JsonObject canonical)
    {
        if (canonical["terms"] is JsonArray terms)
        {
            return string.Join(" + ", terms.OfType<JsonObject>().Select(t =>
                Assignment.Number(t["weight"]) is { } w && w != 1 ? $"{Format(w)} × {TermLabel(t, "weight")}" : TermLabel(t, "weight")));
        }
        return TermLabel(canonical, null);
    }

    /// <summary>The catalogue name of a single-term canonical loss, or null for a combined one.</summary>
    internal static string? Name(JsonObject canonical) => canonical["name"]?.GetValue<string>();

    private static JsonObject TermOf(JsonObject spec, bool withWeight)
    {
        string name = spec["name"] is JsonValue n && n.GetValueKind() == JsonValueKind.String ? n.GetValue<string>() : "";
        var given = spec.Where(p => p.Key != "name").Select(p => (p.Key, p.Value)).ToList();
        return Term(name, given, withWeight);
    }

    private static JsonObject Term(string name, List<(string Key, JsonNode? Value)> given, bool withWeight)
    {
        var parameters = new SortedDictionary<string, JsonNode?>(StringComparer.Ordinal);
        if (withWeight)
        {
            parameters["weight"] = JsonValue.Create(1.0);
        }
        bool known = LossCatalog.TryFind(name, out var definition);
        if (known)
        {
            foreach (var parameter in definition.Parameters.Where(p => p.Default is not null))
            {
                parameters[parameter.Name] = DefaultValue(parameter.Default!);
            }
        }
        foreach (var (key, value) in given)
        {
            // The catalogue matches parameter names ignoring case and underscores (posWeight = pos_weight).
            string spelling = known && definition.Parameters.FirstOrDefault(p => LossArguments.Normalize(p.Name) == LossArguments.Normalize(key)) is { } declared
                ? declared.Name
                : withWeight && key.Equals("weight", StringComparison.OrdinalIgnoreCase) ? "weight" : key;
            parameters[spelling] = Normalised(value);
        }
        var term = new JsonObject { ["name"] = known ? definition.Name : name.ToLowerInvariant() };
        foreach (var (key, value) in parameters)
        {
            term[key] = value;
        }
        return term;
    }

    private static JsonNode DefaultValue(object value) => value switch
    {
        bool b => JsonValue.Create(b),
        _ => JsonValue.Create(Convert.ToDouble(value, CultureInfo.InvariantCulture)),
    };

    /// <summary>Numbers as doubles (1 and 1.0 are one value), objects with sorted keys, recursively.</summary>
    private static JsonNode? Normalised(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => new KeyValuePair<string, JsonNode?>(p.Key, Normalised(p.Value)))),
        JsonArray a => new JsonArray(a.Select(Normalised).ToArray()),
        _ when Assignment.Number(node) is { } number => JsonValue.Create(number),
        _ => node?.DeepClone(),
    };

    private static string TermLabel(JsonObject term, string? skip)
    {
        var parameters = term.Where(p => p.Key != "name" && p.Key != skip).Select(p => $"{p.Key} {FormatValue(p.Value)}").ToList();
        string name = term["name"]?.ToString() ?? "?";
        return parameters.Count == 0 ? name : $"{name} ({string.Join(", ", parameters)})";
    }

    private static string FormatValue(JsonNode? value) => value switch
    {
        JsonArray a => $"[{string.Join(", ", a.Select(FormatValue))}]",
        _ when Assignment.Number(value) is { } number => Format(number),
        _ => value?.ToJsonString() ?? "null",
    };

    internal static string Format(double value) => value.ToString("G4", CultureInfo.InvariantCulture);
}
