using TrainingService.Compute.Losses;
using static TrainingService.Compute.Tests.Losses.Evaluate;

namespace TrainingService.Compute.Tests.Losses;

public sealed class LossEdgeCaseTests
{
    [Fact]
    public void Saturated_bce_is_clamped_at_100_with_pytorchs_gradient()
    {
        var wrong = Flat("bce", [1.0, 0.0], [0.0, 1.0], reduction: Reduction.Sum);
        var right = Flat("bce", [1.0, 0.0], [1.0, 0.0], reduction: Reduction.Sum);

        LossAssert.Close(200.0, wrong.Loss);
        LossAssert.AllClose([1e12, -1e12], wrong.Gradient);
        Assert.Equal(0.0, right.Loss);
        Assert.Equal([0f, 0f], right.Gradient);
    }

    [Fact]
    public void Logits_of_plus_and_minus_100_stay_finite()
    {
        var binary = Flat("bce_with_logits", [100, -100, 100, -100], [0, 1, 1, 0], reduction: Reduction.Sum);
        var focal = Flat("focal", [100, -100], [0, 1], reduction: Reduction.Sum);
        var multiclass = Rows("cross_entropy", [[100, -100, 0], [-100, 100, 0]], [1, 1], reduction: Reduction.Sum);

        LossAssert.Close(200.0, binary.Loss);
        LossAssert.AllClose([1, -1, 0, 0], binary.Gradient, floor: 1e-30);
        Assert.True(double.IsFinite(focal.Loss) && focal.Gradient.All(float.IsFinite));
        LossAssert.Close(200.0, multiclass.Loss);
        Assert.All(multiclass.Gradient, g => Assert.True(float.IsFinite(g)));
    }

    [Fact]
    public void Huge_huber_and_log_cosh_residuals_are_linear_not_overflowing()
    {
        var huber = Flat("huber", [1e30, -1e30], [0, 0], reduction: Reduction.Sum);
        var logCosh = Flat("log_cosh", [1000, -1000], [0, 0], reduction: Reduction.Sum);

        LossAssert.Close(2e30, huber.Loss);
        LossAssert.AllClose([1, -1], huber.Gradient);
        LossAssert.Close(2 * (1000 - StableMath.Ln2), logCosh.Loss);
        LossAssert.AllClose([1, -1], logCosh.Gradient);
    }

    [Fact]
    public void All_rows_ignored_gives_pytorchs_nan_mean_and_a_zero_gradient()
    {
        var result = Rows("cross_entropy", [[1, 2], [3, 4]], [-100, -100]);

        Assert.True(double.IsNaN(result.Loss));
        Assert.All(result.Gradient, g => Assert.Equal(0f, g));
    }

    [Fact]
    public void A_single_class_present_still_gives_a_finite_loss_and_gradient()
    {
        var result = Rows("cross_entropy", [[2, 1, 0], [0, 1, 2], [1, 1, 1]], [0, 0, 0], classWeights: [1, 5, 5]);

        Assert.True(double.IsFinite(result.Loss) && result.Loss > 0);
        Assert.All(result.Gradient, g => Assert.True(float.IsFinite(g)));
        Assert.True(result.Gradient[0] < 0 && result.Gradient[3] < 0 && result.Gradient[6] < 0);
    }

    [Fact]
    public void Hinge_gradient_at_the_margin_is_zero_and_l1_at_zero_residual_is_zero()
    {
        var hinge = Flat("hinge", [1.0, -1.0], [1, 0], reduction: Reduction.Sum);
        var l1 = Flat("l1", [2.0], [2.0]);

        Assert.Equal(0.0, hinge.Loss);
        Assert.Equal([0f, 0f], hinge.Gradient);
        Assert.Equal([0f], l1.Gradient);
    }

    [Fact]
    public void Reduction_none_returns_per_element_losses_and_the_gradient_of_their_sum()
    {
        var result = Flat("mse", [1, 2, 3], [0, 0, 0], reduction: Reduction.None);

        Assert.Equal([1f, 4f, 9f], result.PerItem!);
        Assert.Equal([2f, 4f, 6f], result.Gradient);
        LossAssert.Close(14, result.Loss);
    }

    [Fact]
    public void Reduction_none_on_a_row_loss_returns_one_value_per_row()
    {
        var result = Rows("cross_entropy", [[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]], [0, 2], reduction: Reduction.None);

        Assert.Equal(2, result.PerItem!.Length);
        LossAssert.Close(0.4170300163, result.PerItem[0]);
        LossAssert.Close(3.6531782071, result.PerItem[1]);
    }
}
