using TrainingService.Compute.Losses;
using TrainingService.Compute.Models;
using TrainingService.Compute.Optimizers;
using TrainingService.Compute.Schedules;

namespace TrainingService.Compute.Training;

/// <summary>Keras-style early stopping.</summary>
/// <param name="Monitor"><c>valLoss</c>, <c>trainLoss</c>, or a metric name.</param>
/// <param name="Mode">Min or max; by default min for losses, rmse and mae, max for other metrics.</param>
/// <param name="Patience">Stop after this many epochs without improvement.</param>
/// <param name="MinDelta">An improvement must beat the best by more than this.</param>
/// <param name="RestoreBest">The final model is the best epoch's, not the last one's.</param>
public sealed record EarlyStoppingSpec(string Monitor = "valLoss", MonitorMode? Mode = null, int Patience = 5,
    double MinDelta = 0.0, bool RestoreBest = true)
{
    /// <summary>The effective mode.</summary>
    public MonitorMode EffectiveMode => Mode ?? ModeFor(Monitor);

    /// <summary>The natural mode of a monitored quantity.</summary>
    public static MonitorMode ModeFor(string monitor) => Metrics.HigherIsBetter(monitor) ? MonitorMode.Max : MonitorMode.Min;
}

/// <summary>Without early stopping: keep the model of the epoch with the best <paramref name="Monitor"/> value, not the last one.</summary>
/// <param name="Monitor"><c>valLoss</c>, <c>trainLoss</c>, or a metric name.</param>
/// <param name="Mode">Min or max; by default from the monitor, as for early stopping.</param>
public sealed record KeepBest(string Monitor, MonitorMode? Mode = null)
{
    /// <summary>The effective mode.</summary>
    public MonitorMode EffectiveMode => Mode ?? EarlyStoppingSpec.ModeFor(Monitor);
}

/// <summary>One training run's configuration, already validated and bound.</summary>
/// <param name="Network">The model.</param>
/// <param name="Loss">The loss, bound with <c>OnLogits</c> to the model's outputs.</param>
/// <param name="Optimizer">Optimizer and hyperparameters.</param>
/// <param name="Epochs">Maximum number of epochs.</param>
/// <param name="BatchSize">Rows per mini-batch (the last batch may be smaller).</param>
/// <param name="Seed">Seeds initialisation, shuffles and dropout.</param>
/// <param name="OutputKind">How outputs are read (metrics).</param>
/// <param name="OutputTransform">How raw outputs become predictions.</param>
public sealed record TrainerSpec(NetworkLayout Network, CombinedLoss Loss, OptimizerSpec Optimizer, int Epochs, int BatchSize,
    int Seed, OutputKind OutputKind, OutputTransform OutputTransform)
{
    /// <summary>L1/L2 penalties.</summary>
    public Regularization Regularization { get; init; } = Regularization.None;
    /// <summary>Learning-rate schedule.</summary>
    public ScheduleSpec Schedule { get; init; } = ScheduleSpec.Constant;
    /// <summary>Early stopping, or null.</summary>
    public EarlyStoppingSpec? EarlyStopping { get; init; }
    /// <summary>
    /// Without early stopping, keep the best epoch's model (null: the last epoch's). With early stopping, its
    /// <see cref="EarlyStoppingSpec.RestoreBest"/> decides, on its monitor.
    /// </summary>
    public KeepBest? Keep { get; init; }
    /// <summary>A checkpoint is offered every this many epochs.</summary>
    public int CheckpointEvery { get; init; } = 1;
    /// <summary>Rows per launch when evaluating (validation, metrics).</summary>
    public int EvaluationChunk { get; init; } = 4096;
    /// <summary>
    /// Without a validation split, compute metrics on the training set after each epoch (an extra forward pass over it).
    /// Benchmarks comparing bare training passes turn it off.
    /// </summary>
    public bool TrainingSetMetrics { get; init; } = true;
}

