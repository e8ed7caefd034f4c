using TrainingService.Compute.Losses;
using TrainingService.Compute.Models;
using TrainingService.Compute.Optimizers;
using TrainingService.Compute.Schedules;
using TrainingService.Compute.Training;
using TrainingService.Server.Datasets;

namespace TrainingService.Server.Jobs;

/// <summary>How class weights were asked for.</summary>
public enum ClassWeightMode
{
    None,
    /// <summary>scikit-learn's n / (C · count_c), counted on the training split.</summary>
    Balanced,
    Explicit,
}

/// <summary>What the model predicts: the task, the target columns, and for classification the label order.</summary>
/// <param name="Task">Regression, binary, multiclass or distribution.</param>
/// <param name="Columns">Target column names.</param>
/// <param name="Labels">Class labels in index order (sorted: numbers ascending, text ordinally, false before true).</param>
/// <param name="Outputs">Model outputs.</param>
public sealed record TargetInfo(LossTask Task, IReadOnlyList<string> Columns, IReadOnlyList<string>? Labels, int Outputs);

/// <summary>A validated spec, resolved against its dataset: everything the worker needs to train.</summary>
public sealed record JobPlan
{
    public required SubmitJobRequest Normalized { get; init; }
    public required Guid DatasetId { get; init; }
    public required TargetInfo Target { get; init; }
    public required IReadOnlyList<ColumnSchema> Features { get; init; }
    public required IReadOnlyList<LossTermSpec> LossTerms { get; init; }
    public required ClassWeightMode ClassWeightMode { get; init; }
    public double[]? ExplicitClassWeights { get; init; }
    public required IReadOnlyList<int> HiddenLayers { get; init; }
    public required Activation Activation { get; init; }
    public required double Dropout { get; init; }
    public required OptimizerSpec Optimizer { get; init; }
    public required ScheduleSpec Schedule { get; init; }
    public required Regularization Regularization { get; init; }
    public EarlyStoppingSpec? EarlyStopping { get; init; }
    public required int Epochs { get; init; }
    public required int BatchSize { get; init; }
    public required int Seed { get; init; }
    public required double ValidationFraction { get; init; }
    public required bool Stratify { get; init; }
    public required bool ImputeMissing { get; init; }
    public required bool Standardize { get; init; }
    public required TimeSpan MaxRuntime { get; init; }
    public required OutputKind OutputKind { get; init; }
    public required OutputTransform OutputTransform { get; init; }
}
