using TrainingService.Compute.Losses;
using TrainingService.Compute.Models;
using TrainingService.Compute.Optimizers;
using TrainingService.Compute.Training;
using static TrainingService.Compute.Tests.Training.TrainingFixtures;

namespace TrainingService.Compute.Tests.Training;

/// <summary>Real training runs built to underfit, overfit and diverge, and a healthy one, diagnosed from their curves.</summary>
public sealed class DiagnosedRunTests
{
    private static async Task<string[]> DiagnoseRunAsync(TrainerSpec spec, TrainingSet train, TrainingSet? validation)
    {
        using var trainer = new Trainer(TestDevice.Instance, spec, train, validation);
        var baseline = await trainer.BaselineAsync();
        var recorder = new Recorder();
        await trainer.RunAsync(recorder, null, CancellationToken.None);
        var curve = recorder.Epochs.Select(CurvePoint.Of).ToList();
        return CurveDiagnostics.Diagnose(curve, baseline, new DiagnosisThresholds()).Select(d => d.Code).ToArray();
    }

    /// <summary>y = x1² − 1/3 with x1 uniform in [−1, 1]: no straight line does better than the mean.</summary>
    private static TrainingSet Parabola(int rows, int seed)
    {
        var random = new Random(seed);
        var x = new float[rows * 2];
        var y = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            x[2 * r] = (float)(random.NextDouble() * 2 - 1);
            x[2 * r + 1] = (float)(random.NextDouble() * 2 - 1);
            y[r] = x[2 * r] * x[2 * r] - 1f / 3;
        }
        return new TrainingSet(x, y, rows, 2, 1);
    }

    [Fact]
    public async Task A_linear_model_on_a_parabola_underfits()
    {
        var spec = Spec(new NetworkLayout(2, [], 1, Activation.Identity), Loss("mse", TargetLayout.Elementwise, 1),
            new OptimizerSpec(OptimizerKind.Adam, 0.05), 15, 32, OutputKind.Regression, OutputTransform.Identity);

        var codes = await DiagnoseRunAsync(spec, Parabola(600, 1), Parabola(200, 2));

        Assert.Contains("underfitting", codes);
        Assert.DoesNotContain("overfitting", codes);
    }

    [Fact]
    public async Task An_mlp_on_the_same_parabola_does_not_underfit()
    {
        var spec = Spec(new NetworkLayout(2, [32], 1, Activation.Tanh), Loss("mse", TargetLayout.Elementwise, 1),
            new OptimizerSpec(OptimizerKind.Adam, 0.01), 15, 32, OutputKind.Regression, OutputTransform.Identity);

        var codes = await DiagnoseRunAsync(spec, Parabola(600, 1), Parabola(200, 2));

        Assert.DoesNotContain("underfitting", codes);
        Assert.DoesNotContain("worse_than_baseline", codes);
    }

    [Fact]
    public async Task A_big_mlp_on_few_noisy_rows_overfits()
    {
        var (spec, train, validation) = BaselineAndKeepTests.OverfittingRun(60);

        var codes = await DiagnoseRunAsync(spec, train, validation);

        Assert.Contains("overfitting", codes);
        Assert.DoesNotContain("underfitting", codes);
    }

    [Fact]
    public async Task A_huge_learning_rate_diverges()
    {
        var spec = Spec(new NetworkLayout(2, [], 1, Activation.Identity), Loss("mse", TargetLayout.Elementwise, 1),
            new OptimizerSpec(OptimizerKind.Sgd, 50), 30, 16, OutputKind.Regression, OutputTransform.Identity);

        var codes = await DiagnoseRunAsync(spec, LinearProblem(200), null);

        Assert.Contains("diverged", codes);
    }
}
