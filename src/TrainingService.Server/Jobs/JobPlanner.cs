using System.Globalization;
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

namespace TrainingService.Server.Jobs;

/// <summary>
/// Validates a training spec and resolves it against the dataset's schema. Everything a bad spec can get wrong is
/// refused here, at submit time, with the offending field: ranges (400) and mismatches with the data (422), such as a
/// cross-entropy loss on a continuous target. The worker runs the same resolution on the stored, normalised spec.
/// </summary>
public sealed class JobPlanner(IOptions<JobOptions> jobOptions)
{
    private static readonly Dictionary<string, OptimizerKind> Optimizers = new(StringComparer.OrdinalIgnoreCase)
    {
        ["sgd"] = OptimizerKind.Sgd,
        ["adam"] = OptimizerKind.Adam,
        ["adamw"] = OptimizerKind.AdamW,
        ["rmsprop"] = OptimizerKind.RmsProp,
    };

    private static readonly Dictionary<string, ScheduleKind> Schedules = new(StringComparer.OrdinalIgnoreCase)
    {
        ["constant"] = ScheduleKind.Constant,
        ["step"] = ScheduleKind.Step,
        ["exponential"] = ScheduleKind.Exponential,
        ["cosine"] = ScheduleKind.Cosine,
        ["reduce_on_plateau"] = ScheduleKind.ReduceOnPlateau,
    };

    private static readonly Dictionary<string, Activation> Activations = new(StringComparer.OrdinalIgnoreCase)
    {
        ["relu"] = Activation.Relu,
        ["tanh"] = Activation.Tanh,
        ["sigmoid"] = Activation.Sigmoid,
        ["gelu"] = Activation.Gelu,
    };

    /// <summary>Checks what can be checked without the dataset; throws <see cref="ApiProblemException"/>.</summary>
    public void ValidateShape(SubmitJobRequest request)
    {
        var options = jobOptions.Value;
        Require(request.DatasetId is not null, "datasetId");
        Require(request.Target is { ValueKind: not (JsonValueKind.Null or JsonValueKind.Undefined) }, "target");
        if (request.Target!.Value.ValueKind is not (JsonValueKind.String or JsonValueKind.Array))
        {
            throw Bad("job.invalid_target", "target", "target must be a column name or an array of column names.");
        }
        Require(request.Loss is { ValueKind: JsonValueKind.Object or JsonValueKind.String }, "loss");
        Require(request.Epochs is not null, "epochs");
        if (request.Epochs is < 1 || request.Epochs > options.MaxEpochs)
        {
            throw Bad("job.epochs_out_of_range", "epochs", $"epochs must be between 1 and {options.MaxEpochs}; got {request.Epochs}.");
        }
        if (request.BatchSize is < 1 || request.BatchSize > options.MaxBatchSize)
        {
            throw Bad("job.batch_size_out_of_range", "batchSize",
                $"batchSize must be between 1 and {options.MaxBatchSize} (Jobs:MaxBatchSize); got {request.BatchSize}.");
        }
        if (request.Features is { } features && features.IndexOf(null!) is int blank and >= 0)
        {
            throw Bad("job.invalid_features", $"features[{blank}]", "features must be an array of column names; this entry is null.");
        }
        ValidateModel(request.Model, options);
        ValidateOptimizer(request.Optimizer);
        ValidateSchedule(request.Schedule);
        if (request.Validation is { } validation && (validation.Fraction is not (> 0 and <= 0.9)))
        {
            throw Bad("job.invalid_validation_fraction", "validation.fraction",
                $"validation.fraction must be in (0, 0.9]; got {Text(validation.Fraction)}.");
        }
        if (request.EarlyStopping is { } stopping)
        {
            if (request.Validation is null)
            {
                throw Bad("job.early_stopping_needs_validation", "earlyStopping",
                    "earlyStopping monitors the validation split; add \"validation\": {\"fraction\": 0.2}.");
            }
            if (stopping.Patience is < 1)
            {
                throw Bad("job.invalid_early_stopping", "earlyStopping.patience", "earlyStopping.patience must be at least 1.");
            }
            if (stopping.MinDelta is < 0 or double.NaN)
            {
                throw Bad("job.invalid_early_stopping", "earlyStopping.minDelta", "earlyStopping.minDelta must be ≥ 0.");
            }
            ParseMode(stopping.Mode, "earlyStopping.mode");
        }
        if (request.Missing is not (null or "drop_rows" or "impute"))
        {
            throw Bad("job.invalid_missing_policy", "missing", $"missing must be \"drop_rows\" or \"impute\"; got \"{request.Missing}\".");
        }
        if (request.MaxRuntime is TimeSpan runtime && (runtime <= TimeSpan.Zero || runtime > options.MaxRuntime))
        {
            throw Bad("job.invalid_max_runtime", "maxRuntime", $"maxRuntime must be positive and at most {options.MaxRuntime} (Jobs:MaxRuntime).");
        }
        if (request.Regularization is { } regularization)
        {
            if (regularization.L1 is < 0 or double.NaN || regularization.L2 is < 0 or double.NaN)
            {
                throw Bad("job.invalid_regularization", "regularization", "regularization.l1 and l2 must be ≥ 0.");
            }
            if (regularization.Convention is not (null or "keras" or "pytorch"))
            {
                throw Bad("job.invalid_regularization", "regularization.convention", "regularization.convention must be \"keras\" or \"pytorch\".");
            }
        }
        ParseLoss(request.Loss!.Value);
    }

