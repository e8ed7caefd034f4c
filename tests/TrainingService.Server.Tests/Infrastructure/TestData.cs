using System.Globalization;
using System.Text;

namespace TrainingService.Server.Tests.Infrastructure;

/// <summary>Small CSV generators for the tests.</summary>
public static class TestData
{
    /// <summary>y = 3·x1 − 2·x2 + 0.5 (+ noise), x uniform in [−1, 1].</summary>
    public static string Linear(int rows, int seed = 1, double noise = 0.0)
    {
        var random = new Random(seed);
        var csv = new StringBuilder("x1,x2,y\n");
        for (int i = 0; i < rows; i++)
        {
            double a = random.NextDouble() * 2 - 1, b = random.NextDouble() * 2 - 1;
            double y = 3 * a - 2 * b + 0.5 + noise * (random.NextDouble() - 0.5);
            csv.Append(CultureInfo.InvariantCulture, $"{a:R},{b:R},{y:R}\n");
        }
        return csv.ToString();
    }

    /// <summary>Three Gaussian blobs labelled with words, in a file whose header has spaces, units and non-ASCII.</summary>
    public static string Blobs(int rows, int seed = 1)
    {
        var random = new Random(seed);
        (double X, double Y, string Label)[] centres = [(0, 3, "setosa"), (-3, -2, "versicolor"), (3, -2, "virginica")];
        var csv = new StringBuilder("\"width (cm)\",höhe,species\n");
        for (int i = 0; i < rows; i++)
        {
            var c = centres[i % 3];
            csv.Append(CultureInfo.InvariantCulture, $"{c.X + Gaussian(random):R},{c.Y + Gaussian(random):R},{c.Label}\n");
        }
        return csv.ToString();
    }

    public static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    /// <summary>A linear-regression spec on <see cref="Linear"/> data.</summary>
    public static object LinearSpec(string datasetId, int epochs = 5, int batchSize = 32, int seed = 1, double learningRate = 0.05) => new
    {
        datasetId,
        target = "y",
        model = new { type = "linear" },
        loss = new { name = "mse" },
        optimizer = new { name = "sgd", learningRate },
        epochs,
        batchSize,
        seed,
    };
}
