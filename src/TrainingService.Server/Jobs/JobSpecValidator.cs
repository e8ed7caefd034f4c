using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Options;
using TrainingService.Compute.Models;
using TrainingService.Compute.Optimizers;
using TrainingService.Compute.Schedules;
using TrainingService.Compute.Training;
using TrainingService.Server.Configuration;
using TrainingService.Server.Infrastructure;
using TrainingService.Server.Losses;

namespace TrainingService.Server.Jobs;

/// <summary>
/// Checks everything in a training spec that can be checked without its dataset: required fields, ranges, names of
/// optimizers, schedules and activations, fields that do not apply to the chosen model, optimizer or schedule, and the
/// loss's syntax and names. Every number has a finite range (the constants below, listed in README), so nothing accepted
/// here fails in epoch 1 for its size. Each failure is a 400 problem naming the field; the first one found is returned.
/// </summary>
public sealed class JobSpecValidator(IOptions<JobOptions> jobOptions)
{
    internal const double MaxLearningRate = 10;
    internal const double MaxEpsilon = 1;
    internal const double MaxWeightDecay = 1;
    internal const double MaxGradientClipNorm = 1e6;
    internal const double MaxPenalty = 100;
    internal const double MaxThreshold = 1e6;
    internal const double MaxMinDelta = 1e6;
    internal const double MaxClassWeight = 1e6;
    internal static readonly Dictionary<string, OptimizerKind> Optimizers = new(StringComparer.OrdinalIgnoreCase)
    {
        ["sgd"] = OptimizerKind.Sgd,
        ["adam"] = OptimizerKind.Adam,
        ["adamw"] = OptimizerKind.AdamW,
        ["rmsprop"] = OptimizerKind.RmsProp,
    };

    internal static readonly Dictionary<string, ScheduleKind> Schedules = new(StringComparer.OrdinalIgnoreCase)
    {
        ["constant"] = ScheduleKind.Constant,
        ["step"] = ScheduleKind.Step,
        ["exponential"] = ScheduleKind.Exponential,
        ["cosine"] = ScheduleKind.Cosine,
        ["reduce_on_plateau"] = ScheduleKind.ReduceOnPlateau,
    };

    internal static readonly Dictionary<string, Activation> Activations = new(StringComparer.OrdinalIgnoreCase)
    {
        ["relu"] = Activation.Relu,
        ["tanh"] = Activation.Tanh,
        ["sigmoid"] = Activation.Sigmoid,
        ["gelu"] = Activation.Gelu,
    };

    public bool TryValidate(SubmitJobRequest request, [NotNullWhen(true)] out ValidatedSpec? spec, [NotNullWhen(false)] out ApiProblem? problem)
    {
        var options = jobOptions.Value;
        spec = null;
        problem = Required(request) ?? Sizes(request, options) ?? Model(request.Model, options) ?? Optimizer(request.Optimizer)
            ?? Schedule(request.Schedule) ?? Training(request, options) ?? Regularization(request.Regularization);
        if (problem is not null || !LossSpecs.TryParse(request.Loss!.Value, "loss", out var terms, out problem)
            || !TryReadTarget(request.Target!.Value, out var targets, out problem))
        {
            return false;
        }
        spec = new ValidatedSpec(request, targets, terms);
        return true;
    }

    /// <summary>"min" or "max" (null when absent).</summary>
    internal static bool TryParseMode(string? mode, string field, out MonitorMode? parsed, [NotNullWhen(false)] out ApiProblem? problem)
    {
        parsed = mode switch { "min" => MonitorMode.Min, "max" => MonitorMode.Max, _ => null };
        problem = mode is null || parsed is not null ? null : Bad("job.invalid_mode", field, $"{field} must be \"min\" or \"max\".");
        return problem is null;
    }

    private static ApiProblem? Required(SubmitJobRequest request)
    {
        if (request.DatasetId is null)
        {
            return Missing("datasetId");
        }
        if (request.Target is not { ValueKind: not (JsonValueKind.Null or JsonValueKind.Undefined) } target)
        {
            return Missing("target");
        }
        if (target.ValueKind is not (JsonValueKind.String or JsonValueKind.Array))
        {
            return Bad("job.invalid_target", "target", "target must be a column name or an array of column names.");
        }
        return request.Loss is not { ValueKind: JsonValueKind.Object or JsonValueKind.String } ? Missing("loss")
            : request.Epochs is null ? Missing("epochs")
            : null;
    }

