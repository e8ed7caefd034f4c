using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using TrainingService.Compute.Training;
using TrainingService.Server.Configuration;
using TrainingService.Server.Infrastructure;
using TrainingService.Server.Jobs;

namespace TrainingService.Server.Sweeps;

/// <summary>
/// Checks a sweep before anything is stored: the base spec plans against its dataset, every parameter names a field of a
/// job spec and every value of it (each end of a range) makes a spec that plans too, the grid fits, and the objective is a
/// metric every trial reports and that compares trials (not the validation loss when the loss varies). Returns the
/// normalised request (defaults filled in, seed resolved), which is what the sweep row stores.
/// </summary>
public sealed class SweepValidator(JobSubmitter submitter, IOptions<SweepOptions> options)
{
    public async Task<(SweepDefinition? Sweep, ApiProblem? Problem)> ValidateAsync(string tenant, SubmitSweepRequest request, CancellationToken cancellationToken)
    {
        if (request.Base is not { ValueKind: JsonValueKind.Object } baseJson)
        {
            return (null, ApiProblem.BadRequest("sweep.missing_base", "A sweep needs \"base\": an ordinary job spec, as for POST /api/jobs.", "base"));
        }
        var baseSpec = JsonNode.Parse(baseJson.GetRawText())!.AsObject();
        var (spaces, spaceProblem) = ReadSpaces(request, options.Value);
        if (spaceProblem is not null)
        {
            return (null, spaceProblem);
        }
        // The base is checked with each parameter at its first value, so a base may leave out what the sweep sets (its loss).
        var first = new Assignment(spaces.Select(s => new KeyValuePair<string, JsonNode?>(s.Path, Candidates(s).First().Value)).ToList())
            .AppliedTo(baseSpec);
        var (basePlan, problem) = await PlanAsync(tenant, first, "base", cancellationToken);
        if (basePlan is null)
        {
            return (null, problem);
        }
        var (plans, valueProblem) = await PlanValuesAsync(tenant, spaces, first, cancellationToken);
        if (valueProblem is not null)
        {
            return (null, valueProblem);
        }
        plans.Add(basePlan);
        return Normalise(request, spaces, plans);
    }

    /// <summary>The request with its method, counts, objective and early termination checked and their defaults filled in.</summary>
    private (SweepDefinition? Sweep, ApiProblem? Problem) Normalise(SubmitSweepRequest request, List<ParameterSpace> spaces, List<JobPlan> plans)
    {
        var method = request.Method ?? "random";
        if (method is not ("grid" or "random" or "tpe"))
        {
            return (null, ApiProblem.BadRequest("sweep.unknown_method", $"Unknown method '{method}'; use grid, random or tpe.", "method"));
        }
        var (maxTrials, countProblem) = TrialCount(request, method, spaces);
        if (countProblem is not null)
        {
            return (null, countProblem);
        }
        var settings = options.Value;
        int parallel = request.MaxParallel ?? settings.DefaultParallel;
        if (parallel < 1 || parallel > settings.MaxParallel)
        {
            return (null, ApiProblem.BadRequest("sweep.invalid_max_parallel", $"maxParallel must be between 1 and {settings.MaxParallel} (Sweeps:MaxParallel).", "maxParallel"));
        }
        var (objective, objectiveProblem) = ReadObjective(request.Objective, SweepDefinition.VariesTheLoss(spaces), plans);
        if (objectiveProblem is not null)
        {
            return (null, objectiveProblem);
        }
        var (termination, terminationProblem) = ReadEarlyTermination(request.EarlyTermination, plans);
        if (terminationProblem is not null)
        {
            return (null, terminationProblem);
        }
        if (request.MaxRuntime is { } runtime && runtime <= TimeSpan.Zero)
        {
            return (null, ApiProblem.BadRequest("sweep.invalid_max_runtime", "maxRuntime must be positive, e.g. \"02:00:00\".", "maxRuntime"));
        }
        var normalized = request with
        {
            Method = method, MaxTrials = maxTrials, MaxParallel = parallel, Objective = objective, EarlyTermination = termination,
            Seed = request.Seed ?? RandomNumberGenerator.GetInt32(int.MaxValue),
        };
        return (SweepDefinition.FromStored(JsonSerializer.Serialize(normalized, ApiJson.Options)), null);
    }

