using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TrainingService.Compute.Training;
using TrainingService.Server.Configuration;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>Baselines, curve diagnoses and the kept model, as the API shows them on a job and its history.</summary>
[Collection(ServiceTests.Name)]
public sealed class DiagnosisApiTests(ServiceFixture service)
{
    private readonly HttpClient _client = service.Client;

    private static string? _noisy;

    /// <summary>300 noisy linear rows; with validation fraction 0.9 the model trains on 30 of them.</summary>
    private async Task<string> NoisyAsync() => _noisy ??= (await _client.UploadAsync(TestData.Linear(300, seed: 61, noise: 6))).Id();

    /// <summary>A big MLP on 30 training rows for 60 epochs: built to overfit.</summary>
    private async Task<object> OverfittingSpec(string? keep = null) => new
    {
        datasetId = await NoisyAsync(),
        target = "y",
        model = new { type = "mlp", hiddenLayers = new[] { 128, 128 } },
        loss = new { name = "mse" },
        optimizer = new { name = "adam", learningRate = 0.01 },
        validation = new { fraction = 0.9 },
        epochs = 60,
        batchSize = 8,
        seed = 3,
        keep,
    };

    private async Task<JsonNode> TrainAsync(object spec)
    {
        var job = await _client.SubmitAsync(spec);
        var done = await _client.WaitForEndAsync(job.Id(), 120);
        Assert.True((string?)done["status"] == "succeeded", done.ToJsonString());
        return done;
    }

    [Fact]
    public async Task An_overfitting_job_says_so_from_its_best_epoch_and_keeps_that_epochs_model()
    {
        var done = await TrainAsync(await OverfittingSpec());

        int bestValEpoch = (int)done["summary"]!["bestValLossEpoch"]!;
        var overfitting = done["diagnoses"]!.AsArray().Single(d => (string?)d!["code"] == "overfitting")!;
        Assert.Equal(bestValEpoch, (int)overfitting["fromEpoch"]!);
        Assert.Equal(60, (int)overfitting["toEpoch"]!);
        Assert.Contains($"epoch {bestValEpoch}", (string?)overfitting["message"]);
        Assert.NotEmpty(overfitting["suggestions"]!.AsArray());
        Assert.True((double)overfitting["numbers"]!["rise"]! > 0.1);

        Assert.Equal("best", (string?)done["spec"]!["keep"]);
        Assert.Equal(bestValEpoch, (int)done["modelEpoch"]!);
        var model = await _client.GetJsonAsync($"/api/jobs/{done.Id()}/model");
        Assert.Equal(bestValEpoch, (int)model["modelEpoch"]!);
        Assert.Equal(60, (int)model["epochsTrained"]!);
    }

    [Fact]
    public async Task Keep_last_stores_the_last_epochs_model()
    {
        var done = await TrainAsync(await OverfittingSpec(keep: "last"));

        Assert.Equal(60, (int)done["modelEpoch"]!);
        Assert.NotEqual(60, (int)done["summary"]!["bestValLossEpoch"]!);
    }

    [Fact]
    public async Task The_baseline_is_stored_on_the_job_and_shown_with_the_history()
    {
        var done = await TrainAsync(await OverfittingSpec());

        var baseline = done["baseline"]!;
        Assert.Equal("mean", (string?)baseline["model"]);
        double baselineVal = (double)baseline["valLoss"]!;
        Assert.True(baselineVal > (double)done["summary"]!["bestValLoss"]!, "the trained model should beat predicting the mean");
        Assert.InRange((double)baseline["metrics"]!["r2"]!, -0.1, 0);

        var history = await _client.GetJsonAsync($"/api/jobs/{done.Id()}/history");
        Assert.Equal(baselineVal, (double)history["baseline"]!["valLoss"]!);
        Assert.Equal(done["diagnoses"]!.ToJsonString(), history["diagnoses"]!.ToJsonString());
    }

    [Fact]
    public async Task A_diverging_job_is_diagnosed_diverged()
    {
        var spec = TestData.LinearSpec(await NoisyAsync(), epochs: 50, batchSize: 8, learningRate: 10);

        var job = await _client.SubmitAsync(spec);
        var done = await _client.WaitForEndAsync(job.Id(), 120);

        Assert.Equal("failed", (string?)done["status"]);
        var diverged = done["diagnoses"]!.AsArray().Single(d => (string?)d!["code"] == "diverged")!;
        Assert.Equal((int)done["failure"]!["epoch"]!, (int)diverged["fromEpoch"]!);
    }

    [Fact]
    public async Task A_job_lists_no_diagnoses_before_its_first_epoch()
    {
        var job = await _client.SubmitAsync(await OverfittingSpec());

        Assert.Empty(job["diagnoses"]!.AsArray());
        Assert.Null(job["modelEpoch"]);
        await _client.WaitForEndAsync(job.Id(), 120);
    }

    [Theory]
    [InlineData("worst", null, "job.invalid_keep", "keep")]
    [InlineData("best", false, "job.conflicting_keep", "earlyStopping.restoreBest")]
    [InlineData("last", true, "job.conflicting_keep", "earlyStopping.restoreBest")]
    public async Task A_bad_keep_is_refused(string keep, bool? restoreBest, string code, string field)
    {
        var response = await _client.PostAsJsonAsync("/api/jobs", new
        {
            datasetId = await NoisyAsync(),
            target = "y",
            loss = new { name = "mse" },
            epochs = 3,
            validation = new { fraction = 0.2 },
            earlyStopping = restoreBest is null ? null : new { restoreBest },
            keep,
        }, Api.Json);

        await response.AssertProblemAsync(HttpStatusCode.BadRequest, code, field);
    }

    [Fact]
    public async Task Restore_best_false_alone_means_keep_last()
    {
        var job = await _client.SubmitAsync(new
        {
            datasetId = await NoisyAsync(),
            target = "y",
            loss = new { name = "mse" },
            epochs = 3,
            validation = new { fraction = 0.2 },
            earlyStopping = new { restoreBest = false },
        });

        Assert.Equal("last", (string?)job["spec"]!["keep"]);
        await _client.WaitForEndAsync(job.Id(), 120);
    }

    [Fact]
    public void Diagnosis_thresholds_are_configured_and_validated_at_start()
    {
        static IOptions<DiagnosisThresholds> Options(Dictionary<string, string?> settings)
        {
            var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
            return new ServiceCollection().AddSingleton<IConfiguration>(configuration).AddServiceOptions(configuration)
                .BuildServiceProvider().GetRequiredService<IOptions<DiagnosisThresholds>>();
        }

        var configured = Options(new() { ["Diagnoses:OverfitRise"] = "0.25", ["Diagnoses:PlateauEpochs"] = "30" }).Value;
        Assert.Equal((0.25, 30, 3), (configured.OverfitRise, configured.PlateauEpochs, configured.OverfitEpochs));

        var refused = Assert.Throws<OptionsValidationException>(() => Options(new() { ["Diagnoses:OverfitRise"] = "-1" }).Value);
        Assert.Contains("OverfitRise", refused.Message);
    }
}