    private static ApiProblem? Sizes(SubmitJobRequest request, JobOptions options)
    {
        if (request.Epochs is < 1 || request.Epochs > options.MaxEpochs)
        {
            return Bad("job.epochs_out_of_range", "epochs", $"epochs must be between 1 and {options.MaxEpochs}; got {request.Epochs}.");
        }
        if (request.BatchSize is < 1 || request.BatchSize > options.MaxBatchSize)
        {
            return Bad("job.batch_size_out_of_range", "batchSize",
                $"batchSize must be between 1 and {options.MaxBatchSize} (Jobs:MaxBatchSize); got {request.BatchSize}.");
        }
        if (request.Features is { } features && features.IndexOf(null!) is int blank and >= 0)
        {
            return Bad("job.invalid_features", $"features[{blank}]", "features must be an array of column names; this entry is null.");
        }
        return null;
    }

    private static ApiProblem? Model(ModelRequest? model, JobOptions options)
    {
        string type = model?.Type ?? "linear";
        if (model is null || string.Equals(type, "linear", StringComparison.OrdinalIgnoreCase))
        {
            return model is null ? null
                : NotApplicable(model.HiddenLayers, "model.hiddenLayers", "a linear model") ?? NotApplicable(model.Activation, "model.activation", "a linear model")
                    ?? NotApplicable(model.Dropout, "model.dropout", "a linear model");
        }
        if (!string.Equals(type, "mlp", StringComparison.OrdinalIgnoreCase))
        {
            return Bad("job.unknown_model", "model.type", $"model.type must be \"linear\" or \"mlp\"; got \"{type}\".");
        }
        if (model.HiddenLayers is not { Count: > 0 })
        {
            return Bad("job.invalid_hidden_layers", "model.hiddenLayers", "An mlp needs hiddenLayers, e.g. [128, 64].");
        }
        if (model.HiddenLayers.Count > options.MaxHiddenLayers)
        {
            return Bad("job.invalid_hidden_layers", "model.hiddenLayers", $"At most {options.MaxHiddenLayers} hidden layers (Jobs:MaxHiddenLayers).");
        }
        int wrong = model.HiddenLayers.FindIndex(width => width < 1 || width > options.MaxHiddenUnits);
        if (wrong >= 0)
        {
            return Bad("job.invalid_hidden_layers", $"model.hiddenLayers[{wrong}]",
                $"Hidden layer widths must be between 1 and {options.MaxHiddenUnits} (Jobs:MaxHiddenUnits); got {model.HiddenLayers[wrong]}.");
        }
        if (model.Activation is { } activation && !Activations.ContainsKey(activation))
        {
            return Bad("job.unknown_activation", "model.activation", $"Unknown activation '{activation}'; use relu, tanh, sigmoid or gelu.");
        }
        return model.Dropout is { } dropout && dropout is not (>= 0 and <= 0.9)
            ? Bad("job.invalid_dropout", "model.dropout", $"model.dropout must be in [0, 0.9]; got {Text(dropout)}.")
            : null;
    }

    private static ApiProblem? Optimizer(OptimizerRequest? optimizer)
    {
        if (optimizer is null)
        {
            return null;
        }
        if (optimizer.Name is { } name && !Optimizers.ContainsKey(name))
        {
            return Bad("job.unknown_optimizer", "optimizer.name", $"Unknown optimizer '{name}'; use sgd, adam, adamw or rmsprop.");
        }
        if (optimizer.LearningRate is { } lr && !(lr > 0 && lr <= MaxLearningRate))
        {
            return Bad("job.invalid_learning_rate", "optimizer.learningRate", $"learningRate must be in (0, {MaxLearningRate}]; got {Text(lr)}.");
        }
        return Range(optimizer.Momentum, 0, 1, false, "optimizer.momentum")
            ?? Range(optimizer.Beta1, 0, 1, true, "optimizer.beta1")
            ?? Range(optimizer.Beta2, 0, 1, true, "optimizer.beta2")
            ?? Range(optimizer.Alpha, 0, 1, true, "optimizer.alpha")
            ?? Above(optimizer.Epsilon, 0, MaxEpsilon, "optimizer.epsilon")
            ?? Range(optimizer.WeightDecay, 0, MaxWeightDecay, false, "optimizer.weightDecay")
            ?? Above(optimizer.GradientClipNorm, 0, MaxGradientClipNorm, "optimizer.gradientClipNorm")
            ?? (optimizer.Nesterov == true && !(optimizer.Momentum > 0)
                ? Bad("job.invalid_optimizer", "optimizer.nesterov", "Nesterov momentum needs momentum > 0.") : null)
            ?? OptimizerFields(optimizer);
    }

