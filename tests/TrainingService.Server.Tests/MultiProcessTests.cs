using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using TrainingService.ProcessHarness;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>
/// The scale-out story with real processes: an API process and separate worker processes sharing one PostgreSQL, each
/// test on its own database. Notifications cross processes only through the database.
/// </summary>
[Collection(ServiceTests.Name)]
public sealed class MultiProcessTests
{
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task An_api_process_streams_epochs_that_a_separate_worker_process_writes()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var api = ServiceFixture.StartProcess("api", database.ConnectionString);
        await api.WaitReadyAsync(Startup);
        var dataset = await api.Client.UploadAsync(TestData.Linear(2000, seed: 51));
        var job = await api.Client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 6, batchSize: 8, learningRate: 0.001));

        // The API process runs no jobs: the job waits for a worker.
        await Task.Delay(1500);
        Assert.Equal("queued", (string?)(await api.Client.GetJsonAsync($"/api/jobs/{job.Id()}"))["status"]);

        var stream = SseClient.ReadAsync(api.Client, $"/api/jobs/{job.Id()}/history/stream", null, e => e.Event == "end", TimeSpan.FromSeconds(120));
        await using var worker = ServiceFixture.StartProcess("worker", database.ConnectionString);
        var (events, _) = await stream;

        Assert.Equal(Enumerable.Range(1, 6), events.Where(e => e.Event == "epoch").Select(e => int.Parse(e.Id!)));
        Assert.Equal("end", events[^1].Event);
        Assert.Equal("succeeded", (string?)JsonNode.Parse(events[^1].Data)!["status"]);
        var done = await api.Client.GetJsonAsync($"/api/jobs/{job.Id()}");
        Assert.Contains("ILGPU CPU accelerator", (string?)done["device"]);
    }

    [Fact]
    public async Task A_job_whose_worker_dies_is_resumed_by_another_and_ends_as_if_uninterrupted()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var api = ServiceFixture.StartProcess("api", database.ConnectionString);
        await api.WaitReadyAsync(Startup);
        var dataset = await api.Client.UploadAsync(TestData.Blobs(3000, seed: 52));
        object Spec() => new
        {
            datasetId = dataset.Id(), target = "species", model = new { type = "mlp", hiddenLayers = new[] { 16 }, dropout = 0.1 },
            loss = "cross_entropy", optimizer = new { name = "adam", learningRate = 0.003 }, schedule = new { name = "step", stepSize = 3, gamma = 0.5 },
            epochs = 12, batchSize = 4, seed = 8, validation = new { fraction = 0.2 },
        };

        var interrupted = await api.Client.SubmitAsync(Spec());
        var first = ServiceFixture.StartProcess("worker", database.ConnectionString);
        await WaitForEpochAsync(api.Client, interrupted.Id(), 3);
        first.Kill();
        await first.DisposeAsync();
        await using var second = ServiceFixture.StartProcess("worker", database.ConnectionString);
        var resumed = await api.Client.WaitForEndAsync(interrupted.Id(), 240);

        var reference = await api.Client.SubmitAsync(Spec());
        var uninterrupted = await api.Client.WaitForEndAsync(reference.Id(), 240);

        Assert.Equal("succeeded", (string?)resumed["status"]);
        Assert.Contains(resumed["transitions"]!.AsArray(), t => (string?)t!["status"] == "running");
        var resumedHistory = await api.Client.GetJsonAsync($"/api/jobs/{interrupted.Id()}/history");
        var referenceHistory = await api.Client.GetJsonAsync($"/api/jobs/{reference.Id()}/history");
        Assert.Equal(Enumerable.Range(1, 12), resumedHistory["epochs"]!.AsArray().Select(e => (int)e!["epoch"]!));
        Assert.Equal(Losses(referenceHistory), Losses(resumedHistory));
        var resumedModel = await api.Client.GetJsonAsync($"/api/jobs/{interrupted.Id()}/model");
        var referenceModel = await api.Client.GetJsonAsync($"/api/jobs/{reference.Id()}/model");
        Assert.Equal(referenceModel["layers"]!.ToJsonString(), resumedModel["layers"]!.ToJsonString());
        Assert.Equal("succeeded", (string?)uninterrupted["status"]);
    }

    [Fact]
    public async Task A_million_full_precision_predictions_evaluate_in_one_call_through_kestrel()
    {
        // Through a real server, since only Kestrel enforces request body limits (its default, 30 MB, is too small).
        await using var database = await TestDatabase.CreateAsync();
        await using var api = ServiceFixture.StartProcess("api", database.ConnectionString);
        await api.WaitReadyAsync(Startup);
        const int n = 1_000_000;
        var random = new Random(8);
        double[] predictions = Enumerable.Range(0, n).Select(_ => random.NextDouble() * 10 - 5).ToArray();
        double[] targets = Enumerable.Range(0, n).Select(_ => random.NextDouble() * 10 - 5).ToArray();
        var body = new StringBuilder("{\"loss\":\"mse\",\"predictions\":[");
        body.AppendJoin(',', predictions.Select(p => p.ToString("R", CultureInfo.InvariantCulture)));
        body.Append("],\"targets\":[").AppendJoin(',', targets.Select(t => t.ToString("R", CultureInfo.InvariantCulture))).Append("]}");
        Assert.True(body.Length > 30_000_000, $"the body is {body.Length:N0} bytes: no test of the limit");

        var response = await api.Client.PostAsync("/api/losses/evaluate", new StringContent(body.ToString(), Encoding.UTF8, "application/json"));
        var result = await Api.ReadAsync(response, HttpStatusCode.OK);

        double expected = predictions.Zip(targets, (p, t) => (p - t) * (p - t)).Sum() / n;
        Assert.Equal(expected, (double)result["loss"]!, expected * 1e-6);
        var gradient = result["gradient"]!.AsArray();
        Assert.Equal(n, gradient.Count);
        Assert.Equal(2 * (predictions[n - 1] - targets[n - 1]) / n, (double)gradient[n - 1]!, 1e-10);
    }

    [Fact]
    public async Task A_body_over_the_evaluate_limit_is_a_413_problem_with_a_code()
    {
        await using var database = await TestDatabase.CreateAsync();
        // The body limit follows from Losses:MaxElements (32 bytes a value in each of four arrays, plus 1 MiB): 1000 values
        // padded with 400 spaces each are within the bound by count and past the limit by bytes.
        await using var api = ServiceFixture.StartProcess("api", database.ConnectionString,
            new Dictionary<string, string> { ["Losses:MaxElements"] = "1000" });
        await api.WaitReadyAsync(Startup);
        string numbers = string.Join(',', Enumerable.Repeat("0.5" + new string(' ', 400), 1000));

        var response = await api.Client.PostAsync("/api/losses/evaluate", new StringContent(
            $$"""{"loss":"mse","predictions":[{{numbers}}],"targets":[{{numbers}}],"weights":[{{numbers}}],"variance":[{{numbers}}]}""",
            Encoding.UTF8, "application/json"));

        await response.AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, "request.too_large");
    }

    [Theory]
    [InlineData("Worker:WorkerCount", "0", "WorkerCount")]
    [InlineData("Jobs:DefaultHistoryLimit", "501", "DefaultHistoryLimit")] // above the fixture's Jobs:MaxHistoryLimit
    public async Task An_invalid_setting_stops_the_process_at_start_naming_the_setting_before_touching_the_database(
        string setting, string value, string named)
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = ServiceFixture.StartProcess("worker", database.ConnectionString, new Dictionary<string, string> { [setting] = value });

        int exit = await server.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.NotEqual(0, exit);
        Assert.Contains(named, server.Output);
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM information_schema.tables WHERE table_name = 'jobs'"));
    }

    [Fact]
    public async Task An_unknown_role_stops_the_process_at_start()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = ServiceFixture.StartProcess("janitor", database.ConnectionString);

        int exit = await server.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.NotEqual(0, exit);
        Assert.Contains("Service:Role", server.Output);
    }

    private static string Losses(JsonNode history) => string.Join(";", history["epochs"]!.AsArray()
        .Select(e => $"{e!["epoch"]}|{e["trainLoss"]}|{e["valLoss"]}|{e["learningRate"]}|{e["gradientNorm"]}|{e["metrics"]!.ToJsonString()}"));

    private static async Task WaitForEpochAsync(HttpClient client, string jobId, int epoch)
    {
        var deadline = DateTime.UtcNow.AddSeconds(180);
        while ((int)(await client.GetJsonAsync($"/api/jobs/{jobId}"))["epochsCompleted"]! < epoch)
        {
            Assert.True(DateTime.UtcNow < deadline, $"job {jobId} did not reach epoch {epoch}");
            await Task.Delay(50);
        }
    }
}
