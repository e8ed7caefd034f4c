using TrainingService.Compute.Losses;
using TrainingService.Compute.Models;
using TrainingService.Compute.Optimizers;
using TrainingService.Compute.Schedules;
using TrainingService.Compute.Training;
using TrainingService.Server.Datasets;
using TrainingService.Server.Preprocessing;

namespace TrainingService.Server.Jobs;

/// <summary>A spec that passed <see cref="JobSpecValidator"/>: the request, its target names and its parsed loss.</summary>
public sealed record ValidatedSpec(SubmitJobRequest Request, IReadOnlyList<string> TargetNames, IReadOnlyList<LossTermSpec> LossTerms);

/// <summary>A validated spec, resolved against its dataset: everything the worker needs to train.</summary>
public sealed record JobPlan
{
    /// <summary>The spec with every default filled in (the seed too): what is stored, and what a retry resubmits.</summary>
    public required SubmitJobRequest Normalized { get; init; }
    public required PreprocessingSpec Data { get; init; }
    public TargetInfo Target => Data.Target;
    public required IReadOnlyList<LossTermSpec> LossTerms { get; init; }
    public required IReadOnlyList<int> HiddenLayers { get; init; }
    public required Activation Activation { get; init; }
    public required double Dropout { get; init; }
    public required OptimizerSpec Optimizer { get; init; }
    public required ScheduleSpec Schedule { get; init; }
    public required Regularization Regularization { get; init; }
    public EarlyStoppingSpec? EarlyStopping { get; init; }
    /// <summary>Without early stopping, which best epoch's model to keep; null keeps the last (see <see cref="TrainerSpec.Keep"/>).</summary>
    public KeepBest? Keep { get; init; }
    public required int Epochs { get; init; }
    public required int BatchSize { get; init; }
    public required int Seed { get; init; }
    public required TimeSpan MaxRuntime { get; init; }
    public required OutputKind OutputKind { get; init; }
    public required OutputTransform OutputTransform { get; init; }

    /// <summary>How the loss reads the model's outputs for this target; class weights are resolved by preprocessing.</summary>
    public static LossBinding BindingFor(TargetInfo target, double[]? classWeights) => target.Task == LossTask.Multiclass
        ? new LossBinding(TargetLayout.ClassIndex, target.Outputs, OnLogits: true, classWeights)
        : new LossBinding(TargetLayout.Elementwise, target.Outputs, OnLogits: true, classWeights);
}
