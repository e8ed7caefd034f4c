using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>The walking skeleton: upload, train, read the history, against real PostgreSQL and a real Hangfire server.</summary>
[Collection(ServiceTests.Name)]
public sealed class SkeletonTests(ServiceFixture service)
{
    private readonly HttpClient _client = service.Client;

    [Fact]
    public async Task An_uploaded_dataset_trains_to_success_with_one_history_row_per_epoch_and_a_falling_loss()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(600));
        Assert.Equal(600, (int)dataset["rowCount"]!);
        Assert.Equal(["x1", "x2", "y"], dataset["columns"]!.AsArray().Select(c => (string)c!["name"]!));
        Assert.All(dataset["columns"]!.AsArray(), c => Assert.Equal("numeric", (string?)c!["type"]));

        var job = await _client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 8, learningRate: 0.005));
        Assert.Equal("queued", (string?)job["status"]);
        var done = await _client.WaitForEndAsync(job.Id());

        Assert.Equal("succeeded", (string?)done["status"]);
        Assert.Equal("completed", (string?)done["stopReason"]);
        Assert.Equal(8, (int)done["epochsCompleted"]!);
        var history = await _client.GetJsonAsync($"/api/jobs/{job.Id()}/history");
        var losses = history["epochs"]!.AsArray().Select(e => (double)e!["trainLoss"]!).ToList();
        Assert.Equal(Enumerable.Range(1, 8), history["epochs"]!.AsArray().Select(e => (int)e!["epoch"]!));
        Assert.True(losses.Zip(losses.Skip(1)).All(p => p.Second < p.First), $"losses not decreasing: {string.Join(", ", losses)}");
        Assert.True(losses[^1] < 0.1 * losses[0], $"losses: {string.Join(", ", losses)}");
    }

    [Fact]
    public async Task The_history_grows_while_the_job_runs()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(20_000, seed: 2));
        var job = await _client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 30, batchSize: 8));

        var seen = new SortedSet<int>();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        string status;
        do
        {
            var history = await _client.GetJsonAsync($"/api/jobs/{job.Id()}/history");
            seen.Add(history["epochs"]!.AsArray().Count);
            status = (string)history["status"]!;
            await Task.Delay(100);
        }
        while (status is "queued" or "running" && DateTime.UtcNow < deadline);

        Assert.Equal("succeeded", status);
        Assert.Contains(seen, count => count > 0 && count < 30);
        Assert.True(seen.Count >= 3, $"saw counts {string.Join(", ", seen)}");
    }

    [Fact]
    public async Task A_job_is_picked_up_promptly_not_after_hangfires_15_second_poll()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(50, seed: 3));
        var job = await _client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 1));

        var done = await _client.WaitForEndAsync(job.Id());
        var created = DateTimeOffset.Parse((string)done["createdAt"]!);
        var started = DateTimeOffset.Parse((string)done["startedAt"]!);

        // Latency itself is measured by the benchmark; this only catches a queue left on polling.
        Assert.True(started - created < TimeSpan.FromSeconds(5), $"pickup took {started - created}");
    }

    [Fact]
    public async Task An_empty_body_is_refused_and_nothing_is_stored()
    {
        long before = await service.Database.ScalarAsync<long>("SELECT count(*) FROM datasets");

        var response = await _client.PostCsvAsync("");

        await response.AssertProblemAsync(HttpStatusCode.BadRequest, "dataset.empty");
        Assert.Equal(before, await service.Database.ScalarAsync<long>("SELECT count(*) FROM datasets"));
    }

    [Fact]
    public async Task A_ragged_row_is_refused_with_its_line_number_and_nothing_is_stored()
    {
        long chunks = await service.Database.ScalarAsync<long>("SELECT count(*) FROM dataset_chunks");

        var response = await _client.PostCsvAsync("a,b\n1,2\n3,4\n5\n6,7\n");

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "dataset.ragged_row");
        Assert.Equal(4, (int)problem["line"]!);
        Assert.Equal(chunks, await service.Database.ScalarAsync<long>("SELECT count(*) FROM dataset_chunks"));
    }

    [Fact]
    public async Task A_non_numeric_cell_makes_a_column_categorical_and_a_regression_on_it_is_refused()
    {
        var dataset = await _client.UploadAsync("x,y\n1,2.5\n2,abc\n3,4.5\n");
        Assert.Equal("categorical", (string?)dataset["columns"]![1]!["type"]);
        long jobs = await service.Database.ScalarAsync<long>("SELECT count(*) FROM jobs");

        var response = await _client.PostAsJsonAsync("/api/jobs", new
        {
            datasetId = dataset.Id(), target = "y", loss = new { name = "mse" }, epochs = 1,
        });

        var problem = await response.AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "job.loss_target_mismatch", "loss");
        Assert.Contains("'y'", (string?)problem["detail"]);
        Assert.Equal(jobs, await service.Database.ScalarAsync<long>("SELECT count(*) FROM jobs"));
    }

    [Fact]
    public async Task An_unknown_target_column_is_refused_and_no_job_is_stored()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(20, seed: 4));
        long jobs = await service.Database.ScalarAsync<long>("SELECT count(*) FROM jobs");

        var response = await _client.PostAsJsonAsync("/api/jobs", new { datasetId = dataset.Id(), target = "price", loss = "mse", epochs = 1 });

        await response.AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "job.unknown_column", "target");
        Assert.Equal(jobs, await service.Database.ScalarAsync<long>("SELECT count(*) FROM jobs"));
    }

    [Fact]
    public async Task An_unknown_dataset_id_is_refused_and_no_job_is_stored()
    {
        long jobs = await service.Database.ScalarAsync<long>("SELECT count(*) FROM jobs");

        var response = await _client.PostAsJsonAsync("/api/jobs", new { datasetId = Guid.NewGuid(), target = "y", loss = "mse", epochs = 1 });

        await response.AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "job.unknown_dataset", "datasetId");
        Assert.Equal(jobs, await service.Database.ScalarAsync<long>("SELECT count(*) FROM jobs"));
    }

    [Fact]
    public async Task Unknown_ids_in_the_url_are_404_problems()
    {
        await (await _client.GetAsync($"/api/jobs/{Guid.NewGuid()}")).AssertProblemAsync(HttpStatusCode.NotFound, "job.not_found");
        await (await _client.GetAsync($"/api/datasets/{Guid.NewGuid()}")).AssertProblemAsync(HttpStatusCode.NotFound, "dataset.not_found");
        await (await _client.GetAsync($"/api/jobs/{Guid.NewGuid()}/history")).AssertProblemAsync(HttpStatusCode.NotFound, "job.not_found");
    }

    [Fact]
    public async Task Malformed_json_is_a_400_problem_with_its_position()
    {
        var content = new StringContent("{\"datasetId\": \"x\", ", System.Text.Encoding.UTF8, "application/json");

        var response = await _client.PostAsync("/api/jobs", content);

        await response.AssertProblemAsync(HttpStatusCode.BadRequest, "request.invalid_json");
    }

    [Fact]
    public async Task Readiness_reports_postgres_and_hangfire()
    {
        var health = await _client.GetJsonAsync("/health/ready");

        Assert.Equal("healthy", (string?)health["status"]);
        Assert.Equal("healthy", (string?)health["checks"]!["postgres"]!["status"]);
        Assert.Equal("healthy", (string?)health["checks"]!["hangfire"]!["status"]);
        Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync("/health/live")).StatusCode);
    }

    [Fact]
    public async Task Swagger_documents_every_resource_with_request_examples()
    {
        var document = await _client.GetJsonAsync("/swagger/v1/swagger.json");
        var paths = document["paths"]!.AsObject();

        foreach (var path in new[] { "/api/datasets", "/api/jobs", "/api/jobs/{id}/history", "/api/jobs/{id}/history/stream", "/api/losses/evaluate" })
        {
            Assert.True(paths.ContainsKey(path), $"missing {path}");
        }
        Assert.NotNull(paths["/api/jobs"]!["post"]!["requestBody"]!["content"]!["application/json"]!["example"]);
        foreach (var path in new[] { "/api/jobs/{id}", "/api/jobs/{id}/model", "/api/jobs/{id}/history" })
        {
            var responses = paths[path]!["get"]!["responses"]!.AsObject();
            Assert.True(responses.ContainsKey("200") && responses.ContainsKey("304") && responses.ContainsKey("404"), $"{path}: {responses.ToJsonString()}");
            Assert.NotNull(responses["200"]!["content"]!["application/json"]!["schema"]);
        }
        Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync("/swagger/index.html")).StatusCode);
    }
}