    /// <summary>Resolves a spec against its dataset's columns; fills in defaults and the seed.</summary>
    public JobPlan Plan(SubmitJobRequest request, Guid datasetId, IReadOnlyList<ColumnSchema> columns, int? generatedSeed = null)
    {
        ValidateShape(request);
        var options = jobOptions.Value;
        var byName = columns.ToDictionary(c => c.Name, StringComparer.Ordinal);
        var targetNames = ReadTarget(request.Target!.Value);
        var targetColumns = targetNames.Select((n, i) => Column(byName, n, TargetField(targetNames.Count, i))).ToList();
        var terms = ParseLoss(request.Loss!.Value);
        var target = ResolveTarget(targetColumns, terms);

        List<ColumnSchema> features;
        if (request.Features is { } names)
        {
            features = names.Select((n, i) => Column(byName, n, $"features[{i}]")).ToList();
            for (int i = 0; i < features.Count; i++)
            {
                if (!features[i].Usable)
                {
                    throw Unprocessable("job.unusable_column", $"features[{i}]",
                        $"Column '{features[i].Name}' is {features[i].Type} and cannot be a feature. {features[i].Note}");
                }
                if (targetNames.Contains(features[i].Name))
                {
                    throw Unprocessable("job.target_in_features", $"features[{i}]", $"Column '{features[i].Name}' is the target.");
                }
            }
            if (features.Select(f => f.Name).Distinct().Count() != features.Count)
            {
                throw Bad("job.duplicate_feature", "features", "A column is listed twice in features.");
            }
        }
        else
        {
            features = columns.Where(c => c.Usable && !targetNames.Contains(c.Name)).ToList();
        }
        if (features.Count == 0)
        {
            throw Unprocessable("job.no_features", "features", "No usable feature columns remain besides the target.");
        }

        for (int i = 0; i < terms.Count; i++)
        {
            if (LossCatalog.Find(terms[i].Name).Name == "poisson_nll"
                && terms[i].Parameters?.FirstOrDefault(p => LossArguments.Normalize(p.Key) == "loginput").Value is false)
            {
                throw Unprocessable("job.unsupported_loss_parameter", $"{CombinedLoss.TermField(terms.Count, i)}.log_input",
                    "In training the model's output is unconstrained, so poisson_nll learns log-rates (log_input: true); " +
                    "log_input: false is for evaluating given rates.");
            }
        }
        var (weightMode, explicitWeights) = ResolveClassWeights(request.ClassWeights, target);
        var placeholder = weightMode == ClassWeightMode.None ? null
            : explicitWeights ?? Enumerable.Repeat(1.0, target.Task == LossTask.Binary ? 2 : target.Outputs).ToArray();
        try
        {
            CombinedLoss.Bind(terms, BindingFor(target, placeholder));
        }
        catch (LossSpecException e)
        {
            throw new ApiProblemException(StatusCodes.Status400BadRequest, e.Code, e.Message, e.Field);
        }

        int seed = request.Seed ?? generatedSeed ?? Random.Shared.Next();
        var optimizer = Optimizer(request.Optimizer);
        var schedule = Schedule(request.Schedule);
        bool hasValidation = request.Validation is not null;
        var metricNames = Metrics.Names(Kind(target.Task));
        string? stoppingMonitor = request.EarlyStopping?.Monitor ?? (request.EarlyStopping is null ? null : "valLoss");
        CheckMonitor(stoppingMonitor, metricNames, "earlyStopping.monitor");
        CheckMonitor(schedule.Monitor, metricNames, "schedule.monitor");
        if (!hasValidation && schedule.Monitor == "valLoss")
        {
            throw Bad("job.unknown_monitor", "schedule.monitor", "schedule.monitor valLoss needs a validation split.");
        }

        var normalized = request with
        {
            Seed = seed,
            BatchSize = request.BatchSize ?? 32,
            Model = request.Model ?? new ModelRequest { Type = "linear" },
            Optimizer = (request.Optimizer ?? new OptimizerRequest()) with
            {
                Name = (request.Optimizer?.Name ?? "adam").ToLowerInvariant(),
                LearningRate = optimizer.LearningRate,
            },
            Missing = request.Missing ?? "drop_rows",
            Standardize = request.Standardize ?? true,
            MaxRuntime = request.MaxRuntime ?? options.MaxRuntime,
            Validation = request.Validation is null ? null : request.Validation with
            {
                Stratify = request.Validation.Stratify ?? target.Task is LossTask.Binary or LossTask.Multiclass,
            },
        };
        var model = normalized.Model!;
        bool mlp = string.Equals(model.Type, "mlp", StringComparison.OrdinalIgnoreCase);
        return new JobPlan
        {
            Normalized = normalized,
            DatasetId = datasetId,
            Target = target,
            Features = features,
            LossTerms = terms,
            ClassWeightMode = weightMode,
            ExplicitClassWeights = explicitWeights,
            HiddenLayers = mlp ? model.HiddenLayers! : [],
            Activation = mlp ? Activations[model.Activation ?? "relu"] : Activation.Identity,
            Dropout = mlp ? model.Dropout ?? 0 : 0,
            Optimizer = optimizer,
            Schedule = schedule,
            Regularization = request.Regularization is { } r
                ? new Regularization(r.L1 ?? 0, r.L2 ?? 0,
                    r.Convention == "pytorch" ? RegularizationConvention.PyTorch : RegularizationConvention.Keras, r.IncludeBias ?? false)
                : Regularization.None,
            EarlyStopping = request.EarlyStopping is { } s
                ? new EarlyStoppingSpec(stoppingMonitor!, ParseMode(s.Mode, "earlyStopping.mode"), s.Patience ?? 5, s.MinDelta ?? 0, s.RestoreBest ?? true)
                : null,
            Epochs = request.Epochs!.Value,
            BatchSize = normalized.BatchSize!.Value,
            Seed = seed,
            ValidationFraction = request.Validation?.Fraction ?? 0,
            Stratify = normalized.Validation?.Stratify ?? false,
            ImputeMissing = normalized.Missing == "impute",
            Standardize = normalized.Standardize!.Value,
            MaxRuntime = normalized.MaxRuntime!.Value,
            OutputKind = Kind(target.Task),
            OutputTransform = Transform(target.Task, terms),
        };
    }

