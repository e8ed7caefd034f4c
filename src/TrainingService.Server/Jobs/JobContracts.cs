using System.Text.Json;

namespace TrainingService.Server.Jobs;

/// <summary>A training spec (<c>POST /api/jobs</c>). Only datasetId, target, loss and epochs are required.</summary>
public sealed record SubmitJobRequest
{
    /// <summary>The dataset to train on.</summary>
    public Guid? DatasetId { get; init; }
    /// <summary>Target column name, or several names (multi-output regression, or probability columns for kl_div / soft cross_entropy).</summary>
    public JsonElement? Target { get; init; }
    /// <summary>Feature columns; default: every usable column except the target.</summary>
    public List<string>? Features { get; init; }
    /// <summary>{"type": "linear"} or {"type": "mlp", "hiddenLayers": [128, 64], "activation": "relu", "dropout": 0.1}.</summary>
    public ModelRequest? Model { get; init; }
    /// <summary>{"name": "huber", "delta": 1} or {"terms": [{"name": "huber", "weight": 1}, {"name": "l1", "weight": 0.5}]}.</summary>
    public JsonElement? Loss { get; init; }
    /// <summary>L1/L2 penalties on the weights.</summary>
    public RegularizationRequest? Regularization { get; init; }
    /// <summary>"balanced", {"label": weight, …} or [w0, w1, …] in label order.</summary>
    public JsonElement? ClassWeights { get; init; }
    /// <summary>{"name": "adam", "learningRate": 0.001, …}; default Adam with PyTorch's defaults.</summary>
    public OptimizerRequest? Optimizer { get; init; }
    /// <summary>{"name": "cosine", "warmupEpochs": 2}; default constant.</summary>
    public ScheduleRequest? Schedule { get; init; }
    /// <summary>Maximum epochs (1 … Jobs:MaxEpochs).</summary>
    public int? Epochs { get; init; }
    /// <summary>Rows per mini-batch (default 32).</summary>
    public int? BatchSize { get; init; }
    /// <summary>Seeds initialisation, shuffles, the split and dropout; generated (and reported) when absent.</summary>
    public int? Seed { get; init; }
    /// <summary>{"fraction": 0.2, "stratify": true}; no validation split when absent.</summary>
    public ValidationRequest? Validation { get; init; }
    /// <summary>{"monitor": "valLoss", "patience": 5, …}; needs a validation split.</summary>
    public EarlyStoppingRequest? EarlyStopping { get; init; }
    /// <summary>"drop_rows" (default) or "impute" (mean / most frequent, fitted on the training split).</summary>
    public string? Missing { get; init; }
    /// <summary>Standardize numeric features with the training split's mean and deviation (default true).</summary>
    public bool? Standardize { get; init; }
    /// <summary>Wall-clock limit, e.g. "00:30:00"; exceeded → cancelled with stopReason timeout. Capped by Jobs:MaxRuntime.</summary>
    public TimeSpan? MaxRuntime { get; init; }
    /// <summary>
    /// The model stored: "best" (default: the epoch with the best validation loss, or early stopping's monitor, or the
    /// training loss without a validation split) or "last". Predict and the model download use it.
    /// </summary>
    public string? Keep { get; init; }
    /// <summary>{"device": "cuda" | "cpu" | "any"} (default any): which worker pool may run the job.</summary>
    public ComputeRequest? Compute { get; init; }
}

public sealed record ComputeRequest
{
    /// <summary>cuda: GPU workers only; cpu: CPU workers only; any (default): the first free worker.</summary>
    public string? Device { get; init; }
}

public sealed record ModelRequest
{
    /// <summary>"linear" (linear, logistic or softmax regression: the loss decides) or "mlp".</summary>
    public string? Type { get; init; }
    /// <summary>MLP hidden layer widths, e.g. [128, 64].</summary>
    public List<int>? HiddenLayers { get; init; }
    /// <summary>relu (default), tanh, sigmoid or gelu.</summary>
    public string? Activation { get; init; }
    /// <summary>Dropout after each hidden layer, 0 … 0.9.</summary>
    public double? Dropout { get; init; }
}

public sealed record RegularizationRequest
{
    public double? L1 { get; init; }
    public double? L2 { get; init; }
    /// <summary>"keras" (l2·Σw², default) or "pytorch" (weight-decay reading: l2/2·Σw²).</summary>
    public string? Convention { get; init; }
    /// <summary>Penalise biases too (default false).</summary>
    public bool? IncludeBias { get; init; }
}

