using TrainingService.Compute.Training;

namespace TrainingService.Compute.Tests.Training;

/// <summary>The loss-independent probability scores, against values worked by hand (scikit-learn's definitions).</summary>
public sealed class MetricsTests
{
    private static float Logit(double p) => (float)Math.Log(p / (1 - p));

    [Fact]
    public void Binary_log_loss_and_brier_of_sigmoid_outputs()
    {
        double[] p = [0.9, 0.2, 0.6];
        float[] outputs = p.Select(Logit).ToArray(), labels = [1, 0, 1];

        var metrics = Metrics.Compute(OutputKind.Binary, OutputTransform.Sigmoid, outputs, labels, 3, 1);

        // log_loss([1, 0, 1], [0.9, 0.2, 0.6]) = −(ln 0.9 + ln 0.8 + ln 0.6) / 3; brier_score_loss = (0.01 + 0.04 + 0.16) / 3.
        Assert.Equal(-(Math.Log(0.9) + Math.Log(0.8) + Math.Log(0.6)) / 3, metrics["logLoss"], 6);
        Assert.Equal(0.07, metrics["brier"], 6);
    }

    [Fact]
    public void Multiclass_log_loss_and_brier_of_softmax_outputs()
    {
        // Softmax of log-probabilities gives the probabilities back.
        double[][] p = [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]];
        float[] outputs = p.SelectMany(row => row.Select(v => (float)Math.Log(v))).ToArray(), classes = [0, 1];

        var metrics = Metrics.Compute(OutputKind.Multiclass, OutputTransform.Softmax, outputs, classes, 2, 3);

        Assert.Equal(-(Math.Log(0.7) + Math.Log(0.3)) / 2, metrics["logLoss"], 6);
        Assert.Equal((0.09 + 0.04 + 0.01 + 0.01 + 0.49 + 0.36) / 2, metrics["brier"], 6);
    }

    [Fact]
    public void Scores_that_are_not_probabilities_get_no_probability_metrics()
    {
        var hinge = Metrics.Compute(OutputKind.Binary, OutputTransform.Identity, [0.5f, -2f], [1, 0], 2, 1);

        Assert.DoesNotContain("logLoss", hinge.Keys);
        Assert.Equal(Metrics.Names(OutputKind.Binary, OutputTransform.Identity), hinge.Keys);
        Assert.Contains("brier", Metrics.Names(OutputKind.Multiclass, OutputTransform.Softmax));
    }

    [Fact]
    public void A_certain_wrong_prediction_costs_a_finite_log_loss()
    {
        var metrics = Metrics.Compute(OutputKind.Binary, OutputTransform.Sigmoid, [-200f], [1], 1, 1);

        Assert.Equal(-Math.Log(1e-15), metrics["logLoss"], 9);
        Assert.Equal(1.0, metrics["brier"], 12);
    }
}
