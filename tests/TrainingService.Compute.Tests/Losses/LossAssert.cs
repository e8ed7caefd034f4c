namespace TrainingService.Compute.Tests.Losses;

internal static class LossAssert
{
    /// <summary>|actual − expected| ≤ tolerance·max(|expected|, floor).</summary>
    public static void Close(double expected, double actual, double tolerance = 1e-5, double floor = 1e-6, string? what = null)
    {
        double bound = tolerance * Math.Max(Math.Abs(expected), floor);
        Assert.True(Math.Abs(actual - expected) <= bound,
            $"{what ?? "value"}: expected {expected:R}, got {actual:R} (|diff| {Math.Abs(actual - expected):E3} > {bound:E3})");
    }

    public static void AllClose(IReadOnlyList<double> expected, IReadOnlyList<float> actual, double tolerance = 1e-5,
        double floor = 1e-6, string? what = null)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Close(expected[i], actual[i], tolerance, floor, $"{what ?? "gradient"}[{i}]");
        }
    }
}
