using TrainingService.Compute.Training;

namespace TrainingService.Compute.Tests.Training;

/// <summary>Synthetic curves, each built to show one failure mode (and a healthy one that shows none).</summary>
public sealed class CurveDiagnosticsTests
{
    private static readonly DiagnosisThresholds Defaults = new();

    private static Baseline RegressionBaseline(double train = 2.0, double val = 2.1) =>
        new("mean", [0.0], train, val, new Dictionary<string, double>());

    private static List<CurvePoint> Curve(Func<int, double> train, Func<int, double>? val, int epochs) =>
        Enumerable.Range(1, epochs).Select(e => new CurvePoint(e, train(e), val?.Invoke(e), 0, 1)).ToList();

    private static IReadOnlyList<Diagnosis> Diagnose(List<CurvePoint> curve, Baseline? baseline = null, DiagnosisThresholds? thresholds = null) =>
        CurveDiagnostics.Diagnose(curve, baseline ?? RegressionBaseline(), thresholds ?? Defaults);

    private static string[] Codes(IReadOnlyList<Diagnosis> diagnoses) => diagnoses.Select(d => d.Code).ToArray();

    [Fact]
    public void A_healthy_curve_has_no_diagnosis()
    {
        var curve = Curve(e => 1.0 / (1 + e), e => 1.1 / (1 + e) + 0.01, 30);

        Assert.Empty(Diagnose(curve));
    }

    [Fact]
    public void Validation_loss_turning_up_while_training_loss_falls_is_overfitting_from_its_minimum()
    {
        var curve = Curve(e => 1.0 / (1 + e), e => e <= 10 ? 1.0 / (1 + e) + 0.05 : (1.0 / 11 + 0.05) * (1 + 0.03 * (e - 10)), 25);

        var overfitting = Assert.Single(Diagnose(curve), d => d.Code == "overfitting");

        Assert.Equal((10, 25), (overfitting.FromEpoch, overfitting.ToEpoch));
        Assert.Equal(10, overfitting.Numbers["bestEpoch"]);
        Assert.InRange(overfitting.Numbers["rise"], 0.1, 1);
        Assert.Contains("epoch 10", overfitting.Message);
    }

    [Fact]
    public void The_overfitting_threshold_is_configurable()
    {
        var curve = Curve(e => 1.0 / (1 + e), e => e <= 10 ? 0.5 : 0.5 * (1 + 0.01 * (e - 10)), 20);

        Assert.Contains("overfitting", Codes(Diagnose(curve, thresholds: new DiagnosisThresholds { OverfitRise = 0.05 })));
        Assert.DoesNotContain("overfitting", Codes(Diagnose(curve, thresholds: new DiagnosisThresholds { OverfitRise = 0.2 })));
    }

    [Fact]
    public void Validation_rising_with_training_loss_is_not_overfitting()
    {
        var curve = Curve(e => e <= 10 ? 1.0 / e : 0.1 * (1 + 0.05 * (e - 10)), e => e <= 10 ? 1.1 / e : 0.11 * (1 + 0.05 * (e - 10)), 20);

        Assert.DoesNotContain("overfitting", Codes(Diagnose(curve)));
    }

    [Fact]
    public void A_training_loss_close_to_the_trivial_models_is_underfitting()
    {
        var curve = Curve(e => 1.95 - 0.01 * e, e => 2.15, 12);

        var underfitting = Assert.Single(Diagnose(curve), d => d.Code == "underfitting");

        Assert.Equal((1, 12), (underfitting.FromEpoch, underfitting.ToEpoch));
        Assert.Equal(2.0, underfitting.Numbers["baselineTrainLoss"]);
        Assert.Contains("bigger model", string.Join(" ", underfitting.Suggestions));
        Assert.Contains("worse_than_baseline", Codes(Diagnose(curve)));
    }

    [Fact]
    public void A_training_loss_above_the_trivial_models_is_said_to_be_above_it_not_a_negative_percent_below()
    {
        var close = Assert.Single(Diagnose(Curve(e => 1.95 - 0.01 * e, e => 2.15, 12)), d => d.Code == "underfitting");
        var above = Assert.Single(Diagnose(Curve(e => 2.2, e => 2.3, 12)), d => d.Code == "underfitting");

        Assert.Contains("% below the trivial model's", close.Message);
        Assert.Contains("is 10% above the trivial model's", above.Message);
        Assert.DoesNotContain("-", above.Message.Split(':')[0]);
    }

