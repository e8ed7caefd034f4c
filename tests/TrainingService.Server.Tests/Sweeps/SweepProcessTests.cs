using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using TrainingService.ProcessHarness;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests.Sweeps;

/// <summary>A sweep's durability with real processes: its state is the database's, so no process holds anything to lose.</summary>
[Collection(ServiceTests.Name)]
public sealed class SweepProcessTests
{
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task A_sweep_survives_a_kill_9_of_its_worker_and_an_api_restart_with_every_trial_accounted_for_once()
    {
        await using var database = await TestDatabase.CreateAsync();
        // Three Hangfire workers in one process, so maxParallel (2), not the worker count, is what limits the sweep.
        var workerSettings = new Dictionary<string, string> { ["Worker:WorkerCount"] = "3", ["Sweeps:ReconcileInterval"] = "00:00:00.500" };
        var api = ServiceFixture.StartProcess("api", database.ConnectionString);
        await api.WaitReadyAsync(Startup);
        var dataset = await api.Client.UploadAsync(TestData.Linear(3000, seed: 1501));
        var response = await api.Client.PostAsJsonAsync("/api/sweeps", new
        {
            @base = new
            {
                datasetId = dataset.Id(), target = "y", model = new { type = "mlp", hiddenLayers = new[] { 16 } }, loss = new { name = "mse" },
                optimizer = new { name = "adam", learningRate = 0.01 }, epochs = 6, batchSize = 8, validation = new { fraction = 0.2 },
            },
            parameters = new Dictionary<string, object> { ["seed"] = new { values = new[] { 1, 2, 3, 4, 5, 6 } } },
            method = "grid",
            maxParallel = 2,
            objective = new { metric = "val.rmse" },
        }, Api.Json);
        string sweepId = (await Api.ReadAsync(response, HttpStatusCode.Accepted)).Id();

        var worker = ServiceFixture.StartProcess("worker", database.ConnectionString, workerSettings);
        await WaitAsync(api.Client, sweepId, s => s["trials"]!["byState"]!["running"] is not null, "a running trial");
        worker.Kill();
        await worker.DisposeAsync();
        // The API restarts too, while no worker lives: nothing of the sweep is in either process.
        await api.DisposeAsync();
        await using var restarted = ServiceFixture.StartProcess("api", database.ConnectionString);
        await restarted.WaitReadyAsync(Startup);
        await using var second = ServiceFixture.StartProcess("worker", database.ConnectionString, workerSettings);
        var ended = await WaitAsync(restarted.Client, sweepId, s => (string?)s["status"] != "running", "the sweep's end", seconds: 300);

        Assert.Equal("completed", (string?)ended["status"]);
        var trials = (await restarted.Client.GetJsonAsync($"/api/sweeps/{sweepId}/trials?sort=trial"))["items"]!.AsArray();
        Assert.Equal([0, 1, 2, 3, 4, 5], trials.Select(t => (int)t!["trial"]!));
        Assert.Equal([1, 2, 3, 4, 5, 6], trials.Select(t => (int)t!["parameters"]!["seed"]!).Order());
        Assert.All(trials, t => Assert.Equal("succeeded", (string?)t!["state"]));
        // Every job of the database is one of these trials: none was created twice.
        var jobs = (await restarted.Client.GetJsonAsync("/api/jobs?limit=100"))["items"]!.AsArray();
        Assert.Equal(6, jobs.Count);
        // From the jobs' transitions: never more than two trials running at once, killed worker included.
        var runs = new List<(DateTimeOffset From, DateTimeOffset To)>();
        foreach (var job in jobs)
        {
            var transitions = job!["transitions"]!.AsArray();
            var starts = transitions.Where(t => (string?)t!["status"] == "running").Select(t => (DateTimeOffset)t!["at"]!).ToList();
            runs.Add((starts.Min(), (DateTimeOffset)job["finishedAt"]!));
        }
        Assert.True(runs.Max(r => runs.Count(o => o.From <= r.From && r.From < o.To)) <= 2, string.Join("; ", runs));
    }

    private static async Task<JsonNode> WaitAsync(HttpClient client, string sweepId, Func<JsonNode, bool> condition, string what, int seconds = 120)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        JsonNode sweep;
        do
        {
            sweep = await client.GetJsonAsync($"/api/sweeps/{sweepId}");
            if (condition(sweep))
            {
                return sweep;
            }
            await Task.Delay(100);
        }
        while (DateTime.UtcNow < deadline);
        Assert.Fail($"Sweep {sweepId}: no {what} within {seconds} s: {sweep.ToJsonString()}");
        return sweep;
    }
}