    /// <summary>Plans a spec as a submit would; a problem's field is prefixed with where the spec came from.</summary>
    private async Task<(JobPlan? Plan, ApiProblem? Problem)> PlanAsync(string tenant, JsonObject spec, string where, CancellationToken cancellationToken)
    {
        SubmitJobRequest? request;
        try
        {
            request = spec.Deserialize<SubmitJobRequest>(ApiJson.Requests);
        }
        catch (JsonException e)
        {
            return (null, ApiProblem.BadRequest("sweep.invalid_base", $"{where} is not a valid job spec: {e.Message}", where));
        }
        var (plan, problem) = await submitter.PlanAsync(tenant, request!, cancellationToken);
        return plan is not null ? (plan, null)
            : (null, problem! with { Detail = $"{where}: {problem.Detail}", Field = problem.Field is null ? where : $"{where}.{problem.Field}" });
    }

    /// <summary>Each parameter's space, in path order.</summary>
    private static (List<ParameterSpace> Spaces, ApiProblem? Problem) ReadSpaces(SubmitSweepRequest request, SweepOptions settings)
    {
        var spaces = new List<ParameterSpace>();
        if (request.Parameters is not { Count: > 0 } parameters)
        {
            return (spaces, ApiProblem.BadRequest("sweep.missing_parameters", "A sweep needs at least one parameter to vary.", "parameters"));
        }
        if (parameters.Count > settings.MaxParameters)
        {
            return (spaces, ApiProblem.BadRequest("sweep.too_many_parameters",
                $"A sweep varies at most {settings.MaxParameters} parameters (Sweeps:MaxParameters); this one has {parameters.Count}.", "parameters"));
        }
        if (parameters.FirstOrDefault(p => p.Value.Values?.Count > settings.MaxValues) is { Key: { } crowded })
        {
            return (spaces, ApiProblem.BadRequest("sweep.too_many_values",
                $"A parameter lists at most {settings.MaxValues} values (Sweeps:MaxValues); '{crowded}' lists more.", $"parameters.{crowded}.values"));
        }
        foreach (var (path, parameter) in parameters.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (!SweepPaths.Exists(path))
            {
                return (spaces, ApiProblem.BadRequest("sweep.unknown_parameter",
                    $"'{path}' is not a field of a job spec; name one by its path, e.g. optimizer.learningRate or model.hiddenLayers.", $"parameters.{path}"));
            }
            if (SweepSpaces.Read(path, parameter, out var problem) is not { } space)
            {
                return (spaces, problem);
            }
            spaces.Add(space);
        }
        return (spaces, null);
    }

    /// <summary>The plan of every value of every space (each range's two ends), set into the base with the others at their first.</summary>
    private async Task<(List<JobPlan> Plans, ApiProblem? Problem)> PlanValuesAsync(string tenant, List<ParameterSpace> spaces, JsonObject first,
        CancellationToken cancellationToken)
    {
        var plans = new List<JobPlan>();
        foreach (var space in spaces)
        {
            foreach (var (value, field) in Candidates(space))
            {
                var (plan, refused) = await PlanAsync(tenant, new Assignment([new(space.Path, value)]).AppliedTo(first), field, cancellationToken);
                if (plan is null)
                {
                    return (plans, refused! with { Code = "sweep.invalid_value", Field = field });
                }
                plans.Add(plan);
            }
        }
        return (plans, null);
    }

    /// <summary>The values that stand for a space when checking it: every listed value, or a range's two ends.</summary>
    private static IEnumerable<(JsonNode? Value, string Field)> Candidates(ParameterSpace space) => space switch
    {
        ChoiceSpace choice => choice.Values.Select((v, i) => (v, $"parameters.{space.Path}.values[{i}]")),
        RangeSpace { Distribution: RangeDistribution.IntUniform } range =>
            [(JsonValue.Create((long)range.Min), $"parameters.{space.Path}.min"), (JsonValue.Create((long)range.Max), $"parameters.{space.Path}.max")],
        RangeSpace range => [(JsonValue.Create(range.Min), $"parameters.{space.Path}.min"), (JsonValue.Create(range.Max), $"parameters.{space.Path}.max")],
        _ => [],
    };

    private (int MaxTrials, ApiProblem? Problem) TrialCount(SubmitSweepRequest request, string method, List<ParameterSpace> spaces)
    {
        var settings = options.Value;
        if (method == "grid")
        {
            if (spaces.FirstOrDefault(s => s is RangeSpace { Distribution: not RangeDistribution.IntUniform }) is { } range)
            {
                return (0, ApiProblem.BadRequest("sweep.grid_needs_values",
                    $"A grid needs listed values (or int_uniform); '{range.Path}' is a continuous range. Use method random or tpe.", $"parameters.{range.Path}"));
            }
            // No size: the product overflowed a long, which is too large too.
            long size = SweepSampler.GridSize(spaces) ?? long.MaxValue;
            if (size > settings.MaxGridSize)
            {
                return (0, ApiProblem.BadRequest("sweep.grid_too_large",
                    $"The grid has {size} combinations, more than Sweeps:MaxGridSize ({settings.MaxGridSize}); list fewer values, or use random or tpe.", "parameters"));
            }
            int gridTrials = request.MaxTrials ?? (int)size;
            return gridTrials < 1 || gridTrials > size
                ? (0, ApiProblem.BadRequest("sweep.invalid_max_trials", $"maxTrials must be between 1 and the grid's size ({size}).", "maxTrials"))
                : (gridTrials, null);
        }
        int trials = request.MaxTrials ?? settings.DefaultTrials;
        return trials < 1 || trials > settings.MaxTrials
            ? (0, ApiProblem.BadRequest("sweep.invalid_max_trials", $"maxTrials must be between 1 and {settings.MaxTrials} (Sweeps:MaxTrials).", "maxTrials"))
            : (trials, null);
    }