    [Fact]
    public void No_verdict_against_the_trivial_model_before_the_minimum_epochs_or_without_one()
    {
        var curve = Curve(e => 1.95, e => 2.2, 4);

        Assert.DoesNotContain("underfitting", Codes(Diagnose(curve)));
        Assert.DoesNotContain(CurveDiagnostics.Diagnose(Curve(e => 1.95, e => 2.2, 12), null, Defaults),
            d => d.Code is "underfitting" or "worse_than_baseline");
    }

    [Fact]
    public void The_penalty_is_left_out_when_comparing_with_the_trivial_model()
    {
        // Data loss 1.0 + penalty 1.5 = 2.5 > baseline 2.0, but the data part beats it by half.
        var curve = Enumerable.Range(1, 8).Select(e => new CurvePoint(e, 2.5, 2.5, 1.5, 1)).ToList();

        Assert.DoesNotContain("underfitting", Codes(Diagnose(curve)));
        Assert.DoesNotContain("worse_than_baseline", Codes(Diagnose(curve)));
    }

    [Fact]
    public void A_loss_rising_in_the_first_epochs_means_the_learning_rate_is_too_high()
    {
        var curve = Curve(e => e == 1 ? 1.0 : e == 2 ? 1.4 : 1.0 / e, null, 8);

        var tooHigh = Assert.Single(Diagnose(curve), d => d.Code == "learning_rate_too_high");

        Assert.Equal((1, 2), (tooHigh.FromEpoch, tooHigh.ToEpoch));
        Assert.Equal(0.4, tooHigh.Numbers["rise"], 9);
    }

    [Fact]
    public void A_training_loss_going_up_and_down_means_the_learning_rate_is_too_high()
    {
        var curve = Curve(e => e <= 5 ? 1.0 / e : e % 2 == 0 ? 0.3 : 0.2, null, 20);

        var tooHigh = Assert.Single(Diagnose(curve), d => d.Code == "learning_rate_too_high");

        Assert.Equal((11, 20), (tooHigh.FromEpoch, tooHigh.ToEpoch));
        Assert.Equal(1.0, tooHigh.Numbers["flipShare"]);
    }

    [Fact]
    public void Small_wiggles_near_convergence_are_not_oscillation()
    {
        var curve = Curve(e => 1.0 / e + (e % 2 == 0 ? 1e-4 : 0), null, 20);

        Assert.DoesNotContain("learning_rate_too_high", Codes(Diagnose(curve)));
    }

    [Fact]
    public void A_non_finite_loss_is_divergence_from_that_epoch_on()
    {
        var curve = Curve(e => e < 4 ? 1.0 / e : e == 4 ? double.PositiveInfinity : double.NaN, null, 5);

        var diverged = Assert.Single(Diagnose(curve), d => d.Code == "diverged");

        Assert.Equal((4, 5), (diverged.FromEpoch, diverged.ToEpoch));
        Assert.Equal(1.0 / 3, diverged.Numbers["lastFiniteTrainLoss"], 12);
    }

    [Fact]
    public void No_improvement_for_the_plateau_epochs_is_a_plateau()
    {
        var curve = Curve(e => e <= 8 ? 1.0 / e : 0.125 + 1e-6 * (e % 2), null, 20);

        var plateau = Assert.Single(Diagnose(curve), d => d.Code == "plateau");

        Assert.Equal((11, 20), (plateau.FromEpoch, plateau.ToEpoch));
        Assert.DoesNotContain("plateau", Codes(Diagnose(curve, thresholds: new DiagnosisThresholds { PlateauEpochs = 20 })));
    }

    [Fact]
    public void Validation_noise_large_against_its_trend_and_the_training_curve_is_noisy_validation()
    {
        var curve = Curve(e => 1.0 / (1 + 0.1 * e), e => 1.1 / (1 + 0.1 * e) * (e % 2 == 0 ? 1.15 : 0.85), 20);

        var noisy = Assert.Single(Diagnose(curve), d => d.Code == "noisy_validation");

        Assert.Equal((11, 20), (noisy.FromEpoch, noisy.ToEpoch));
        Assert.InRange(noisy.Numbers["valScatter"], 0.1, 0.2);
        Assert.DoesNotContain("noisy_validation", Codes(Diagnose(Curve(e => 1.0 / (1 + 0.1 * e), e => 1.1 / (1 + 0.1 * e), 20))));
    }

    [Fact]
    public void Negative_losses_are_judged_by_their_magnitude()
    {
        // A Gaussian NLL can be negative: falling from −0.5 to −1.2 is progress, not a rise.
        var curve = Curve(e => -0.5 - 0.7 * (1 - Math.Exp(-e / 3.0)), e => -0.45 - 0.7 * (1 - Math.Exp(-e / 3.0)), 12);

        Assert.Empty(Diagnose(curve, RegressionBaseline(0.2, 0.25)));
    }
}