public sealed record OptimizerRequest
{
    /// <summary>sgd, adam (default), adamw or rmsprop.</summary>
    public string? Name { get; init; }
    public double? LearningRate { get; init; }
    public double? Momentum { get; init; }
    public bool? Nesterov { get; init; }
    public double? Beta1 { get; init; }
    public double? Beta2 { get; init; }
    public double? Epsilon { get; init; }
    public double? WeightDecay { get; init; }
    public double? Alpha { get; init; }
    public bool? Centered { get; init; }
    /// <summary>Clip the global gradient norm to this value.</summary>
    public double? GradientClipNorm { get; init; }
}

public sealed record ScheduleRequest
{
    /// <summary>constant (default), step, exponential, cosine or reduce_on_plateau.</summary>
    public string? Name { get; init; }
    public int? StepSize { get; init; }
    public double? Gamma { get; init; }
    public int? WarmupEpochs { get; init; }
    public double? MinLearningRate { get; init; }
    public int? Patience { get; init; }
    public double? Factor { get; init; }
    public double? Threshold { get; init; }
    public string? Monitor { get; init; }
    public string? Mode { get; init; }
}

public sealed record ValidationRequest
{
    /// <summary>Share of rows held out, in (0, 0.9].</summary>
    public double? Fraction { get; init; }
    /// <summary>Keep class proportions in both splits (default true for classification).</summary>
    public bool? Stratify { get; init; }
}

public sealed record EarlyStoppingRequest
{
    /// <summary>valLoss (default), trainLoss, or a metric (accuracy, f1, auc, rmse, …).</summary>
    public string? Monitor { get; init; }
    /// <summary>min or max (default from the monitor).</summary>
    public string? Mode { get; init; }
    public int? Patience { get; init; }
    public double? MinDelta { get; init; }
    /// <summary>Keep the best epoch's weights as the model (default true); the older spelling of <c>keep</c>, which it must agree with.</summary>
    public bool? RestoreBest { get; init; }
}

/// <summary>A job as the API shows it.</summary>
public sealed record JobResponse
{
    public required Guid Id { get; init; }
    public required string Status { get; init; }
    /// <summary>For a queued job whose worker pool has no live worker: what it waits for, and since when.</summary>
    public JobWaiting? Waiting { get; init; }
    public Guid? DatasetId { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    public required int EpochsCompleted { get; init; }
    public required JobProgress Progress { get; init; }
    public string? StopReason { get; init; }
    public JobFailure? Failure { get; init; }
    public required int Seed { get; init; }
    public required IReadOnlyList<JobTransition> Transitions { get; init; }
    public required JobSummary Summary { get; init; }
    public JsonElement? Data { get; init; }
    public Guid? RetryOf { get; init; }
    public string? Device { get; init; }
    /// <summary>The epoch the stored model comes from (the spec's <c>keep</c>: best or last), once there is one.</summary>
    public int? ModelEpoch { get; init; }
    /// <summary>The trivial model (training mean or class prior): its losses and metrics, the reference a model must beat.</summary>
    public JsonElement? Baseline { get; init; }
    /// <summary>What the loss curve says so far (docs/diagnoses.md): overfitting, underfitting, a learning rate too high…</summary>
    public required JsonElement Diagnoses { get; init; }
    /// <summary>The sweep this job is a trial of (<c>GET /api/sweeps/{id}</c>), its trial index, and its parameter assignment.</summary>
    public Guid? SweepId { get; init; }
    public int? SweepTrial { get; init; }
    public JsonElement? SweepParameters { get; init; }
    public required JsonElement Spec { get; init; }
}

public sealed record JobProgress(int Epoch, int TotalEpochs);

public sealed record JobFailure(string Code, string Message, int? Epoch);

/// <summary>A status change; an attempt's start names its worker (host:pid), its device and its attempt id.</summary>
public sealed record JobTransition(string Status, DateTimeOffset At, string? Note, string? Worker = null, string? Device = null, string? Attempt = null);

/// <summary>A queued job that no live worker can take: the device it asked for, a sentence, since when, and for how many seconds.</summary>
public sealed record JobWaiting(string Device, string Message, DateTimeOffset Since, double Seconds);

/// <summary>Summary fields kept on the job row, so listings never read histories.</summary>
public sealed record JobSummary(double? LastTrainLoss, double? LastValLoss, double? BestValLoss, int? BestValLossEpoch,
    int? BestEpoch);

/// <summary>A page of jobs, newest first.</summary>
public sealed record JobPage(IReadOnlyList<JobResponse> Items, string? NextCursor);
