using TrainingService.Compute.Losses;

namespace TrainingService.Compute.Tests.Losses;

/// <summary>Penalties against shared/reference/losses.md §6: w = [0.5, −1, 2, 0], λ = 0.01.</summary>
public sealed class RegularizationTests
{
    private static readonly float[] W = [0.5f, -1f, 2f, 0f];

    [Fact]
    public void Keras_l2_is_l2_times_the_sum_of_squares()
    {
        var keras = new Regularization(0, 0.01);

        Assert.Equal(0.0525, keras.Penalty(W), 12);
        Assert.Equal(0.02, keras.L2GradientFactor, 12); // gradient 2·λ·w
    }

    [Fact]
    public void Pytorch_weight_decay_reading_halves_the_penalty_and_the_gradient()
    {
        var pytorch = new Regularization(0, 0.01, RegularizationConvention.PyTorch);

        Assert.Equal(0.02625, pytorch.Penalty(W), 12);
        Assert.Equal(0.01, pytorch.L2GradientFactor, 12); // gradient λ·w
    }

    [Fact]
    public void L1_is_l1_times_the_sum_of_absolute_values()
    {
        Assert.Equal(0.035, new Regularization(0.01, 0).Penalty(W), 12);
        Assert.False(Regularization.None.IsActive);
    }
}
