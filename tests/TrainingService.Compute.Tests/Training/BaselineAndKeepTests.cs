using TrainingService.Compute.Losses;
using TrainingService.Compute.Models;
using TrainingService.Compute.Optimizers;
using TrainingService.Compute.Training;
using static TrainingService.Compute.Tests.Training.TrainingFixtures;

namespace TrainingService.Compute.Tests.Training;

/// <summary>The trivial model's loss (computed by the loss kernels, checked on the host) and which epoch's model a run keeps.</summary>
public sealed class BaselineAndKeepTests
{
    private static async Task<Baseline> BaselineAsync(TrainerSpec spec, TrainingSet train, TrainingSet? validation)
    {
        using var trainer = new Trainer(TestDevice.Instance, spec, train, validation);
        return await trainer.BaselineAsync();
    }

    [Fact]
    public async Task The_regression_baseline_is_the_training_mean_and_its_loss_the_mean_squared_deviation()
    {
        var spec = Spec(new NetworkLayout(2, [], 1, Activation.Identity), Loss("mse", TargetLayout.Elementwise, 1),
            new OptimizerSpec(OptimizerKind.Adam, 0.01), 1, 16, OutputKind.Regression, OutputTransform.Identity);
        var train = LinearProblem(300, seed: 1);
        var validation = LinearProblem(9000, seed: 2); // more rows than one evaluation chunk

        var baseline = await BaselineAsync(spec, train, validation);

        double mean = train.Targets.Average(y => (double)y);
        Assert.Equal("mean", baseline.Model);
        Assert.Equal(mean, baseline.Outputs[0], 5);
        Assert.Equal(train.Targets.Average(y => (y - mean) * (y - mean)), baseline.TrainLoss, 4);
        Assert.Equal(validation.Targets.Average(y => (y - mean) * (y - mean)), baseline.ValLoss!.Value, 4);
        Assert.Equal(Math.Sqrt(baseline.ValLoss.Value), baseline.Metrics["rmse"], 4);
        Assert.InRange(baseline.Metrics["r2"], -0.01, 0);
    }

    [Fact]
    public async Task The_classification_baseline_is_the_class_prior_and_its_cross_entropy_the_priors_entropy()
    {
        var spec = Spec(new NetworkLayout(2, [8], 3, Activation.Relu), Loss("cross_entropy", TargetLayout.ClassIndex, 3),
            new OptimizerSpec(OptimizerKind.Adam, 0.01), 1, 16, OutputKind.Multiclass, OutputTransform.Softmax);
        var blobs = Blobs(301, 1); // 101, 100, 100 rows per class
        var prior = new[] { 101 / 301.0, 100 / 301.0, 100 / 301.0 };

        var baseline = await BaselineAsync(spec, blobs, null);

        Assert.Equal("prior", baseline.Model);
        Assert.Null(baseline.ValLoss);
        Assert.Equal(-prior.Sum(p => p * Math.Log(p)), baseline.TrainLoss, 5);
        Assert.Equal(101 / 301.0, baseline.Metrics["accuracy"], 9);
    }

    [Fact]
    public async Task The_binary_baseline_is_the_logit_of_the_positive_rate()
    {
        var spec = Spec(new NetworkLayout(2, [], 1, Activation.Identity), Loss("binary_cross_entropy", TargetLayout.Elementwise, 1),
            new OptimizerSpec(OptimizerKind.Adam, 0.01), 1, 16, OutputKind.Binary, OutputTransform.Sigmoid);
        var linear = LinearProblem(400);
        var labels = linear.Targets.Select(y => y > 1.5f ? 1f : 0f).ToArray();
        double p = labels.Average(y => (double)y);

        var baseline = await BaselineAsync(spec, linear with { Targets = labels }, null);

        Assert.Equal(Math.Log(p / (1 - p)), baseline.Outputs[0], 5);
        Assert.Equal(-(p * Math.Log(p) + (1 - p) * Math.Log(1 - p)), baseline.TrainLoss, 5);
    }

    /// <summary>y = x + noise, 24 training rows, an MLP far too big for them: the validation loss turns up after a few epochs.</summary>
    internal static (TrainerSpec Spec, TrainingSet Train, TrainingSet Validation) OverfittingRun(int epochs)
    {
        static TrainingSet Noisy(int rows, int seed)
        {
            var random = new Random(seed);
            var x = new float[rows * 2];
            var y = new float[rows];
            for (int r = 0; r < rows; r++)
            {
                x[2 * r] = (float)(random.NextDouble() * 2 - 1);
                x[2 * r + 1] = (float)(random.NextDouble() * 2 - 1);
                y[r] = (float)(x[2 * r] + 0.5 * Gaussian(random));
            }
            return new TrainingSet(x, y, rows, 2, 1);
        }
        var spec = Spec(new NetworkLayout(2, [128, 128], 1, Activation.Relu), Loss("mse", TargetLayout.Elementwise, 1),
            new OptimizerSpec(OptimizerKind.Adam, 0.01), epochs, 8, OutputKind.Regression, OutputTransform.Identity);
        return (spec, Noisy(24, 3), Noisy(400, 4));
    }

    [Fact]
    public async Task Keeping_the_best_model_keeps_the_epoch_with_the_lowest_validation_loss()
    {
        var (spec, train, validation) = OverfittingRun(60);

        var (best, recorder) = await TrainAsync(spec with { Keep = new KeepBest("valLoss") }, train, validation);
        var (last, _) = await TrainAsync(spec, train, validation);

        int lowest = recorder.Epochs.MinBy(e => e.ValLoss!.Value)!.Epoch;
        Assert.True(lowest < 50, $"the run was meant to overfit, but its best epoch is {lowest}");
        Assert.Equal(lowest, best.ModelEpoch);
        Assert.Equal(recorder.Checkpoints.Single(c => c.Epoch == lowest).Parameters, best.Parameters);
        Assert.Null(best.BestEpoch); // early stopping's best epoch: it did not run
        Assert.Equal(60, last.ModelEpoch);
        Assert.NotEqual(best.Parameters, last.Parameters);
    }

    [Fact]
    public async Task A_resumed_run_keeps_the_same_best_model()
    {
        var (spec, train, validation) = OverfittingRun(40);
        spec = spec with { Keep = new KeepBest("valLoss") };

        var (whole, recorder) = await TrainAsync(spec, train, validation);
        var resumeFrom = recorder.Checkpoints.Single(c => c.Epoch == 30);
        var (resumed, _) = await TrainAsync(spec, train, validation, resumeFrom);

        Assert.True(whole.ModelEpoch < 30, "the best epoch should lie before the checkpoint for this test to mean anything");
        Assert.Equal(whole.ModelEpoch, resumed.ModelEpoch);
        Assert.Equal(whole.Parameters, resumed.Parameters);
    }

    [Fact]
    public async Task With_early_stopping_not_restoring_the_model_is_the_last_epochs()
    {
        var (spec, train, validation) = OverfittingRun(60);
        spec = spec with { EarlyStopping = new EarlyStoppingSpec(Patience: 5, RestoreBest: false), Keep = new KeepBest("valLoss") };

        var (outcome, recorder) = await TrainAsync(spec, train, validation);

        Assert.Equal(StopReason.EarlyStopped, outcome.StopReason);
        Assert.Equal(recorder.Epochs.Count, outcome.ModelEpoch);
        Assert.Equal(outcome.BestEpoch + 5, outcome.ModelEpoch);
    }
}
