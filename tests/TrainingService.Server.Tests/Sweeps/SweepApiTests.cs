using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests.Sweeps;

/// <summary>Sweeps through the API, with a real worker: trials as jobs, scheduling limits, pruning, refusals and the loss report.</summary>
[Collection(ServiceTests.Name)]
public sealed class SweepApiTests(ServiceFixture service)
{
    private readonly HttpClient _client = service.Client;

    private async Task<JsonNode> SubmitSweepAsync(object sweep) =>
        await Api.ReadAsync(await _client.PostAsJsonAsync("/api/sweeps", sweep, Api.Json), HttpStatusCode.Accepted);

    /// <summary>Polls the sweep until it has ended; fails with its last state otherwise.</summary>
    private async Task<JsonNode> WaitForSweepAsync(string id, int seconds = 120)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        JsonNode sweep;
        do
        {
            sweep = await _client.GetJsonAsync($"/api/sweeps/{id}");
            if ((string?)sweep["status"] != "running")
            {
                return sweep;
            }
            await Task.Delay(100);
        }
        while (DateTime.UtcNow < deadline);
        Assert.Fail($"Sweep {id} did not end within {seconds} s: {sweep.ToJsonString()}");
        return sweep;
    }

    private static object LinearBase(string datasetId, int epochs = 3) => new
    {
        datasetId,
        target = "y",
        model = new { type = "linear" },
        loss = new { name = "mse" },
        optimizer = new { name = "sgd", learningRate = 0.05 },
        epochs,
        batchSize = 32,
        validation = new { fraction = 0.25 },
        seed = 1,
    };

    [Fact]
    public async Task A_grid_sweep_runs_each_combination_exactly_once_with_at_most_maxParallel_trials_unfinished()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(200, seed: 1401));
        var sweep = await SubmitSweepAsync(new
        {
            @base = LinearBase(dataset.Id()),
            parameters = new Dictionary<string, object>
            {
                ["optimizer.learningRate"] = new { values = new[] { 0.01, 0.1 } },
                ["batchSize"] = new { values = new[] { 16, 32, 64 } },
            },
            method = "grid",
            maxParallel = 2,
            objective = new { metric = "val.rmse" },
        });
        Assert.Equal(6, (int)sweep["trials"]!["planned"]!);
        var ended = await WaitForSweepAsync(sweep.Id());
        Assert.Equal("completed", (string?)ended["status"]);
        Assert.Equal("max_trials", (string?)ended["stopReason"]);

        var trials = (await _client.GetJsonAsync($"/api/sweeps/{sweep.Id()}/trials?sort=trial"))["items"]!.AsArray();
        Assert.Equal([0, 1, 2, 3, 4, 5], trials.Select(t => (int)t!["trial"]!));
        var combinations = trials.Select(t => $"{(double)t!["parameters"]!["optimizer.learningRate"]!}/{(int)t["parameters"]!["batchSize"]!}").ToList();
        Assert.Equal(6, combinations.Distinct().Count());
        Assert.All(trials, t => Assert.Equal("succeeded", (string?)t!["state"]));

        // Each trial is an ordinary job carrying its sweep, index and parameters, with those parameters in its spec.
        var jobs = new List<JsonNode>();
        foreach (var trial in trials)
        {
            var job = await _client.GetJsonAsync($"/api/jobs/{(string)trial!["jobId"]!}");
            Assert.Equal(sweep.Id(), (string?)job["sweepId"]);
            Assert.Equal((int)trial["trial"]!, (int)job["sweepTrial"]!);
            Assert.Equal((int)trial["parameters"]!["batchSize"]!, (int)job["spec"]!["batchSize"]!);
            Assert.Equal((double)trial["parameters"]!["optimizer.learningRate"]!, (double)job["spec"]!["optimizer"]!["learningRate"]!);
            jobs.Add(job);
        }
        // The job list filters by sweep: these six and no other job.
        var listed = (await _client.GetJsonAsync($"/api/jobs?sweepId={sweep.Id()}&limit=100"))["items"]!.AsArray();
        Assert.Equal(trials.Select(t => (string?)t!["jobId"]).Order(), listed.Select(j => (string?)j!["id"]).Order());
        // From the jobs' own timestamps: never more than 2 unfinished at once, and 2 at some moment (the limit is used).
        var spans = jobs.Select(j => (From: (DateTimeOffset)j["createdAt"]!, To: (DateTimeOffset)j["finishedAt"]!)).ToList();
        int most = spans.Max(s => spans.Count(o => o.From <= s.From && s.From < o.To));
        Assert.Equal(2, most);
    }

    [Fact]
    public async Task The_sweep_reports_its_best_trial_and_a_best_so_far_curve_that_never_gets_worse()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(200, seed: 1402));
        var sweep = await SubmitSweepAsync(new
        {
            @base = LinearBase(dataset.Id()),
            parameters = new Dictionary<string, object> { ["optimizer.learningRate"] = new { distribution = "log_uniform", min = 1e-4, max = 0.3 } },
            method = "random",
            maxTrials = 5,
            maxParallel = 1,
            objective = new { metric = "val.rmse" },
            seed = 3,
        });
        var ended = await WaitForSweepAsync(sweep.Id());
        var curve = ended["bestSoFar"]!.AsArray();
        Assert.Equal(5, curve.Count);
        var best = curve.Select(p => (double)p!["best"]!).ToList();
        Assert.True(best.Zip(best.Skip(1)).All(p => p.Second <= p.First), string.Join(", ", best));
        var trials = (await _client.GetJsonAsync($"/api/sweeps/{sweep.Id()}/trials?sort=objective"))["items"]!.AsArray();
        var objectives = trials.Select(t => (double)t!["objective"]!).ToList();
        Assert.Equal(objectives.Order(), objectives);
        Assert.Equal((string?)trials[0]!["jobId"], (string?)ended["best"]!["jobId"]);
        Assert.Equal(best[^1], (double)ended["best"]!["objective"]!, 12);
        // Seeded: the same sweep proposes the same learning rates.
        var again = await SubmitSweepAsync(JsonNode.Parse(ended["spec"]!.ToJsonString())!);
        await WaitForSweepAsync(again.Id());
        var rates = async (string id) => (await _client.GetJsonAsync($"/api/sweeps/{id}/trials"))["items"]!.AsArray()
            .Select(t => (double)t!["parameters"]!["optimizer.learningRate"]!).ToList();
        Assert.Equal(await rates(sweep.Id()), await rates(again.Id()));
    }

    [Fact]
    public async Task ASHA_prunes_the_trials_that_are_far_behind_at_a_rung_and_never_the_best()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(300, seed: 1403));
        // Good learning rates first, then ones too small to move in a few epochs: known losers.
        var sweep = await SubmitSweepAsync(new
        {
            @base = LinearBase(dataset.Id(), epochs: 12),
            parameters = new Dictionary<string, object> { ["optimizer.learningRate"] = new { values = new[] { 0.1, 0.05, 0.2, 1e-5, 2e-5, 5e-6 } } },
            method = "grid",
            maxParallel = 1,
            objective = new { metric = "val.rmse" },
            earlyTermination = new { type = "asha", minEpochs = 1, reductionFactor = 3 },
        });
        var ended = await WaitForSweepAsync(sweep.Id());
        var trials = (await _client.GetJsonAsync($"/api/sweeps/{sweep.Id()}/trials?sort=trial"))["items"]!.AsArray();
        var slow = trials.Where(t => (double)t!["parameters"]!["optimizer.learningRate"]! < 1e-3).ToList();
        Assert.All(slow, t =>
        {
            Assert.Equal("pruned", (string?)t!["state"]);
            Assert.Equal("pruned", (string?)t["stopReason"]);
            Assert.InRange((int)t["epochsCompleted"]!, 1, 11);
        });
        // Optuna's rule: with fewer than reductionFactor values at a rung only the best goes on, so an early good trial may go too.
        Assert.InRange((int)ended["trials"]!["byState"]!["pruned"]!, 3, 5);
        var best = ended["best"]!;
        Assert.NotEqual("pruned", (string?)best["state"]);
        Assert.Equal(12, (int)best["epochsCompleted"]!);
        // A pruned trial keeps its history and its model.
        string prunedJob = (string)slow[0]!["jobId"]!;
        var history = await _client.GetJsonAsync($"/api/jobs/{prunedJob}/history");
        Assert.Equal((int)slow[0]!["epochsCompleted"]!, history["epochs"]!.AsArray().Count);
        Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync($"/api/jobs/{prunedJob}/model")).StatusCode);
    }

    [Fact]
    public async Task Cancelling_a_sweep_cancels_its_unfinished_trials_and_starts_no_more()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(2000, seed: 1404));
        var sweep = await SubmitSweepAsync(new
        {
            @base = LinearBase(dataset.Id(), epochs: 2000),
            parameters = new Dictionary<string, object> { ["seed"] = new { values = new[] { 1, 2, 3, 4 } } },
            method = "grid",
            maxParallel = 2,
            objective = new { metric = "val.rmse" },
        });
        var response = await _client.PostAsync($"/api/sweeps/{sweep.Id()}/cancel", null);
        var cancelled = await Api.ReadAsync(response, HttpStatusCode.Accepted);
        Assert.Equal("cancelled", (string?)cancelled["status"]);
        var trials = (await _client.GetJsonAsync($"/api/sweeps/{sweep.Id()}/trials"))["items"]!.AsArray();
        Assert.Equal(2, trials.Count);
        foreach (var trial in trials)
        {
            Assert.Equal("cancelled", (string?)(await _client.WaitForEndAsync((string)trial!["jobId"]!))["status"]);
        }
        await Task.Delay(1500); // several reconciler passes (ReconcileInterval is shorter in tests)
        Assert.Equal(2, (await _client.GetJsonAsync($"/api/sweeps/{sweep.Id()}/trials"))["items"]!.AsArray().Count);
        await (await _client.PostAsync($"/api/sweeps/{sweep.Id()}/cancel", null)).AssertProblemAsync(HttpStatusCode.Conflict, "sweep.not_cancellable");
    }

    [Fact]
    public async Task A_sweep_past_its_maxRuntime_ends_and_cancels_the_trials_still_running()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(2000, seed: 1411));
        var sweep = await SubmitSweepAsync(new
        {
            @base = LinearBase(dataset.Id(), epochs: 2000),
            parameters = new Dictionary<string, object> { ["seed"] = new { values = new[] { 1, 2, 3 } } },
            method = "grid",
            maxParallel = 1,
            objective = new { metric = "val.rmse" },
            maxRuntime = "00:00:02",
        });
        var ended = await WaitForSweepAsync(sweep.Id(), 60);
        Assert.Equal("completed", (string?)ended["status"]);
        Assert.Equal("max_runtime", (string?)ended["stopReason"]);
        var trials = (await _client.GetJsonAsync($"/api/sweeps/{sweep.Id()}/trials"))["items"]!.AsArray();
        Assert.Single(trials);
        var job = await _client.WaitForEndAsync((string)trials[0]!["jobId"]!);
        Assert.Equal("cancelled", (string?)job["status"]);
    }

    [Fact]
    public async Task An_objective_of_valLoss_is_refused_when_the_loss_varies_naming_the_metrics_that_compare()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(100, seed: 1405));
        var response = await _client.PostAsJsonAsync("/api/sweeps", new
        {
            @base = LinearBase(dataset.Id()),
            parameters = new Dictionary<string, object> { ["loss"] = new { values = new object[] { new { name = "mse" }, new { name = "l1" } } } },
            objective = new { metric = "valLoss" },
        }, Api.Json);
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "sweep.incomparable_objective", "objective.metric");
        Assert.Equal(["val.rmse", "val.mae", "val.r2"], problem["metrics"]!.AsArray().Select(m => (string)m!));
        Assert.Contains("val.mae", (string?)problem["detail"]);
    }

    public static TheoryData<string, string, string> BadSweeps() => new()
    {
        { """{"parameters":{"optimizer.learningRate":{"values":[0.1]}}}""", "sweep.missing_base", "base" },
        { """{"base":BASE}""", "sweep.missing_parameters", "parameters" },
        { """{"base":BASE,"parameters":{"optimizer.speed":{"values":[1]}}}""", "sweep.unknown_parameter", "parameters.optimizer.speed" },
        { """{"base":BASE,"parameters":{"batchSize":{"values":[]}}}""", "sweep.empty_values", "parameters.batchSize.values" },
        { """{"base":BASE,"parameters":{"optimizer.learningRate":{"distribution":"uniform","min":0.5,"max":0.1}}}""", "sweep.empty_range", "parameters.optimizer.learningRate.min" },
        { """{"base":BASE,"parameters":{"optimizer.learningRate":{"distribution":"log_uniform","min":0,"max":0.1}}}""", "sweep.invalid_log_range", "parameters.optimizer.learningRate.min" },
        { """{"base":BASE,"parameters":{"optimizer.learningRate":{"distribution":"normal","min":0,"max":0.1}}}""", "sweep.unknown_distribution", "parameters.optimizer.learningRate.distribution" },
        { """{"base":BASE,"parameters":{"batchSize":{"values":[16,0]}}}""", "sweep.invalid_value", "parameters.batchSize.values[1]" },
        { """{"base":BASE,"parameters":{"optimizer.learningRate":{"distribution":"uniform","min":0.01,"max":0.1}},"method":"grid"}""", "sweep.grid_needs_values", "parameters.optimizer.learningRate" },
        { """{"base":BASE,"parameters":{"seed":{"distribution":"int_uniform","min":1,"max":100000}},"method":"grid"}""", "sweep.grid_too_large", "parameters" },
        { """{"base":BASE,"parameters":{"seed":{"values":[1,2]}},"method":"bayes"}""", "sweep.unknown_method", "method" },
        { """{"base":BASE,"parameters":{"seed":{"values":[SEEDS]}}}""", "sweep.too_many_values", "parameters.seed.values" },
        { """{"base":BASE,"parameters":{"seed":{"values":[1,2]}},"objective":{"metric":"val.accuracy"}}""", "sweep.unknown_metric", "objective.metric" },
        { """{"base":BASE,"parameters":{"seed":{"values":[1,2]}},"maxParallel":0}""", "sweep.invalid_max_parallel", "maxParallel" },
        { """{"base":BASE,"parameters":{"seed":{"values":[1,2]}},"maxTrials":0}""", "sweep.invalid_max_trials", "maxTrials" },
        { """{"base":BASE,"parameters":{"seed":{"values":[1,2]}},"earlyTermination":{"type":"hyperband"}}""", "sweep.unknown_early_termination", "earlyTermination.type" },
        { """{"base":BASE,"parameters":{"seed":{"values":[1,2]}},"earlyTermination":{"type":"asha","minEpochs":3}}""", "sweep.invalid_min_epochs", "earlyTermination.minEpochs" },
        { """{"base":{"target":"y","epochs":3},"parameters":{"seed":{"values":[1,2]}}}""", "job.missing_field", "base.datasetId" },
    };

    [Theory]
    [MemberData(nameof(BadSweeps))]
    public async Task A_bad_sweep_is_refused_with_its_code_and_field_and_stores_nothing(string body, string code, string field)
    {
        var dataset = await _client.UploadAsync(TestData.Linear(60, seed: 1406));
        string baseSpec = $$$"""{"datasetId":"{{{dataset.Id()}}}","target":"y","model":{"type":"linear"},"loss":{"name":"mse"},"epochs":3,"validation":{"fraction":0.25}}""";
        int before = (await _client.GetJsonAsync("/api/sweeps?limit=100"))["items"]!.AsArray().Count;
        string seeds = string.Join(",", Enumerable.Range(1, 257)); // Sweeps:MaxValues is 256
        var response = await _client.PostAsync("/api/sweeps",
            new StringContent(body.Replace("BASE", baseSpec).Replace("SEEDS", seeds), Encoding.UTF8, "application/json"));
        await response.AssertProblemAsync(HttpStatusCode.BadRequest, code, field);
        Assert.Equal(before, (await _client.GetJsonAsync("/api/sweeps?limit=100"))["items"]!.AsArray().Count);
    }

    [Fact]
    public async Task Unknown_fields_of_a_sweep_or_of_a_parameter_are_refused()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(60, seed: 1407));
        string baseSpec = $$$"""{"datasetId":"{{{dataset.Id()}}}","target":"y","epochs":3,"validation":{"fraction":0.25}}""";
        foreach (var body in new[]
        {
            "{\"base\":" + baseSpec + ""","parameters":{"seed":{"values":[1]}},"budget":3}""",
            "{\"base\":" + baseSpec + ""","parameters":{"seed":{"values":[1],"step":2}}}""",
        })
        {
            var response = await _client.PostAsync("/api/sweeps", new StringContent(body, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }
    }

    /// <summary>
    /// y = Σ βᵢ·xᵢ + noise over 16 features (β from −2 to 2), with Student-t noise of 2 degrees of freedom (heavy tails) or
    /// Gaussian noise. Sixteen features on 300 rows make the fit's own error a visible part of the validation error, so
    /// the loss that fits the noise shows: in a simulation of 200 such datasets, least absolute deviations beat least
    /// squares on validation MAE in 91% of them, by 9% on average.
    /// </summary>
    private static string NoisyLinear(int rows, int seed, bool heavyTailed)
    {
        const int features = 16;
        var random = new Random(seed);
        var csv = new StringBuilder(string.Join(",", Enumerable.Range(1, features).Select(i => $"x{i}")) + ",y\n");
        for (int i = 0; i < rows; i++)
        {
            double y = 0;
            for (int f = 0; f < features; f++)
            {
                double x = random.NextDouble() * 2 - 1;
                y += (-2 + 4.0 * f / (features - 1)) * x;
                csv.Append(CultureInfo.InvariantCulture, $"{x:R},");
            }
            double z = TestData.Gaussian(random);
            // t(2) = Z / sqrt(χ²₂ / 2), and χ²₂ = −2·ln U.
            y += heavyTailed ? z / Math.Sqrt(-Math.Log(1 - random.NextDouble())) : z;
            csv.Append(CultureInfo.InvariantCulture, $"{y:R}\n");
        }
        return csv.ToString();
    }

    private async Task<JsonNode> LossSweepAsync(bool heavyTailed, string metric)
    {
        var dataset = await _client.UploadAsync(NoisyLinear(300, seed: heavyTailed ? 1408 : 1409, heavyTailed));
        var sweep = await SubmitSweepAsync(new
        {
            @base = new
            {
                datasetId = dataset.Id(), target = "y", model = new { type = "linear" }, optimizer = new { name = "adam", learningRate = 0.05 },
                epochs = 60, batchSize = 16, validation = new { fraction = 0.3 }, seed = 5,
            },
            parameters = new Dictionary<string, object>
            {
                ["loss"] = new { values = new object[] { new { name = "mse" }, new { name = "huber", delta = 1.0 }, new { name = "l1" } } },
                ["optimizer.learningRate"] = new { values = new[] { 0.03, 0.1 } },
            },
            method = "grid",
            maxParallel = 2,
            objective = new { metric },
        });
        Assert.Equal("completed", (string?)(await WaitForSweepAsync(sweep.Id(), 240))["status"]);
        return await _client.GetJsonAsync($"/api/sweeps/{sweep.Id()}/losses");
    }

    [Fact]
    public async Task On_heavy_tailed_noise_the_loss_report_names_a_robust_loss_over_mse_on_val_mae()
    {
        var report = await LossSweepAsync(heavyTailed: true, "val.mae");
        string winner = (string)report["best"]!["loss"]!["name"]!;
        Assert.Contains(winner, new[] { "huber", "l1" });
        var groups = report["groups"]!.AsArray();
        Assert.Equal(3, groups.Count);
        Assert.All(groups, g => Assert.Equal(2, (int)g!["trials"]!));
        double mse = (double)groups.Single(g => (string?)g!["loss"]!["name"] == "mse")!["best"]!;
        Assert.True((double)report["best"]!["objective"]! < mse, report.ToJsonString());
        string verdict = (string)report["verdict"]!;
        Assert.True(verdict.Contains("val.mae") && verdict.Contains("mse") && verdict.Contains(winner), report.ToJsonString());
    }

    [Fact]
    public async Task On_gaussian_noise_mse_does_not_lose_on_val_rmse_by_more_than_the_trial_to_trial_noise()
    {
        var report = await LossSweepAsync(heavyTailed: false, "val.rmse");
        var groups = report["groups"]!.AsArray();
        double mse = (double)groups.Single(g => (string?)g!["loss"]!["name"] == "mse")!["best"]!;
        double best = (double)report["best"]!["objective"]!;
        double noise = (double?)report["numbers"]!["noise"] ?? 0;
        Assert.True(mse - best <= noise, $"mse {mse} vs best {best}, noise {noise}: {report.ToJsonString()}");
    }

    [Fact]
    public async Task The_loss_report_of_a_sweep_that_does_not_vary_the_loss_is_a_conflict()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(60, seed: 1410));
        var sweep = await SubmitSweepAsync(new
        {
            @base = LinearBase(dataset.Id(), epochs: 1),
            parameters = new Dictionary<string, object> { ["seed"] = new { values = new[] { 1 } } },
            method = "grid",
        });
        await (await _client.GetAsync($"/api/sweeps/{sweep.Id()}/losses")).AssertProblemAsync(HttpStatusCode.Conflict, "sweep.loss_not_varied");
        await (await _client.GetAsync($"/api/sweeps/{sweep.Id()}/trials?sort=name")).AssertProblemAsync(HttpStatusCode.BadRequest, "sweep.invalid_sort", "sort");
        await (await _client.GetAsync("/api/sweeps?limit=101")).AssertProblemAsync(HttpStatusCode.BadRequest, "sweep.invalid_limit", "limit");
        await (await _client.GetAsync("/api/sweeps?limit=0")).AssertProblemAsync(HttpStatusCode.BadRequest, "sweep.invalid_limit", "limit");
    }
}
