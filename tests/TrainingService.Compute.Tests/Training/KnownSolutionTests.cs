using TrainingService.Compute.Losses;
using TrainingService.Compute.Models;
using TrainingService.Compute.Optimizers;
using TrainingService.Compute.Training;
using static TrainingService.Compute.Tests.Training.TrainingFixtures;

namespace TrainingService.Compute.Tests.Training;

public sealed class KnownSolutionTests
{
    [Fact]
    public async Task Sgd_on_mse_recovers_the_coefficients_of_a_linear_function()
    {
        var network = new NetworkLayout(2, [], 1, Activation.Identity);
        var spec = Spec(network, Loss("mse", TargetLayout.Elementwise, 1), new OptimizerSpec(OptimizerKind.Sgd, 0.1), 40, 32,
            OutputKind.Regression, OutputTransform.Identity);

        var (outcome, recorder) = await TrainAsync(spec, LinearProblem(2000));

        Assert.Equal(StopReason.Completed, outcome.StopReason);
        Assert.Equal(40, recorder.Epochs.Count);
        float[] p = outcome.Parameters;
        Assert.InRange(p[0], 3 - 1e-2, 3 + 1e-2);
        Assert.InRange(p[1], -2 - 1e-2, -2 + 1e-2);
        Assert.InRange(p[2], 0.5 - 1e-2, 0.5 + 1e-2);
        Assert.True(recorder.Epochs[^1].TrainLoss < 1e-4 * recorder.Epochs[0].TrainLoss);
    }

    [Fact]
    public async Task Logistic_regression_separates_a_separable_set()
    {
        // Label by the side of 3·x1 − 2·x2 = 0, keeping only points at least 0.25 from the boundary.
        var data = LinearProblem(1000, seed: 3);
        var keep = Enumerable.Range(0, data.Rows).Where(r => Math.Abs(data.Targets[r] - 0.5f) >= 0.25f).ToArray();
        var set = new TrainingSet(keep.SelectMany(r => new[] { data.Features[2 * r], data.Features[2 * r + 1] }).ToArray(),
            keep.Select(r => data.Targets[r] > 0.5f ? 1f : 0f).ToArray(), keep.Length, 2, 1);
        var network = new NetworkLayout(2, [], 1, Activation.Identity);
        var spec = Spec(network, Loss("bce_with_logits", TargetLayout.Elementwise, 1), new OptimizerSpec(OptimizerKind.Adam, 0.05), 60, 32,
            OutputKind.Binary, OutputTransform.Sigmoid);

        var (_, recorder) = await TrainAsync(spec, set);

        Assert.Equal(1.0, recorder.Epochs[^1].Metrics["accuracy"]);
        Assert.Equal(1.0, recorder.Epochs[^1].Metrics["auc"]);
    }

    [Fact]
    public async Task An_mlp_fits_xor()
    {
        float[] x = [0, 0, 0, 1, 1, 0, 1, 1];
        float[] y = [0, 1, 1, 0];
        var set = new TrainingSet(Enumerable.Repeat(x, 16).SelectMany(v => v).ToArray(), Enumerable.Repeat(y, 16).SelectMany(v => v).ToArray(), 64, 2, 1);
        var network = new NetworkLayout(2, [8], 1, Activation.Tanh);
        var spec = Spec(network, Loss("bce_with_logits", TargetLayout.Elementwise, 1), new OptimizerSpec(OptimizerKind.Adam, 0.05), 150, 16,
            OutputKind.Binary, OutputTransform.Sigmoid);

        var (_, recorder) = await TrainAsync(spec, set);

        Assert.Equal(1.0, recorder.Epochs[^1].Metrics["accuracy"]);
        Assert.True(recorder.Epochs[^1].TrainLoss < 0.1, $"final loss {recorder.Epochs[^1].TrainLoss}");
    }

    [Fact]
    public async Task Softmax_regression_on_three_blobs_reaches_95_percent_validation_accuracy()
    {
        var network = new NetworkLayout(2, [], 3, Activation.Identity);
        var spec = Spec(network, Loss("cross_entropy", TargetLayout.ClassIndex, 3), new OptimizerSpec(OptimizerKind.Sgd, 0.1, Momentum: 0.9), 20, 32,
            OutputKind.Multiclass, OutputTransform.Softmax);

        var (_, recorder) = await TrainAsync(spec, Blobs(900, 1), Blobs(300, 2));

        Assert.True(recorder.Epochs[^1].Metrics["accuracy"] >= 0.95, $"accuracy {recorder.Epochs[^1].Metrics["accuracy"]}");
        Assert.NotNull(recorder.Epochs[^1].ValLoss);
        Assert.Contains("macroF1", recorder.Epochs[^1].Metrics.Keys);
    }
}