    /// <summary>Hyperparameters the chosen optimizer does not have (PyTorch's sets) are refused rather than ignored.</summary>
    private static ApiProblem? OptimizerFields(OptimizerRequest optimizer)
    {
        var kind = Optimizers[optimizer.Name ?? "adam"];
        string which = optimizer.Name is null ? "adam (the default optimizer)" : $"the {kind.ToString().ToLowerInvariant()} optimizer";
        bool adam = kind is OptimizerKind.Adam or OptimizerKind.AdamW;
        return (kind is OptimizerKind.Sgd or OptimizerKind.RmsProp ? null : NotApplicable(optimizer.Momentum, "optimizer.momentum", which))
            ?? (kind == OptimizerKind.Sgd ? null : NotApplicable(optimizer.Nesterov, "optimizer.nesterov", which))
            ?? (adam ? null : NotApplicable(optimizer.Beta1, "optimizer.beta1", which) ?? NotApplicable(optimizer.Beta2, "optimizer.beta2", which))
            ?? (kind != OptimizerKind.Sgd ? null : NotApplicable(optimizer.Epsilon, "optimizer.epsilon", which))
            ?? (kind == OptimizerKind.RmsProp ? null : NotApplicable(optimizer.Alpha, "optimizer.alpha", which)
                ?? NotApplicable(optimizer.Centered, "optimizer.centered", which));
    }

    private ApiProblem? Schedule(ScheduleRequest? schedule)
    {
        if (schedule is null)
        {
            return null;
        }
        if (schedule.Name is { } name && !Schedules.ContainsKey(name))
        {
            return Bad("job.unknown_schedule", "schedule.name", $"Unknown schedule '{name}'; use constant, step, exponential, cosine or reduce_on_plateau.");
        }
        int maxEpochs = jobOptions.Value.MaxEpochs;
        if (schedule.StepSize is < 1 || schedule.StepSize > maxEpochs)
        {
            return Bad("job.invalid_schedule", "schedule.stepSize", $"schedule.stepSize must be between 1 and {maxEpochs} (Jobs:MaxEpochs).");
        }
        var problem = Range(schedule.Gamma, 0, 1, true, "schedule.gamma", code: "job.invalid_schedule")
            ?? Range(schedule.Factor, 0, 1, true, "schedule.factor", code: "job.invalid_schedule")
            ?? (schedule.WarmupEpochs is < 0 || schedule.Patience is < 0 || schedule.WarmupEpochs > maxEpochs || schedule.Patience > maxEpochs
                ? Bad("job.invalid_schedule", "schedule", $"schedule.warmupEpochs and patience must be between 0 and {maxEpochs} (Jobs:MaxEpochs).") : null)
            ?? Range(schedule.MinLearningRate, 0, MaxLearningRate, false, "schedule.minLearningRate", code: "job.invalid_schedule")
            ?? Range(schedule.Threshold, 0, MaxThreshold, false, "schedule.threshold", code: "job.invalid_schedule");
        return problem ?? (TryParseMode(schedule.Mode, "schedule.mode", out _, out var mode) ? ScheduleFields(schedule) : mode);
    }

    /// <summary>Settings of another schedule than the chosen one are refused rather than ignored.</summary>
    private static ApiProblem? ScheduleFields(ScheduleRequest schedule)
    {
        var kind = Schedules[schedule.Name ?? "constant"];
        string which = schedule.Name is null ? "the constant schedule (the default)" : $"the {schedule.Name.ToLowerInvariant()} schedule";
        bool plateau = kind == ScheduleKind.ReduceOnPlateau;
        return (kind == ScheduleKind.Step ? null : NotApplicable(schedule.StepSize, "schedule.stepSize", which))
            ?? (kind is ScheduleKind.Step or ScheduleKind.Exponential ? null : NotApplicable(schedule.Gamma, "schedule.gamma", which))
            ?? (kind == ScheduleKind.Cosine ? null : NotApplicable(schedule.WarmupEpochs, "schedule.warmupEpochs", which))
            ?? (kind == ScheduleKind.Cosine || plateau ? null : NotApplicable(schedule.MinLearningRate, "schedule.minLearningRate", which))
            ?? (plateau ? null : NotApplicable(schedule.Patience, "schedule.patience", which) ?? NotApplicable(schedule.Factor, "schedule.factor", which)
                ?? NotApplicable(schedule.Threshold, "schedule.threshold", which) ?? NotApplicable(schedule.Monitor, "schedule.monitor", which)
                ?? NotApplicable(schedule.Mode, "schedule.mode", which));
    }

