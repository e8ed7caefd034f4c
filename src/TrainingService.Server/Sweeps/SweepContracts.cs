using System.Text.Json;

namespace TrainingService.Server.Sweeps;

/// <summary>
/// A sweep (<c>POST /api/sweeps</c>): a base job spec, the parameters to vary (paths into the spec), how to choose them,
/// and what to optimise. Each trial is an ordinary job. docs/sweeps.md has the rules.
/// </summary>
public sealed record SubmitSweepRequest
{
    /// <summary>An ordinary job spec (as for <c>POST /api/jobs</c>); each trial is this spec with its parameters set.</summary>
    public JsonElement? Base { get; init; }
    /// <summary>
    /// Path → search space, e.g. <c>"optimizer.learningRate": {"distribution": "log_uniform", "min": 1e-4, "max": 0.1}</c>
    /// or <c>"loss": {"values": [{"name": "mse"}, {"name": "huber", "delta": 1}]}</c>.
    /// </summary>
    public Dictionary<string, ParameterRequest>? Parameters { get; init; }
    /// <summary>grid, random (default) or tpe.</summary>
    public string? Method { get; init; }
    /// <summary>Trials to run (default: the grid's size for a grid, Sweeps:DefaultTrials otherwise).</summary>
    public int? MaxTrials { get; init; }
    /// <summary>Trials of this sweep queued or running at once (default Sweeps:DefaultParallel).</summary>
    public int? MaxParallel { get; init; }
    /// <summary>{"metric": "val.rmse", "goal": "minimize"}; default valLoss when the loss does not vary.</summary>
    public ObjectiveRequest? Objective { get; init; }
    /// <summary>{"type": "asha", "minEpochs": 3, "reductionFactor": 3} or {"type": "median", "minEpochs": 3, "minTrials": 5}.</summary>
    public EarlyTerminationRequest? EarlyTermination { get; init; }
    /// <summary>Seeds the choice of parameters; generated (and reported) when absent.</summary>
    public int? Seed { get; init; }
    /// <summary>Wall-clock limit of the whole sweep, e.g. "02:00:00": then it starts no trial and cancels those running.</summary>
    public TimeSpan? MaxRuntime { get; init; }
}

/// <summary>One parameter's search space: a list of values, or a distribution between min and max.</summary>
public sealed record ParameterRequest
{
    /// <summary>The values to choose from: numbers, strings, arrays or whole objects (such as losses with their parameters).</summary>
    public List<JsonElement>? Values { get; init; }
    /// <summary>uniform, log_uniform or int_uniform (both ends included).</summary>
    public string? Distribution { get; init; }
    public double? Min { get; init; }
    public double? Max { get; init; }
}

public sealed record ObjectiveRequest
{
    /// <summary>valLoss, trainLoss, or val.&lt;metric&gt; (val.rmse, val.mae, val.r2, val.accuracy, val.macroF1, val.logLoss, val.brier, …).</summary>
    public string? Metric { get; init; }
    /// <summary>minimize or maximize (default from the metric).</summary>
    public string? Goal { get; init; }
}

public sealed record EarlyTerminationRequest
{
    /// <summary>asha (asynchronous successive halving) or median (median stopping).</summary>
    public string? Type { get; init; }
    /// <summary>The first epoch at which a trial may be stopped (ASHA's first rung).</summary>
    public int? MinEpochs { get; init; }
    /// <summary>ASHA: rungs at minEpochs·factor^k; a trial continues past a rung only in the best 1/factor there (default 3).</summary>
    public int? ReductionFactor { get; init; }
    /// <summary>Median stopping: how many other trials must have reached an epoch before it is compared there (default 5).</summary>
    public int? MinTrials { get; init; }
}

/// <summary>A sweep as the API shows it.</summary>
public sealed record SweepResponse
{
    public required Guid Id { get; init; }
    /// <summary>running, completed or cancelled.</summary>
    public required string Status { get; init; }
    /// <summary>Why it ended: max_trials, grid_exhausted, max_runtime or cancelled.</summary>
    public string? StopReason { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    public required SweepCounts Trials { get; init; }
    /// <summary>The best trial so far by the objective (a pruned trial counts with the epochs it trained).</summary>
    public SweepTrialResponse? Best { get; init; }
    /// <summary>The objective's best value after each trial with a value, in trial order: how the search converges.</summary>
    public required IReadOnlyList<BestSoFarPoint> BestSoFar { get; init; }
    /// <summary>The sweep as submitted, with every default filled in (the seed too).</summary>
    public required JsonElement Spec { get; init; }
}

/// <summary>Trial counts: planned (maxTrials, or fewer for a smaller grid), created, and created by job state (pruned apart).</summary>
public sealed record SweepCounts(int Planned, int Created, IReadOnlyDictionary<string, int> ByState);

public sealed record BestSoFarPoint(int Trial, double Objective, double Best);

/// <summary>One trial: its job, index, parameters, state and objective.</summary>
public sealed record SweepTrialResponse
{
    public required Guid JobId { get; init; }
    public required int Trial { get; init; }
    public required JsonElement Parameters { get; init; }
    /// <summary>The job's status, or <c>pruned</c> for a trial early termination stopped (its job succeeded with stop reason pruned).</summary>
    public required string State { get; init; }
    public string? StopReason { get; init; }
    /// <summary>The best value of the objective over the trial's epochs; null before its first epoch.</summary>
    public double? Objective { get; init; }
    /// <summary>The epoch that value comes from.</summary>
    public int? ObjectiveEpoch { get; init; }
    public required int EpochsCompleted { get; init; }
}

public sealed record SweepTrialPage(IReadOnlyList<SweepTrialResponse> Items);

public sealed record SweepPage(IReadOnlyList<SweepResponse> Items);
