using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using Microsoft.Extensions.Options;
using TrainingService.Compute.Losses;
using TrainingService.Compute.Models;
using TrainingService.Compute.Optimizers;
using TrainingService.Compute.Schedules;
using TrainingService.Compute.Training;
using TrainingService.Server.Configuration;
using TrainingService.Server.Datasets;
using TrainingService.Server.Infrastructure;
using TrainingService.Server.Losses;
using TrainingService.Server.Preprocessing;

namespace TrainingService.Server.Jobs;

/// <summary>
/// Turns a validated spec into a <see cref="JobPlan"/> against its dataset's columns, composing what the resources own:
/// the target and features (<see cref="ColumnResolver"/>), the loss (<see cref="LossSpecs"/>), and here the class weights,
/// monitors and defaults. Everything a spec can get wrong against the data is refused at submit time with the offending
/// field (422), such as a cross-entropy loss on a continuous target. The worker plans the stored, normalized spec again.
/// </summary>
public sealed class JobPlanner(JobSpecValidator validator, IOptions<JobOptions> jobOptions)
{
    /// <summary>Validates and plans in one step: what the worker does with a stored spec.</summary>
    public bool TryPlan(SubmitJobRequest request, IReadOnlyList<ColumnSchema> columns, [NotNullWhen(true)] out JobPlan? plan,
        [NotNullWhen(false)] out ApiProblem? problem)
    {
        plan = null;
        return validator.TryValidate(request, out var spec, out problem) && TryPlan(spec, columns, out plan, out problem);
    }

    /// <summary>Resolves a validated spec against a dataset's columns; fills in defaults and the seed.</summary>
    public bool TryPlan(ValidatedSpec spec, IReadOnlyList<ColumnSchema> columns, [NotNullWhen(true)] out JobPlan? plan,
        [NotNullWhen(false)] out ApiProblem? problem)
    {
        plan = null;
        var request = spec.Request;
        var definitions = spec.LossTerms.Select(t => LossCatalog.Find(t.Name)).ToList();
        var lossTasks = definitions.Skip(1).Aggregate(definitions[0].Tasks.AsEnumerable(), (all, d) => all.Intersect(d.Tasks)).ToList();
        if (!ColumnResolver.TryResolveTarget(columns, spec.TargetNames, lossTasks, string.Join(" + ", definitions.Select(d => d.Name)), out var target, out problem)
            || !ColumnResolver.TryResolveFeatures(columns, request.Features, spec.TargetNames, out var features, out problem))
        {
            return false;
        }
        problem = PoissonLogInput(spec.LossTerms);
        var metrics = Metrics.Names(Kind(target.Task), Transform(target.Task, definitions));
        if (problem is not null
            || !TryResolveClassWeights(request.ClassWeights, target, out var weightMode, out var explicitWeights, out problem)
            || !TryCheckBinding(spec.LossTerms, target, weightMode, explicitWeights, out problem)
            || !TryEarlyStopping(request, metrics, out var earlyStopping, out problem)
            || !TrySchedule(request, metrics, out var schedule, out problem))
        {
            return false;
        }
        var normalized = Normalize(request, target);
        var model = normalized.Model!;
        bool mlp = string.Equals(model.Type, "mlp", StringComparison.OrdinalIgnoreCase);
        plan = new JobPlan
        {
            Normalized = normalized,
            Data = Preprocessing(normalized, target, features, weightMode, explicitWeights, metrics),
            LossTerms = spec.LossTerms,
            HiddenLayers = mlp ? model.HiddenLayers! : [],
            Activation = mlp ? JobSpecValidator.Activations[model.Activation ?? "relu"] : Activation.Identity,
            Dropout = mlp ? model.Dropout ?? 0 : 0,
            Optimizer = Optimizer(request.Optimizer),
            Schedule = schedule,
            Regularization = Penalties(request.Regularization),
            EarlyStopping = earlyStopping,
            Keep = earlyStopping is null && normalized.Keep == "best" ? new KeepBest(normalized.Validation is null ? "trainLoss" : "valLoss") : null,
            Epochs = normalized.Epochs!.Value,
            BatchSize = normalized.BatchSize!.Value,
            Seed = normalized.Seed!.Value,
            MaxRuntime = normalized.MaxRuntime!.Value,
            OutputKind = Kind(target.Task),
            OutputTransform = Transform(target.Task, definitions),
        };
        return true;
    }