/// <summary>Rows of preprocessed features and targets.</summary>
/// <param name="Features">[rows × featureCount], row-major.</param>
/// <param name="Targets">[rows × targetWidth]: values, 0/1 labels, class indices (width 1) or distributions.</param>
/// <param name="Rows">Number of rows.</param>
/// <param name="FeatureCount">Features per row.</param>
/// <param name="TargetWidth">Targets per row.</param>
public sealed record TrainingSet(float[] Features, float[] Targets, int Rows, int FeatureCount, int TargetWidth);

/// <summary>One finished epoch, as stored in the loss history.</summary>
/// <param name="Epoch">1-based epoch number.</param>
/// <param name="TrainLoss">Mean over the epoch's batches (weighted by rows) of the configured loss, penalty included.</param>
/// <param name="ValLoss">The configured loss on the validation split after the epoch, penalty included; null without one.</param>
/// <param name="RegularizationLoss">The L1/L2 penalty part of <paramref name="TrainLoss"/>.</param>
/// <param name="Metrics">Validation metrics (training-set metrics when there is no validation split).</param>
/// <param name="LearningRate">Learning rate used in the epoch.</param>
/// <param name="GradientNorm">Mean over batches of the global gradient norm, before clipping.</param>
/// <param name="DurationMs">Wall time of the epoch (training and evaluation).</param>
/// <param name="SamplesPerSecond">Training rows per second of the training pass.</param>
public sealed record EpochRecord(int Epoch, double TrainLoss, double? ValLoss, double RegularizationLoss,
    IReadOnlyDictionary<string, double> Metrics, double LearningRate, double GradientNorm, double DurationMs, double SamplesPerSecond);

/// <summary>Why a run ended.</summary>
public enum StopReason
{
    /// <summary>All epochs ran.</summary>
    Completed,
    /// <summary>Early stopping fired.</summary>
    EarlyStopped,
    /// <summary>The cancellation token fired; the run stopped at a batch boundary.</summary>
    Cancelled,
    /// <summary>A loss or gradient became NaN or infinite.</summary>
    Diverged,
}

/// <summary>The result of a run.</summary>
/// <param name="StopReason">Why it ended.</param>
/// <param name="EpochsCompleted">Epochs whose records were delivered.</param>
/// <param name="Parameters">The final model: the best epoch's when restoring, else the last completed epoch's.</param>
/// <param name="BestEpoch">Epoch of the best monitored value (early stopping), or null.</param>
/// <param name="BestValue">That value, or null.</param>
/// <param name="ModelEpoch">The epoch <paramref name="Parameters"/> come from (0: none completed, the initial weights).</param>
public sealed record TrainingOutcome(StopReason StopReason, int EpochsCompleted, float[] Parameters, int? BestEpoch, double? BestValue,
    int ModelEpoch);

/// <summary>
/// The trivial model's loss and metrics: every row predicted as the training split's target mean (regression) or class
/// prior (classification), a constant output no trained model should fail to beat.
/// </summary>
/// <param name="Model"><c>mean</c> or <c>prior</c>.</param>
/// <param name="Outputs">The constant raw output row (what the network would have to output to predict it).</param>
/// <param name="TrainLoss">The configured data loss (no penalty) on the training split.</param>
/// <param name="ValLoss">The same on the validation split, or null without one.</param>
/// <param name="Metrics">Its metrics where the epochs' metrics are measured (validation split, else training split).</param>
public sealed record Baseline(string Model, IReadOnlyList<double> Outputs, double TrainLoss, double? ValLoss,
    IReadOnlyDictionary<string, double> Metrics);

/// <summary>Receives each epoch as it ends (the service stores it; a checkpoint comes with it when one is due).</summary>
public interface ITrainingObserver
{
    /// <summary>Called once per completed epoch, in order.</summary>
    ValueTask OnEpochAsync(EpochRecord record, TrainingCheckpoint? checkpoint);
}