    /// <summary>The loss binding for a target (class weights resolved later for "balanced").</summary>
    public static LossBinding BindingFor(TargetInfo target, double[]? classWeights) => target.Task switch
    {
        LossTask.Multiclass => new LossBinding(TargetLayout.ClassIndex, target.Outputs, OnLogits: true, classWeights),
        _ => new LossBinding(TargetLayout.Elementwise, target.Outputs, OnLogits: true, classWeights),
    };

    /// <summary>Parses <c>loss</c>: a name, {"name": …, params…}, or {"terms": [{"name", "weight", params…}]}.</summary>
    public static IReadOnlyList<LossTermSpec> ParseLoss(JsonElement loss, string field = "loss")
    {
        if (loss.ValueKind == JsonValueKind.String)
        {
            return [new LossTermSpec(loss.GetString()!)];
        }
        if (loss.TryGetProperty("terms", out var terms))
        {
            if (terms.ValueKind != JsonValueKind.Array || terms.GetArrayLength() == 0)
            {
                throw Bad("loss.empty", $"{field}.terms", "loss.terms must be a non-empty array of {\"name\", \"weight\", …}.");
            }
            return terms.EnumerateArray().Select((t, i) => ParseTerm(t, $"{field}.terms[{i}]", withWeight: true)).ToList();
        }
        return [ParseTerm(loss, field, withWeight: false)];
    }