    /// <summary>"best" unless the spec says "last" (as <c>keep</c>, or as early stopping's <c>restoreBest: false</c>).</summary>
    private static string KeepOf(SubmitJobRequest request) => request.Keep ?? (request.EarlyStopping?.RestoreBest == false ? "last" : "best");

    /// <summary>The request with every default made explicit, as stored and shown.</summary>
    private SubmitJobRequest Normalize(SubmitJobRequest request, TargetInfo target) => request with
    {
        Seed = request.Seed ?? Random.Shared.Next(),
        BatchSize = request.BatchSize ?? 32,
        Model = request.Model ?? new ModelRequest { Type = "linear" },
        Optimizer = (request.Optimizer ?? new OptimizerRequest()) with
        {
            Name = (request.Optimizer?.Name ?? "adam").ToLowerInvariant(),
            LearningRate = Optimizer(request.Optimizer).LearningRate,
        },
        Missing = request.Missing ?? "drop_rows",
        Keep = KeepOf(request),
        Compute = new ComputeRequest { Device = request.Compute?.Device ?? ComputePools.Any },
        Standardize = request.Standardize ?? true,
        MaxRuntime = request.MaxRuntime ?? jobOptions.Value.MaxRuntime,
        Validation = request.Validation is null ? null : request.Validation with
        {
            Stratify = request.Validation.Stratify ?? target.Task is LossTask.Binary or LossTask.Multiclass,
        },
    };

    private static PreprocessingSpec Preprocessing(SubmitJobRequest normalized, TargetInfo target, List<ColumnSchema> features,
        ClassWeightMode weightMode, double[]? explicitWeights, IReadOnlyList<string> metrics) => new()
    {
        Features = features,
        Target = target,
        ImputeMissing = normalized.Missing == "impute",
        Standardize = normalized.Standardize!.Value,
        ValidationFraction = normalized.Validation?.Fraction ?? 0,
        Stratify = normalized.Validation?.Stratify ?? false,
        Seed = normalized.Seed!.Value,
        ClassWeightMode = weightMode,
        ExplicitClassWeights = explicitWeights,
        Metrics = metrics,
    };

    /// <summary>In training the model's output is unconstrained, so poisson_nll must learn log-rates.</summary>
    private static ApiProblem? PoissonLogInput(IReadOnlyList<LossTermSpec> terms)
    {
        for (int i = 0; i < terms.Count; i++)
        {
            if (LossCatalog.Find(terms[i].Name).Name == "poisson_nll"
                && terms[i].Parameters?.FirstOrDefault(p => LossArguments.Normalize(p.Key) == "loginput").Value is false)
            {
                return ApiProblem.Unprocessable("job.unsupported_loss_parameter",
                    "In training the model's output is unconstrained, so poisson_nll learns log-rates (log_input: true); " +
                    "log_input: false is for evaluating given rates.", $"{CombinedLoss.TermField(terms.Count, i)}.log_input");
            }
        }
        return null;
    }

    /// <summary>Binds the loss once at submit, so parameters that do not fit the target fail now, not on the worker.</summary>
    private static bool TryCheckBinding(IReadOnlyList<LossTermSpec> terms, TargetInfo target, ClassWeightMode weightMode, double[]? explicitWeights,
        [NotNullWhen(false)] out ApiProblem? problem)
    {
        // "balanced" weights are counted on the training split later; any weights of the right length bind the same way.
        var placeholder = weightMode == ClassWeightMode.None ? null
            : explicitWeights ?? Enumerable.Repeat(1.0, target.Task == LossTask.Binary ? 2 : target.Outputs).ToArray();
        return LossSpecs.TryBind(terms, JobPlan.BindingFor(target, placeholder), "loss", out _, out problem);
    }

