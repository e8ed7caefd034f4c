using System.Text.Json;
using System.Text.Json.Nodes;
using TrainingService.Compute.Training;
using TrainingService.Server.Configuration;
using TrainingService.Server.Infrastructure;
using TrainingService.Server.Jobs;

namespace TrainingService.Server.Sweeps;

/// <summary>
/// A sweep read into the shapes the sampler, the pruner and the scheduler use. Built from the normalised request, which is
/// what the sweep row stores, so every process reads the same definition back.
/// </summary>
public sealed record SweepDefinition(
    SubmitSweepRequest Normalized,
    JsonObject Base,
    IReadOnlyList<ParameterSpace> Spaces,
    SweepMethod Method,
    int MaxTrials,
    int MaxParallel,
    Objective Objective,
    EarlyTermination? EarlyTermination,
    int Seed)
{
    /// <summary>Whether a parameter changes the loss, so validation losses of its trials are not comparable.</summary>
    public bool VariesLoss => VariesTheLoss(Spaces);

    public static bool VariesTheLoss(IEnumerable<ParameterSpace> spaces) =>
        spaces.Any(s => s.Path == "loss" || s.Path.StartsWith("loss.", StringComparison.Ordinal));

    /// <summary>The trial's job spec: the base with each assigned path set (intermediate objects are created).</summary>
    public SubmitJobRequest TrialRequest(Assignment assignment) => assignment.AppliedTo(Base).Deserialize<SubmitJobRequest>(ApiJson.Requests)!;

    /// <summary>Reads a stored (already validated and normalised) sweep spec.</summary>
    public static SweepDefinition FromStored(string json)
    {
        var request = JsonSerializer.Deserialize<SubmitSweepRequest>(json, ApiJson.Options)!;
        var spaces = request.Parameters!.OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => SweepSpaces.Read(p.Key, p.Value, out _)!).ToList();
        var objective = new Objective(request.Objective!.Metric!, request.Objective.Goal == "minimize");
        return new SweepDefinition(request, JsonNode.Parse(request.Base!.Value.GetRawText())!.AsObject(), spaces,
            Enum.Parse<SweepMethod>(request.Method!, ignoreCase: true), request.MaxTrials!.Value, request.MaxParallel!.Value, objective,
            SweepSpaces.ReadEarlyTermination(request.EarlyTermination), request.Seed!.Value);
    }
}

/// <summary>Paths into a job spec: which exist (<see cref="Assignment.AppliedTo"/> sets them).</summary>
public static class SweepPaths
{
    /// <summary>
    /// Whether <paramref name="path"/> names a field of <see cref="SubmitJobRequest"/> (by its JSON name): each segment a
    /// property of the one before. Under <c>loss</c>, which is free-form JSON, any deeper segment is allowed (a loss
    /// parameter such as <c>loss.delta</c>); the job validator judges the value.
    /// </summary>
    public static bool Exists(string path)
    {
        var type = typeof(SubmitJobRequest);
        var segments = path.Split('.');
        for (int i = 0; i < segments.Length; i++)
        {
            var property = type.GetProperties().FirstOrDefault(p => JsonNamingPolicy.CamelCase.ConvertName(p.Name) == segments[i]);
            if (property is null)
            {
                return false;
            }
            var propertyType = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (propertyType == typeof(JsonElement))
            {
                return i == segments.Length - 1 || (i == 0 && segments[0] == "loss");
            }
            if (i < segments.Length - 1 && (propertyType.IsPrimitive || propertyType == typeof(string) || propertyType.IsGenericType))
            {
                return false; // a leaf with more segments after it
            }
            type = propertyType;
        }
        return true;
    }
}

/// <summary>Reading the search spaces and the early-termination rule of a sweep request, with the problem of a bad one.</summary>
public static class SweepSpaces
{
    /// <summary>The space of one parameter, or null with the problem (its field is <c>parameters.&lt;path&gt;</c>).</summary>
    public static ParameterSpace? Read(string path, ParameterRequest request, out ApiProblem? problem)
    {
        string field = $"parameters.{path}";
        problem = null;
        if (request.Values is not null && request.Distribution is not null)
        {
            problem = ApiProblem.BadRequest("sweep.invalid_parameter", $"Parameter '{path}' gives both values and a distribution; give one.", field);
            return null;
        }
        if (request.Values is { } values)
        {
            if (values.Count == 0)
            {
                problem = ApiProblem.BadRequest("sweep.empty_values", $"Parameter '{path}' has no values.", $"{field}.values");
                return null;
            }
            return new ChoiceSpace(path, values.Select(v => JsonNode.Parse(v.GetRawText())).ToList());
        }
        return ReadRange(path, request, field, out problem);
    }

    private static RangeSpace? ReadRange(string path, ParameterRequest request, string field, out ApiProblem? problem)
    {
        problem = null;
        RangeDistribution? distribution = request.Distribution switch
        {
            "uniform" => RangeDistribution.Uniform,
            "log_uniform" => RangeDistribution.LogUniform,
            "int_uniform" => RangeDistribution.IntUniform,
            _ => null,
        };
        if (distribution is null)
        {
            problem = request.Distribution is null
                ? ApiProblem.BadRequest("sweep.invalid_parameter", $"Parameter '{path}' needs values, or a distribution with min and max.", field)
                : ApiProblem.BadRequest("sweep.unknown_distribution",
                    $"Unknown distribution '{request.Distribution}'; use uniform, log_uniform or int_uniform.", $"{field}.distribution");
            return null;
        }
        if (request.Min is not { } min || request.Max is not { } max || !double.IsFinite(min) || !double.IsFinite(max))
        {
            problem = ApiProblem.BadRequest("sweep.invalid_range", $"Parameter '{path}' needs finite min and max.", field);
            return null;
        }
        if (min >= max)
        {
            problem = ApiProblem.BadRequest("sweep.empty_range", $"Parameter '{path}' has min {min} ≥ max {max}: an empty range.", $"{field}.min");
            return null;
        }
        if (distribution == RangeDistribution.LogUniform && min <= 0)
        {
            problem = ApiProblem.BadRequest("sweep.invalid_log_range", $"Parameter '{path}' is log_uniform, so min must be > 0 (it is {min}).", $"{field}.min");
            return null;
        }
        if (distribution == RangeDistribution.IntUniform && (min != Math.Floor(min) || max != Math.Floor(max)))
        {
            problem = ApiProblem.BadRequest("sweep.invalid_range", $"Parameter '{path}' is int_uniform, so min and max must be whole numbers.", field);
            return null;
        }
        return new RangeSpace(path, distribution.Value, min, max);
    }

    /// <summary>The rule, or null for none; assumes a request <see cref="SweepValidator"/> accepted and normalised.</summary>
    public static EarlyTermination? ReadEarlyTermination(EarlyTerminationRequest? request) => request is null ? null : new EarlyTermination(
        request.Type == "median" ? EarlyTerminationType.Median : EarlyTerminationType.Asha, request.MinEpochs!.Value,
        request.ReductionFactor!.Value, request.MinTrials!.Value);

    /// <summary>Whether larger values of the objective are better, by its metric's name.</summary>
    public static bool HigherIsBetter(string metric) => metric.StartsWith("val.", StringComparison.Ordinal) && Metrics.HigherIsBetter(metric[4..]);
}
