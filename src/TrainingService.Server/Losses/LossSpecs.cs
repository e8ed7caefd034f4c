using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using TrainingService.Compute.Losses;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Losses;

/// <summary>
/// Reads a <c>loss</c> field as requests give it (a name, <c>{"name": …, params…}</c>, or
/// <c>{"terms": [{"name", "weight", params…}]}</c>) into the catalogue's term specs, and turns the loss library's
/// <see cref="LossSpecException"/> into a returned problem. Used by training specs and by <c>/api/losses/evaluate</c>.
/// </summary>
public static class LossSpecs
{
    /// <summary>Parses <paramref name="loss"/>; every name must be in the catalogue.</summary>
    public static bool TryParse(JsonElement loss, string field, [NotNullWhen(true)] out IReadOnlyList<LossTermSpec>? terms,
        [NotNullWhen(false)] out ApiProblem? problem)
    {
        terms = null;
        var parsed = new List<LossTermSpec>();
        problem = loss.ValueKind == JsonValueKind.String ? Add(new LossTermSpec(loss.GetString()!), parsed)
            : loss.TryGetProperty("terms", out var list) ? ParseTerms(list, $"{field}.terms", parsed)
            : ParseTerm(loss, field, withWeight: false, parsed);
        problem ??= CheckNames(parsed, field);
        if (problem is not null)
        {
            return false;
        }
        terms = parsed;
        return true;
    }

    /// <summary>JSON parameter values as the loss catalogue reads them: double, bool or double[].</summary>
    public static bool TryParameterValue(JsonElement value, string field, out object? parameter, [NotNullWhen(false)] out ApiProblem? problem)
    {
        problem = null;
        parameter = value.ValueKind switch
        {
            JsonValueKind.Number => value.GetDouble(),
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Null => null,
            JsonValueKind.Array when value.EnumerateArray().All(v => v.ValueKind == JsonValueKind.Number) =>
                value.EnumerateArray().Select(v => v.GetDouble()).ToArray(),
            _ => Invalid(out problem, ApiProblem.BadRequest("loss.invalid_parameter", $"Parameter '{field}' must be a number, true/false, or an array of numbers.", field)),
        };
        return problem is null;
    }

    /// <summary>Binds terms to an output layout: unknown or out-of-range parameters become a 400 problem.</summary>
    public static bool TryBind(IReadOnlyList<LossTermSpec> terms, LossBinding binding, string field, [NotNullWhen(true)] out CombinedLoss? loss,
        [NotNullWhen(false)] out ApiProblem? problem)
    {
        try
        {
            loss = CombinedLoss.Bind(terms, binding, field);
            problem = null;
            return true;
        }
        catch (LossSpecException e)
        {
            loss = null;
            problem = Problem(e);
            return false;
        }
    }

    /// <summary>The problem for a loss the library refused.</summary>
    public static ApiProblem Problem(LossSpecException e) => ApiProblem.BadRequest(e.Code, e.Message, e.Field);

    private static ApiProblem? ParseTerms(JsonElement terms, string field, List<LossTermSpec> parsed)
    {
        if (terms.ValueKind != JsonValueKind.Array || terms.GetArrayLength() == 0)
        {
            return ApiProblem.BadRequest("loss.empty", "loss.terms must be a non-empty array of {\"name\", \"weight\", …}.", field);
        }
        int i = 0;
        foreach (var term in terms.EnumerateArray())
        {
            if (ParseTerm(term, $"{field}[{i++}]", withWeight: true, parsed) is { } problem)
            {
                return problem;
            }
        }
        return null;
    }

    private static ApiProblem? ParseTerm(JsonElement term, string field, bool withWeight, List<LossTermSpec> parsed)
    {
        if (term.ValueKind != JsonValueKind.Object || !term.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String)
        {
            return ApiProblem.BadRequest("loss.missing_name", "Each loss needs a \"name\" (see GET /api/losses).", $"{field}.name");
        }
        double weight = 1.0;
        var parameters = new Dictionary<string, object?>();
        foreach (var property in term.EnumerateObject())
        {
            if (property.NameEquals("name"))
            {
                continue;
            }
            if (withWeight && string.Equals(property.Name, "weight", StringComparison.OrdinalIgnoreCase))
            {
                if (property.Value.ValueKind != JsonValueKind.Number)
                {
                    return ApiProblem.BadRequest("loss.invalid_parameter",
                        "In a combined loss, 'weight' is the term's weight (a number); give per-class weights with classWeights.", $"{field}.weight");
                }
                weight = property.Value.GetDouble();
                continue;
            }
            if (!TryParameterValue(property.Value, $"{field}.{property.Name}", out var value, out var problem))
            {
                return problem;
            }
            parameters[property.Name] = value;
        }
        return Add(new LossTermSpec(name.GetString()!, parameters, weight), parsed);
    }

    private static ApiProblem? CheckNames(List<LossTermSpec> terms, string field)
    {
        for (int i = 0; i < terms.Count; i++)
        {
            if (!LossCatalog.TryFind(terms[i].Name, out _))
            {
                return ApiProblem.BadRequest("loss.unknown", $"Unknown loss '{terms[i].Name}'. Known losses: {string.Join(", ", LossCatalog.All.Select(d => d.Name))}.",
                    $"{CombinedLoss.TermField(terms.Count, i, field)}.name");
            }
        }
        return null;
    }

    private static ApiProblem? Add(LossTermSpec term, List<LossTermSpec> parsed)
    {
        parsed.Add(term);
        return null;
    }

    private static object? Invalid(out ApiProblem? problem, ApiProblem value)
    {
        problem = value;
        return null;
    }
}