    private static bool TryResolveClassWeights(JsonElement? weights, TargetInfo target, out ClassWeightMode mode, out double[]? explicitWeights,
        [NotNullWhen(false)] out ApiProblem? problem)
    {
        mode = ClassWeightMode.None;
        explicitWeights = null;
        problem = null;
        if (weights is not { ValueKind: not JsonValueKind.Null } value)
        {
            return true;
        }
        if (target.Labels is not { } labels)
        {
            problem = ApiProblem.Unprocessable("job.invalid_class_weights", "classWeights apply to classification targets only.", "classWeights");
            return false;
        }
        if (value.ValueKind == JsonValueKind.String && value.GetString() == "balanced")
        {
            mode = ClassWeightMode.Balanced;
            return true;
        }
        problem = value.ValueKind switch
        {
            JsonValueKind.Array => WeightsFromArray(value, labels, out explicitWeights),
            JsonValueKind.Object => WeightsByLabel(value, labels, out explicitWeights),
            _ => Invalid("classWeights", "classWeights must be \"balanced\", an object {label: weight}, or an array."),
        };
        if (problem is null && explicitWeights!.Any(w => !(w >= 0 && w <= JobSpecValidator.MaxClassWeight)))
        {
            problem = Invalid("classWeights", $"Class weights must be in [0, {JobSpecValidator.MaxClassWeight:G}].");
        }
        mode = ClassWeightMode.Explicit;
        return problem is null;
    }

    private static ApiProblem? WeightsFromArray(JsonElement value, IReadOnlyList<string> labels, out double[]? weights)
    {
        weights = null;
        if (value.GetArrayLength() != labels.Count || value.EnumerateArray().Any(v => v.ValueKind != JsonValueKind.Number))
        {
            return Invalid("classWeights", $"classWeights as an array needs {labels.Count} numbers, in label order: {string.Join(", ", labels)}.");
        }
        weights = value.EnumerateArray().Select(v => v.GetDouble()).ToArray();
        return null;
    }

    private static ApiProblem? WeightsByLabel(JsonElement value, IReadOnlyList<string> labels, out double[]? weights)
    {
        weights = Enumerable.Repeat(1.0, labels.Count).ToArray();
        foreach (var property in value.EnumerateObject())
        {
            int index = ColumnResolver.LabelIndex(labels, property.Name);
            if (index < 0 || property.Value.ValueKind != JsonValueKind.Number)
            {
                return Invalid($"classWeights.{property.Name}",
                    $"'{property.Name}' is not a class of the target (classes: {string.Join(", ", labels)}), or its weight is not a number.");
            }
            weights[index] = property.Value.GetDouble();
        }
        return null;
    }

    private static bool TryEarlyStopping(SubmitJobRequest request, IReadOnlyList<string> metrics, out EarlyStoppingSpec? spec,
        [NotNullWhen(false)] out ApiProblem? problem)
    {
        spec = null;
        if (request.EarlyStopping is not { } stopping)
        {
            problem = null;
            return true;
        }
        string monitor = stopping.Monitor ?? "valLoss";
        if (!CheckMonitor(monitor, metrics, "earlyStopping.monitor", out problem)
            || !JobSpecValidator.TryParseMode(stopping.Mode, "earlyStopping.mode", out var mode, out problem))
        {
            return false;
        }
        spec = new EarlyStoppingSpec(monitor, mode, stopping.Patience ?? 5, stopping.MinDelta ?? 0, KeepOf(request) == "best");
        return true;
    }

