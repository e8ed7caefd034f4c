using TrainingService.Server.Datasets;

namespace TrainingService.Server.Tests;

/// <summary>The one-pass mean and variance behind column statistics and standardisation.</summary>
public sealed class ShiftedMomentsTests
{
    [Theory]
    [InlineData(0.0)]
    [InlineData(1.7e9)] // Unix timestamps: Σx²/n − mean² loses every digit of the spread here
    [InlineData(-3.2e12)]
    public void Mean_and_variance_match_a_two_pass_computation_even_for_large_values_with_a_small_spread(double offset)
    {
        var random = new Random(5);
        double[] values = Enumerable.Range(0, 10_000).Select(_ => offset + random.NextDouble() * 10).ToArray();
        // The reference works on v − offset, exact for these values, so it is not the one that rounds.
        double[] spread = values.Select(v => v - offset).ToArray();
        double spreadMean = spread.Average();
        double mean = offset + spreadMean;
        double population = spread.Sum(d => (d - spreadMean) * (d - spreadMean)) / values.Length;

        var moments = new ShiftedMoments();
        foreach (double v in values)
        {
            moments.Add(v);
        }

        Assert.Equal(values.Length, moments.Count);
        Assert.Equal(mean, moments.Mean, Math.Abs(mean) * 1e-12 + 1e-9);
        Assert.Equal(population, moments.PopulationVariance, population * 1e-9);
        Assert.Equal(population * values.Length / (values.Length - 1), moments.SampleVariance, population * 1e-9);
    }

    [Fact]
    public void No_values_give_zeros_and_one_value_has_no_spread()
    {
        var moments = new ShiftedMoments();
        Assert.Equal(0, moments.Mean);
        Assert.Equal(0, moments.PopulationVariance);

        moments.Add(42);
        Assert.Equal(42, moments.Mean);
        Assert.Equal(0, moments.PopulationVariance);
        Assert.Equal(0, moments.SampleVariance);
    }
}