    private static LossTermSpec ParseTerm(JsonElement term, string field, bool withWeight)
    {
        if (term.ValueKind != JsonValueKind.Object || !term.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String)
        {
            throw Bad("loss.missing_name", $"{field}.name", "Each loss needs a \"name\" (see GET /api/losses).");
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
                    throw Bad("loss.invalid_parameter", $"{field}.weight",
                        "In a combined loss, 'weight' is the term's weight (a number); give per-class weights with classWeights.");
                }
                weight = property.Value.GetDouble();
                continue;
            }
            parameters[property.Name] = ParameterValue(property.Value, $"{field}.{property.Name}");
        }
        return new LossTermSpec(name.GetString()!, parameters, weight);
    }

    /// <summary>JSON parameter values as the loss catalogue reads them: double, bool or double[].</summary>
    public static object? ParameterValue(JsonElement value, string field) => value.ValueKind switch
    {
        JsonValueKind.Number => value.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Null => null,
        JsonValueKind.Array when value.EnumerateArray().All(v => v.ValueKind == JsonValueKind.Number) =>
            value.EnumerateArray().Select(v => v.GetDouble()).ToArray(),
        _ => throw Bad("loss.invalid_parameter", field, $"Parameter '{field}' must be a number, true/false, or an array of numbers."),
    };

    private static TargetInfo ResolveTarget(List<ColumnSchema> targets, IReadOnlyList<LossTermSpec> terms)
    {
        var definitions = terms.Select((t, i) => LossCatalog.TryFind(t.Name, out var d) ? d
            : throw Bad("loss.unknown", $"{CombinedLoss.TermField(terms.Count, i)}.name",
                $"Unknown loss '{t.Name}'. Known losses: {string.Join(", ", LossCatalog.All.Select(d => d.Name))}.")).ToList();
        var lossTasks = definitions.Skip(1).Aggregate(definitions[0].Tasks.AsEnumerable(), (all, d) => all.Intersect(d.Tasks)).ToList();
        string lossName = string.Join(" + ", definitions.Select(d => d.Name));
        for (int i = 0; i < targets.Count; i++)
        {
            if (!targets[i].Usable)
            {
                throw Unprocessable("job.unusable_column", TargetField(targets.Count, i),
                    $"Column '{targets[i].Name}' is {targets[i].Type} and cannot be a target. {targets[i].Note}");
            }
        }
        var (possible, description, labels) = Describe(targets);
        var task = lossTasks.FirstOrDefault(possible.Contains, (LossTask)(-1));
        if ((int)task == -1)
        {
            if (labels is { Count: 1 } && lossTasks.Any(t => t is LossTask.Binary or LossTask.Multiclass))
            {
                throw Unprocessable("job.single_class_target", "target",
                    $"Target '{targets[0].Name}' has a single class ('{labels[0]}'); classification needs at least two.");
            }
            throw Unprocessable("job.loss_target_mismatch", "loss",
                $"Loss '{lossName}' fits {string.Join(" or ", lossTasks.Select(t => t.ToString().ToLowerInvariant()))} targets, " +
                $"but the target is {description}.",
                new Dictionary<string, object?> { ["loss"] = lossName, ["target"] = targets.Select(t => t.Name).ToList() });
        }
        return task switch
        {
            LossTask.Binary => labels!.Count == 2 ? new TargetInfo(task, [targets[0].Name], labels, 1)
                : throw Unprocessable("job.loss_target_mismatch", "loss",
                    $"Loss '{lossName}' is binary, but target '{targets[0].Name}' has {labels.Count} classes; use cross_entropy.",
                    new Dictionary<string, object?> { ["loss"] = lossName, ["target"] = new[] { targets[0].Name } }),
            LossTask.Multiclass => new TargetInfo(task, [targets[0].Name], labels, labels!.Count),
            _ => new TargetInfo(task, targets.Select(t => t.Name).ToList(), null, targets.Count),
        };
    }

    /// <summary>Which tasks a target supports, in words, and its class labels when it is a label column.</summary>
    private static (List<LossTask> Tasks, string Description, IReadOnlyList<string>? Labels) Describe(List<ColumnSchema> targets)
    {
        if (targets.Count > 1)
        {
            var tasks = new List<LossTask>();
            if (targets.All(t => t.Type == ColumnType.Numeric))
            {
                tasks.Add(LossTask.Regression);
                if (targets.All(t => t.Stats is { Min: >= 0, Max: <= 1 }))
                {
                    tasks.Add(LossTask.Distribution);
                }
            }
            return (tasks, $"{targets.Count} columns" + (tasks.Contains(LossTask.Distribution) ? " of probabilities"
                : tasks.Count > 0 ? " of numbers (not all in [0, 1])" : " that are not all numeric"), null);
        }
        var column = targets[0];
        var labels = Labels(column);
        var possible = new List<LossTask>();
        if (column.Type == ColumnType.Numeric)
        {
            possible.Add(LossTask.Regression);
        }
        if (labels is { Count: >= 2 })
        {
            if (labels.Count == 2)
            {
                possible.Add(LossTask.Binary);
            }
            possible.Add(LossTask.Multiclass);
        }
        string description = column.Type switch
        {
            ColumnType.Numeric when labels is null =>
                $"'{column.Name}', a continuous numeric column ({(column.DistinctCapped ? $"more than {column.Distinct}" : column.Distinct.ToString(CultureInfo.InvariantCulture))} distinct values" +
                (column.Integral == false ? ", not all whole numbers)" : ")"),
            _ => $"'{column.Name}', a {column.Type} column with {labels?.Count ?? 0} classes",
        };
        return (possible, description, labels);
    }

    /// <summary>Class labels of a label column in index order, or null for a continuous column.</summary>
    public static IReadOnlyList<string>? Labels(ColumnSchema column)
    {
        if (column.Values is null || column.DistinctCapped)
        {
            return null;
        }
        return column.Type switch
        {
            ColumnType.Numeric when column.Integral == true =>
                column.Values.Select(v => v.Value).OrderBy(v => double.Parse(v, CultureInfo.InvariantCulture)).ToList(),
            ColumnType.Boolean => column.Values.Select(v => v.Value.Trim().ToLowerInvariant()).Distinct().OrderBy(v => v == "true").ToList(),
            ColumnType.Categorical => column.CategoriesInCodeOrder(),
            _ => null,
        };
    }

    private static (ClassWeightMode, double[]?) ResolveClassWeights(JsonElement? weights, TargetInfo target)
    {
        if (weights is null || weights.Value.ValueKind == JsonValueKind.Null)
        {
            return (ClassWeightMode.None, null);
        }
        if (target.Labels is null)
        {
            throw Unprocessable("job.invalid_class_weights", "classWeights", "classWeights apply to classification targets only.");
        }
        var labels = target.Labels;
        var value = weights.Value;
        if (value.ValueKind == JsonValueKind.String && value.GetString() == "balanced")
        {
            return (ClassWeightMode.Balanced, null);
        }
        double[] result;
        if (value.ValueKind == JsonValueKind.Array)
        {
            if (value.GetArrayLength() != labels.Count || value.EnumerateArray().Any(v => v.ValueKind != JsonValueKind.Number))
            {
                throw Bad("job.invalid_class_weights", "classWeights",
                    $"classWeights as an array needs {labels.Count} numbers, in label order: {string.Join(", ", labels)}.");
            }
            result = value.EnumerateArray().Select(v => v.GetDouble()).ToArray();
        }
        else if (value.ValueKind == JsonValueKind.Object)
        {
            result = Enumerable.Repeat(1.0, labels.Count).ToArray();
            foreach (var property in value.EnumerateObject())
            {
                int index = IndexOf(labels, property.Name);
                if (index < 0 || property.Value.ValueKind != JsonValueKind.Number)
                {
                    throw Bad("job.invalid_class_weights", $"classWeights.{property.Name}",
                        $"'{property.Name}' is not a class of the target (classes: {string.Join(", ", labels)}), or its weight is not a number.");
                }
                result[index] = property.Value.GetDouble();
            }
        }
        else
        {
            throw Bad("job.invalid_class_weights", "classWeights", "classWeights must be \"balanced\", an object {label: weight}, or an array.");
        }
        if (result.Any(w => !double.IsFinite(w) || w < 0))
        {
            throw Bad("job.invalid_class_weights", "classWeights", "Class weights must be finite and ≥ 0.");
        }
        return (ClassWeightMode.Explicit, result);
    }

    /// <summary>A label's index; a numeric label also matches by value ("1" and "1.0").</summary>
    public static int IndexOf(IReadOnlyList<string> labels, string label)
    {
        for (int i = 0; i < labels.Count; i++)
        {
            if (labels[i] == label || labels[i] == CellValues.Key(label) || labels[i] == label.Trim().ToLowerInvariant() && labels[i] is "true" or "false")
            {
                return i;
            }
        }
        return -1;
    }

    private static List<string> ReadTarget(JsonElement target)
    {
        if (target.ValueKind == JsonValueKind.String)
        {
            return [target.GetString()!];
        }
        var names = target.EnumerateArray().Select(v => v.ValueKind == JsonValueKind.String ? v.GetString()!
            : throw Bad("job.invalid_target", "target", "target must be a column name or an array of column names.")).ToList();
        if (names.Count == 0 || names.Distinct().Count() != names.Count)
        {
            throw Bad("job.invalid_target", "target", "target must name at least one column, each once.");
        }
        return names;
    }

    private static string TargetField(int targets, int index) => targets == 1 ? "target" : $"target[{index}]";

    private static ColumnSchema Column(Dictionary<string, ColumnSchema> byName, string name, string field) =>
        byName.TryGetValue(name, out var column) ? column
            : throw Unprocessable("job.unknown_column", field,
                $"The dataset has no column '{name}'. Columns: {string.Join(", ", byName.Keys.Take(50))}{(byName.Count > 50 ? ", …" : "")}.");

    private void ValidateModel(ModelRequest? model, JobOptions options)
    {
        if (model is null)
        {
            return;
        }
        string type = model.Type ?? "linear";
        if (string.Equals(type, "linear", StringComparison.OrdinalIgnoreCase))
        {
            return;
        }
        if (!string.Equals(type, "mlp", StringComparison.OrdinalIgnoreCase))
        {
            throw Bad("job.unknown_model", "model.type", $"model.type must be \"linear\" or \"mlp\"; got \"{type}\".");
        }
        if (model.HiddenLayers is not { Count: > 0 })
        {
            throw Bad("job.invalid_hidden_layers", "model.hiddenLayers", "An mlp needs hiddenLayers, e.g. [128, 64].");
        }
        if (model.HiddenLayers.Count > options.MaxHiddenLayers)
        {
            throw Bad("job.invalid_hidden_layers", "model.hiddenLayers", $"At most {options.MaxHiddenLayers} hidden layers (Jobs:MaxHiddenLayers).");
        }
        for (int i = 0; i < model.HiddenLayers.Count; i++)
        {
            if (model.HiddenLayers[i] < 1 || model.HiddenLayers[i] > options.MaxHiddenUnits)
            {
                throw Bad("job.invalid_hidden_layers", $"model.hiddenLayers[{i}]",
                    $"Hidden layer widths must be between 1 and {options.MaxHiddenUnits} (Jobs:MaxHiddenUnits); got {model.HiddenLayers[i]}.");
            }
        }
        if (model.Activation is { } activation && !Activations.ContainsKey(activation))
        {
            throw Bad("job.unknown_activation", "model.activation", $"Unknown activation '{activation}'; use relu, tanh, sigmoid or gelu.");
        }
        if (model.Dropout is { } dropout && dropout is not (>= 0 and <= 0.9))
        {
            throw Bad("job.invalid_dropout", "model.dropout", $"model.dropout must be in [0, 0.9]; got {Text(dropout)}.");
        }
    }

    private static void ValidateOptimizer(OptimizerRequest? optimizer)
    {
        if (optimizer is null)
        {
            return;
        }
        if (optimizer.Name is { } name && !Optimizers.ContainsKey(name))
        {
            throw Bad("job.unknown_optimizer", "optimizer.name", $"Unknown optimizer '{name}'; use sgd, adam, adamw or rmsprop.");
        }
        if (optimizer.LearningRate is { } lr && (!double.IsFinite(lr) || lr <= 0))
        {
            throw Bad("job.invalid_learning_rate", "optimizer.learningRate", $"learningRate must be a finite number > 0; got {Text(lr)}.");
        }
        CheckRange(optimizer.Momentum, 0, 1, false, "optimizer.momentum");
        CheckRange(optimizer.Beta1, 0, 1, true, "optimizer.beta1");
        CheckRange(optimizer.Beta2, 0, 1, true, "optimizer.beta2");
        CheckRange(optimizer.Alpha, 0, 1, true, "optimizer.alpha");
        if (optimizer.Epsilon is { } eps && !(eps > 0 && double.IsFinite(eps)))
        {
            throw Bad("job.invalid_optimizer", "optimizer.epsilon", "optimizer.epsilon must be > 0.");
        }
        if (optimizer.WeightDecay is { } decay && !(decay >= 0 && double.IsFinite(decay)))
        {
            throw Bad("job.invalid_optimizer", "optimizer.weightDecay", "optimizer.weightDecay must be ≥ 0.");
        }
        if (optimizer.GradientClipNorm is { } clip && !(clip > 0 && double.IsFinite(clip)))
        {
            throw Bad("job.invalid_optimizer", "optimizer.gradientClipNorm", "optimizer.gradientClipNorm must be > 0.");
        }
        if (optimizer.Nesterov == true && !(optimizer.Momentum > 0))
        {
            throw Bad("job.invalid_optimizer", "optimizer.nesterov", "Nesterov momentum needs momentum > 0.");
        }
    }

    private static void ValidateSchedule(ScheduleRequest? schedule)
    {
        if (schedule is null)
        {
            return;
        }
        if (schedule.Name is { } name && !Schedules.ContainsKey(name))
        {
            throw Bad("job.unknown_schedule", "schedule.name", $"Unknown schedule '{name}'; use constant, step, exponential, cosine or reduce_on_plateau.");
        }
        if (schedule.StepSize is < 1)
        {
            throw Bad("job.invalid_schedule", "schedule.stepSize", "schedule.stepSize must be at least 1.");
        }
        CheckRange(schedule.Gamma, 0, 1, true, "schedule.gamma", code: "job.invalid_schedule");
        CheckRange(schedule.Factor, 0, 1, true, "schedule.factor", code: "job.invalid_schedule");
        if (schedule.WarmupEpochs is < 0 || schedule.Patience is < 0)
        {
            throw Bad("job.invalid_schedule", "schedule", "schedule.warmupEpochs and patience must be ≥ 0.");
        }
        foreach (var (value, field) in new[] { (schedule.MinLearningRate, "schedule.minLearningRate"), (schedule.Threshold, "schedule.threshold") })
        {
            if (value is { } v && !(v >= 0 && double.IsFinite(v)))
            {
                throw Bad("job.invalid_schedule", field, $"{field} must be a finite number ≥ 0; got {Text(v)}.");
            }
        }
        ParseMode(schedule.Mode, "schedule.mode");
    }

    private static OptimizerSpec Optimizer(OptimizerRequest? request)
    {
        var kind = Optimizers[request?.Name ?? "adam"];
        return new OptimizerSpec(kind, request?.LearningRate ?? OptimizerSpec.DefaultLearningRate(kind), request?.Momentum,
            request?.Nesterov ?? false, request?.Beta1, request?.Beta2, request?.Epsilon, request?.WeightDecay, request?.Alpha,
            request?.Centered ?? false, request?.GradientClipNorm);
    }

    private static ScheduleSpec Schedule(ScheduleRequest? request) => request is null ? ScheduleSpec.Constant
        : new ScheduleSpec(Schedules[request.Name ?? "constant"], request.StepSize, request.Gamma, request.WarmupEpochs,
            request.MinLearningRate, request.Patience, request.Factor, request.Threshold, request.Monitor,
            ParseMode(request.Mode, "schedule.mode"));

    private static MonitorMode? ParseMode(string? mode, string field) => mode switch
    {
        null => null,
        "min" => MonitorMode.Min,
        "max" => MonitorMode.Max,
        _ => throw Bad("job.invalid_mode", field, $"{field} must be \"min\" or \"max\"."),
    };

    private static void CheckMonitor(string? monitor, IReadOnlyList<string> metrics, string field)
    {
        if (monitor is not null && monitor is not ("valLoss" or "trainLoss") && !metrics.Contains(monitor))
        {
            throw Bad("job.unknown_monitor", field,
                $"Unknown monitor '{monitor}'; use valLoss, trainLoss or one of this target's metrics: {string.Join(", ", metrics)}.");
        }
    }

    private static void CheckRange(double? value, double low, double high, bool highExclusive, string field, string code = "job.invalid_optimizer")
    {
        if (value is { } v && !(v >= low && (highExclusive ? v < high : v <= high)))
        {
            throw Bad(code, field, $"{field} must be in [{low}, {high}{(highExclusive ? ")" : "]")}; got {Text(v)}.");
        }
    }

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
    private static OutputTransform Transform(LossTask task, IReadOnlyList<LossTermSpec> terms)
    {
        var names = terms.Select(t => LossCatalog.Find(t.Name).Name).ToList();
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

    private static void Require(bool present, string field)
    {
        if (!present)
        {
            throw Bad("job.missing_field", field, $"'{field}' is required.");
        }
    }

    private static string Text(double? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "null";

    private static ApiProblemException Bad(string code, string field, string detail) =>
        new(StatusCodes.Status400BadRequest, code, detail, field);

    private static ApiProblemException Unprocessable(string code, string field, string detail, IReadOnlyDictionary<string, object?>? extensions = null) =>
        new(StatusCodes.Status422UnprocessableEntity, code, detail, field, extensions);
}