    /// <summary>
    /// The objective, normalised: its metric must be reported by every planned variant of the spec (so by every trial), and
    /// must not be a loss when the loss varies, since then losses of different functions would be compared.
    /// </summary>
    private static (ObjectiveRequest? Objective, ApiProblem? Problem) ReadObjective(ObjectiveRequest? request, bool variesLoss, List<JobPlan> plans)
    {
        string? metric = request?.Metric;
        var comparable = plans.Select(p => Metrics.Names(p.OutputKind, p.OutputTransform)).Aggregate((a, b) => a.Intersect(b).ToList())
            .Select(m => $"val.{m}").ToList();
        bool validated = plans.All(p => p.Normalized.Validation is not null);
        if (variesLoss && metric is null or "valLoss" or "trainLoss")
        {
            return (null, ApiProblem.BadRequest("sweep.incomparable_objective",
                $"The sweep varies the loss, so {metric ?? "the default objective, valLoss,"} is not comparable across trials: each trial's loss " +
                $"is a different function. Choose a metric that does not depend on the loss: {string.Join(", ", comparable)}.", "objective.metric",
                new Dictionary<string, object?> { ["metrics"] = comparable }));
        }
        metric ??= "valLoss";
        if (metric is not ("valLoss" or "trainLoss") && !comparable.Contains(metric))
        {
            return (null, ApiProblem.BadRequest("sweep.unknown_metric",
                $"'{metric}' is not a metric every trial reports; use valLoss, trainLoss or one of {string.Join(", ", comparable)}.", "objective.metric",
                new Dictionary<string, object?> { ["metrics"] = comparable }));
        }
        if (metric != "trainLoss" && !validated)
        {
            return (null, ApiProblem.BadRequest("sweep.objective_needs_validation",
                $"The objective {metric} is measured on the validation split; add \"validation\": {{\"fraction\": 0.2}} to the base spec.", "objective.metric"));
        }
        string goal = request?.Goal ?? (SweepSpaces.HigherIsBetter(metric) ? "maximize" : "minimize");
        if (goal is not ("minimize" or "maximize"))
        {
            return (null, ApiProblem.BadRequest("sweep.invalid_goal", $"goal must be minimize or maximize, not '{goal}'.", "objective.goal"));
        }
        return (new ObjectiveRequest { Metric = metric, Goal = goal }, null);
    }

    private static (EarlyTerminationRequest? Rule, ApiProblem? Problem) ReadEarlyTermination(EarlyTerminationRequest? request, List<JobPlan> plans)
    {
        if (request is null)
        {
            return (null, null);
        }
        if (request.Type is not ("asha" or "median"))
        {
            return (null, ApiProblem.BadRequest("sweep.unknown_early_termination", $"earlyTermination.type must be asha or median, not '{request.Type}'.",
                "earlyTermination.type"));
        }
        int fewestEpochs = plans.Min(p => p.Epochs);
        int minEpochs = request.MinEpochs ?? 1;
        if (minEpochs < 1 || minEpochs >= fewestEpochs)
        {
            return (null, ApiProblem.BadRequest("sweep.invalid_min_epochs",
                $"earlyTermination.minEpochs must be at least 1 and below the trials' epochs ({fewestEpochs}).", "earlyTermination.minEpochs"));
        }
        if (request.ReductionFactor is < 2 or > 100)
        {
            return (null, ApiProblem.BadRequest("sweep.invalid_reduction_factor", "earlyTermination.reductionFactor must be between 2 and 100.",
                "earlyTermination.reductionFactor"));
        }
        if (request.MinTrials is < 1 or > 1000)
        {
            return (null, ApiProblem.BadRequest("sweep.invalid_min_trials", "earlyTermination.minTrials must be between 1 and 1000.", "earlyTermination.minTrials"));
        }
        return (new EarlyTerminationRequest { Type = request.Type, MinEpochs = minEpochs, ReductionFactor = request.ReductionFactor ?? 3,
            MinTrials = request.MinTrials ?? 5 }, null);
    }
}