    private static bool TrySchedule(SubmitJobRequest request, IReadOnlyList<string> metrics, [NotNullWhen(true)] out ScheduleSpec? spec,
        [NotNullWhen(false)] out ApiProblem? problem)
    {
        spec = ScheduleSpec.Constant;
        problem = null;
        if (request.Schedule is not { } s)
        {
            return true;
        }
        if (!JobSpecValidator.TryParseMode(s.Mode, "schedule.mode", out var mode, out problem) || !CheckMonitor(s.Monitor, metrics, "schedule.monitor", out problem))
        {
            spec = null;
            return false;
        }
        if (request.Validation is null && s.Monitor == "valLoss")
        {
            (spec, problem) = (null, JobSpecValidator.Bad("job.unknown_monitor", "schedule.monitor", "schedule.monitor valLoss needs a validation split."));
            return false;
        }
        spec = new ScheduleSpec(JobSpecValidator.Schedules[s.Name ?? "constant"], s.StepSize, s.Gamma, s.WarmupEpochs, s.MinLearningRate,
            s.Patience, s.Factor, s.Threshold, s.Monitor, mode);
        return true;
    }

    /// <summary>A monitor must be a loss or one of the metrics this job reports.</summary>
    private static bool CheckMonitor(string? monitor, IReadOnlyList<string> metrics, string field, [NotNullWhen(false)] out ApiProblem? problem)
    {
        problem = monitor is null or "valLoss" or "trainLoss" || metrics.Contains(monitor) ? null : JobSpecValidator.Bad("job.unknown_monitor", field,
            $"Unknown monitor '{monitor}'; use valLoss, trainLoss or one of this target's metrics: {string.Join(", ", metrics)}.");
        return problem is null;
    }

    private static OptimizerSpec Optimizer(OptimizerRequest? request)
    {
        var kind = JobSpecValidator.Optimizers[request?.Name ?? "adam"];
        return new OptimizerSpec(kind, request?.LearningRate ?? OptimizerSpec.DefaultLearningRate(kind), request?.Momentum,
            request?.Nesterov ?? false, request?.Beta1, request?.Beta2, request?.Epsilon, request?.WeightDecay, request?.Alpha,
            request?.Centered ?? false, request?.GradientClipNorm);
    }

    private static Regularization Penalties(RegularizationRequest? r) => r is null ? TrainingService.Compute.Losses.Regularization.None
        : new Regularization(r.L1 ?? 0, r.L2 ?? 0, r.Convention == "pytorch" ? RegularizationConvention.PyTorch : RegularizationConvention.Keras,
            r.IncludeBias ?? false);

    private static OutputKind Kind(LossTask task) => task switch
    {
        LossTask.Regression => OutputKind.Regression,
        LossTask.Binary => OutputKind.Binary,
        LossTask.Multiclass => OutputKind.Multiclass,
        _ => OutputKind.Distribution,
    };

    /// <summary>
    /// How outputs become predictions: probabilities when any term is a likelihood (sigmoid, softmax), margin scores when
    /// every term is a hinge loss, rates for Poisson regression (the model learns log-rates), values otherwise.
    /// </summary>
    private static OutputTransform Transform(LossTask task, IReadOnlyList<LossDefinition> losses)
    {
        var names = losses.Select(d => d.Name).ToList();
        return task switch
        {
            LossTask.Regression when names.All(n => n == "poisson_nll") => OutputTransform.Exp,
            LossTask.Regression => OutputTransform.Identity,
            LossTask.Binary when names.All(n => n is "hinge" or "squared_hinge") => OutputTransform.Identity,
            LossTask.Binary => OutputTransform.Sigmoid,
            LossTask.Multiclass when names.All(n => n == "multi_margin") => OutputTransform.Identity,
            _ => OutputTransform.Softmax,
        };
    }

    private static ApiProblem Invalid(string field, string detail) => JobSpecValidator.Bad("job.invalid_class_weights", field, detail);
}
