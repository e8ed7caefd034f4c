using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>Log-loss and Brier on every probabilistic classifier: metrics that do not depend on the loss trained with.</summary>
[Collection(ServiceTests.Name)]
public sealed class ProbabilityMetricsTests(ServiceFixture service)
{
    private readonly HttpClient _client = service.Client;

    private static string? _dataset;

    /// <summary>A noisy binary target: no model is certain, so the log-loss is far from 0.</summary>
    private async Task<string> DatasetAsync()
    {
        if (_dataset is not null)
        {
            return _dataset;
        }
        var random = new Random(91);
        var csv = new StringBuilder("x,y\n");
        for (int i = 0; i < 400; i++)
        {
            double x = random.NextDouble() * 4 - 2;
            csv.Append(CultureInfo.InvariantCulture, $"{x:R},{(random.NextDouble() < 1 / (1 + Math.Exp(-2 * x)) ? "pos" : "neg")}\n");
        }
        return _dataset = (await _client.UploadAsync(csv.ToString())).Id();
    }

    private async Task<(JsonNode Job, JsonNode LastEpoch)> TrainAsync(string loss)
    {
        var job = await _client.SubmitAsync(new
        {
            datasetId = await DatasetAsync(), target = "y", loss = new { name = loss }, optimizer = new { name = "adam", learningRate = 0.05 },
            epochs = 8, batchSize = 32, validation = new { fraction = 0.3 }, seed = 4,
        });
        var done = await _client.WaitForEndAsync(job.Id(), 120);
        Assert.Equal("succeeded", (string?)done["status"]);
        var history = await _client.GetJsonAsync($"/api/jobs/{job.Id()}/history");
        return (done, history["epochs"]!.AsArray()[^1]!);
    }

    [Fact]
    public async Task A_logistic_model_reports_log_loss_equal_to_its_unweighted_cross_entropy_and_a_brier_score()
    {
        var (job, epoch) = await TrainAsync("bce_with_logits");

        double valLoss = (double)epoch["valLoss"]!, logLoss = (double)epoch["metrics"]!["logLoss"]!, brier = (double)epoch["metrics"]!["brier"]!;
        Assert.Equal(valLoss, logLoss, 5); // the same quantity: one from the loss kernel in float, one from the metrics in double
        Assert.InRange(brier, 0.05, 0.25);
        var baseline = job["baseline"]!;
        Assert.Equal((double)baseline["valLoss"]!, (double)baseline["metrics"]!["logLoss"]!, 5);
        Assert.True(logLoss < (double)baseline["metrics"]!["logLoss"]!, "the model should beat the class prior");
    }

    [Fact]
    public async Task A_hinge_model_whose_scores_are_not_probabilities_reports_neither()
    {
        var (_, epoch) = await TrainAsync("hinge");

        var metrics = epoch["metrics"]!.AsObject();
        Assert.True(metrics.ContainsKey("accuracy"));
        Assert.False(metrics.ContainsKey("logLoss"));
        Assert.False(metrics.ContainsKey("brier"));
    }
}
