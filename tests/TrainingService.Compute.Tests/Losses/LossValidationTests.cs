using TrainingService.Compute.Losses;
using static TrainingService.Compute.Tests.Losses.Evaluate;

namespace TrainingService.Compute.Tests.Losses;

public sealed class LossValidationTests
{
    private static LossSpecException Refused(Action action) => Assert.Throws<LossSpecException>(action);

    [Fact]
    public void An_unknown_loss_names_the_field_and_lists_the_catalogue()
    {
        var error = Refused(() => Flat("cross_entropyy", [1], [0]));

        Assert.Equal("loss.unknown", error.Code);
        Assert.Equal("loss.name", error.Field);
        Assert.Contains("huber", error.Message);
    }

    [Fact]
    public void An_unknown_parameter_is_refused()
    {
        var error = Refused(() => Flat("huber", [1], [0], P(("dleta", 2.0))));

        Assert.Equal("loss.unknown_parameter", error.Code);
        Assert.Equal("loss.dleta", error.Field);
    }

    [Theory]
    [InlineData("huber", "delta", 0.0)]
    [InlineData("huber", "delta", -1.0)]
    [InlineData("cross_entropy", "label_smoothing", 1.0)]
    [InlineData("cross_entropy", "label_smoothing", -0.1)]
    [InlineData("focal", "gamma", -0.5)]
    [InlineData("multi_margin", "p", 3.0)]
    [InlineData("bce_with_logits", "pos_weight", 0.0)]
    public void A_parameter_outside_its_range_is_refused(string loss, string parameter, double value)
    {
        var binding = loss is "cross_entropy" or "multi_margin"
            ? new LossBinding(TargetLayout.ClassIndex, 3, false)
            : new LossBinding(TargetLayout.Elementwise, 1, false);

        var error = Refused(() => CombinedLoss.Bind([new LossTermSpec(loss, P((parameter, value)))], binding));

        Assert.Equal("loss.parameter_out_of_range", error.Code);
        Assert.Equal($"loss.{parameter}", error.Field);
    }

    [Fact]
    public void A_parameter_of_the_wrong_type_is_refused()
    {
        var error = Refused(() => Flat("poisson_nll", [1], [0], P(("log_input", 1.0))));

        Assert.Equal("loss.invalid_parameter", error.Code);
    }

    [Fact]
    public void Empty_input_is_refused()
    {
        var error = Refused(() => Flat("mse", [], []));

        Assert.Equal("loss.empty_input", error.Code);
    }

    [Fact]
    public void Targets_of_another_length_are_a_shape_mismatch()
    {
        var loss = CombinedLoss.Bind([new LossTermSpec("mse")], new LossBinding(TargetLayout.Elementwise, 1, false));

        var error = Refused(() => Run(loss, new LossInput([1, 2, 3], [1, 2], 3, 1)));

        Assert.Equal("loss.shape_mismatch", error.Code);
        Assert.Equal("targets", error.Field);
    }

    [Fact]
    public void Nan_or_infinity_in_the_inputs_names_the_element()
    {
        var nan = Refused(() => Flat("mse", [1, double.NaN], [0, 0]));
        var infinity = Refused(() => Flat("mse", [1, 2], [0, double.PositiveInfinity]));

        Assert.Equal(("loss.non_finite_input", "predictions[1]"), (nan.Code, nan.Field));
        Assert.Equal(("loss.non_finite_input", "targets[1]"), (infinity.Code, infinity.Field));
    }

    [Fact]
    public void A_bce_target_of_2_is_outside_the_domain()
    {
        var error = Refused(() => Flat("bce_with_logits", [0.1, 0.2], [1, 2]));

        Assert.Equal(("loss.target_out_of_domain", "targets[1]"), (error.Code, error.Field));
    }

    [Fact]
    public void A_bce_probability_above_1_is_outside_the_input_domain()
    {
        var error = Refused(() => Flat("bce", [0.5, 1.5], [1, 0]));

        Assert.Equal(("loss.prediction_out_of_domain", "predictions[1]"), (error.Code, error.Field));
    }

    [Fact]
    public void A_class_index_not_below_the_class_count_is_refused()
    {
        var error = Refused(() => Rows("cross_entropy", [[1, 2, 3], [1, 2, 3]], [0, 3]));

        Assert.Equal(("loss.target_out_of_domain", "targets[1]"), (error.Code, error.Field));
    }

    [Fact]
    public void Probability_rows_must_sum_to_one_within_1e_4()
    {
        var error = Refused(() => SoftRows("cross_entropy", [[1, 2], [3, 4]], [[0.5, 0.5], [0.6, 0.5]]));
        var close = SoftRows("cross_entropy", [[1, 2], [3, 4]], [[0.5, 0.5], [0.60005, 0.39999]]);

        Assert.Equal(("loss.target_out_of_domain", "targets[1]"), (error.Code, error.Field));
        Assert.True(double.IsFinite(close.Loss));
    }

    [Fact]
    public void A_hinge_label_of_one_half_is_refused()
    {
        var error = Refused(() => Flat("hinge", [0.1, 0.2], [1, 0.5]));

        Assert.Equal(("loss.target_out_of_domain", "targets[1]"), (error.Code, error.Field));
    }

    [Fact]
    public void Terms_that_fit_different_outputs_cannot_be_combined()
    {
        var error = Refused(() => CombinedLoss.Bind([new LossTermSpec("mse"), new LossTermSpec("hinge")],
            new LossBinding(TargetLayout.Elementwise, 1, false)));

        Assert.Equal("loss.incompatible_terms", error.Code);
    }

    [Fact]
    public void A_class_index_loss_on_elementwise_targets_is_a_shape_mismatch()
    {
        var error = Refused(() => CombinedLoss.Bind([new LossTermSpec("multi_margin")], new LossBinding(TargetLayout.Elementwise, 3, false)));

        Assert.Equal("loss.shape_mismatch", error.Code);
    }

    [Fact]
    public void Batchmean_is_only_for_kl_div()
    {
        var loss = CombinedLoss.Bind([new LossTermSpec("mse")], new LossBinding(TargetLayout.Elementwise, 1, false));

        var error = Refused(() => loss.ResolveReduction(Reduction.BatchMean));

        Assert.Equal("loss.invalid_reduction", error.Code);
    }

    [Fact]
    public void Every_catalogue_name_and_alias_resolves_and_lists_its_parameters()
    {
        foreach (var definition in LossCatalog.All)
        {
            Assert.Same(definition, LossCatalog.Find(definition.Name));
            foreach (var alias in definition.Aliases)
            {
                Assert.Same(definition, LossCatalog.Find(alias));
            }
            Assert.False(string.IsNullOrWhiteSpace(definition.Formula));
        }
        Assert.Equal(16, LossCatalog.All.Count);
    }
}