    /// <summary>Validation split, early stopping, missing values and the runtime limit.</summary>
    private static ApiProblem? Training(SubmitJobRequest request, JobOptions options)
    {
        if (request.Validation is { } validation && (validation.Fraction is not (> 0 and <= 0.9)))
        {
            return Bad("job.invalid_validation_fraction", "validation.fraction",
                $"validation.fraction must be in (0, 0.9]; got {Text(validation.Fraction)}.");
        }
        if (request.EarlyStopping is { } stopping && EarlyStopping(stopping, request.Validation is not null) is { } problem)
        {
            return problem;
        }
        if (Keep(request) is { } keep)
        {
            return keep;
        }
        if (request.Compute?.Device is { } device && !ComputePools.Devices.Contains(device))
        {
            return Bad("job.invalid_compute_device", "compute.device", $"compute.device must be \"cuda\", \"cpu\" or \"any\"; got \"{device}\".");
        }
        if (request.Missing is not (null or "drop_rows" or "impute"))
        {
            return Bad("job.invalid_missing_policy", "missing", $"missing must be \"drop_rows\" or \"impute\"; got \"{request.Missing}\".");
        }
        return request.MaxRuntime is TimeSpan runtime && (runtime <= TimeSpan.Zero || runtime > options.MaxRuntime)
            ? Bad("job.invalid_max_runtime", "maxRuntime", $"maxRuntime must be positive and at most {options.MaxRuntime} (Jobs:MaxRuntime).")
            : null;
    }

    private static ApiProblem? Keep(SubmitJobRequest request)
    {
        if (request.Keep is not (null or "best" or "last"))
        {
            return Bad("job.invalid_keep", "keep", $"keep must be \"best\" or \"last\"; got \"{request.Keep}\".");
        }
        return request.Keep is not null && request.EarlyStopping?.RestoreBest is bool restore && restore != (request.Keep == "best")
            ? Bad("job.conflicting_keep", "earlyStopping.restoreBest",
                $"earlyStopping.restoreBest ({(restore ? "true" : "false")}) contradicts keep (\"{request.Keep}\"); give keep alone.")
            : null;
    }

    private static ApiProblem? EarlyStopping(EarlyStoppingRequest stopping, bool hasValidation)
    {
        if (!hasValidation)
        {
            return Bad("job.early_stopping_needs_validation", "earlyStopping",
                "earlyStopping monitors the validation split; add \"validation\": {\"fraction\": 0.2}.");
        }
        if (stopping.Patience is < 1)
        {
            return Bad("job.invalid_early_stopping", "earlyStopping.patience", "earlyStopping.patience must be at least 1.");
        }
        if (Range(stopping.MinDelta, 0, MaxMinDelta, false, "earlyStopping.minDelta", "job.invalid_early_stopping") is { } minDelta)
        {
            return minDelta;
        }
        return TryParseMode(stopping.Mode, "earlyStopping.mode", out _, out var problem) ? null : problem;
    }

    private static ApiProblem? Regularization(RegularizationRequest? regularization)
    {
        if (regularization is null)
        {
            return null;
        }
        if (regularization.L1 is not (null or (>= 0 and <= MaxPenalty)) || regularization.L2 is not (null or (>= 0 and <= MaxPenalty)))
        {
            return Bad("job.invalid_regularization", "regularization",
                $"regularization.l1 and l2 must be in [0, {MaxPenalty}]; got {Text(regularization.L1)} and {Text(regularization.L2)}.");
        }
        return regularization.Convention is not (null or "keras" or "pytorch")
            ? Bad("job.invalid_regularization", "regularization.convention", "regularization.convention must be \"keras\" or \"pytorch\".")
            : null;
    }

    private static bool TryReadTarget(JsonElement target, [NotNullWhen(true)] out List<string>? names, [NotNullWhen(false)] out ApiProblem? problem)
    {
        problem = null;
        names = target.ValueKind == JsonValueKind.String ? [target.GetString()!]
            : target.EnumerateArray().All(v => v.ValueKind == JsonValueKind.String) ? target.EnumerateArray().Select(v => v.GetString()!).ToList()
            : null;
        if (names is null || names.Count == 0 || names.Distinct().Count() != names.Count)
        {
            problem = Bad("job.invalid_target", "target", names is null ? "target must be a column name or an array of column names."
                : "target must name at least one column, each once.");
            names = null;
        }
        return problem is null;
    }

    private static ApiProblem? Range(double? value, double low, double high, bool highExclusive, string field, string code = "job.invalid_optimizer") =>
        value is { } v && !(v >= low && (highExclusive ? v < high : v <= high))
            ? Bad(code, field, $"{field} must be in [{low}, {high}{(highExclusive ? ")" : "]")}; got {Text(v)}.")
            : null;

    /// <summary>In (low, high]: for values that must be positive.</summary>
    private static ApiProblem? Above(double? value, double low, double high, string field, string code = "job.invalid_optimizer") =>
        value is { } v && !(v > low && v <= high) ? Bad(code, field, $"{field} must be in ({low}, {high}]; got {Text(v)}.") : null;

    private static ApiProblem? NotApplicable<T>(T? value, string field, string where) => value is null ? null
        : Bad("job.not_applicable", field, $"{field} does not apply to {where}; remove it.");

    private static ApiProblem Missing(string field) => Bad("job.missing_field", field, $"'{field}' is required.");

    internal static string Text(double? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "null";

    internal static ApiProblem Bad(string code, string field, string detail) => ApiProblem.BadRequest(code, detail, field);
}
