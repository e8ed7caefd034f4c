using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using TrainingService.ProcessHarness;

namespace TrainingService.Bench;

/// <summary>
/// <c>sweep</c>: one service process (API and two workers) on a fresh database. First a 27-trial random sweep of an MLP
/// (learning rate, width, batch size) with ASHA against the same sweep (same seed, so the same 27 trials) without early
/// termination: total epochs trained, wall time and best objective, ASHA's as a share of the full sweep's. Then TPE against
/// random on a smaller sweep over five seeds: how many trials each needs before its best-so-far is within 2% of the best
/// value any run found.
/// </summary>
internal static class SweepBenchmark
{
    private sealed record Run(string Name, int Trials, int Epochs, double Seconds, double Best, IReadOnlyList<double> Objectives);

    public static async Task<int> RunAsync(string[] args)
    {
        int trials = CommandLine.Option(args, "--trials", 27), epochs = CommandLine.Option(args, "--epochs", 27);
        int seeds = CommandLine.Option(args, "--seeds", 5), searchTrials = CommandLine.Option(args, "--search-trials", 50);
        await using var service = await BenchService.StartAsync("all", BenchService.Postgres(), new Dictionary<string, string>
        {
            ["Worker:WorkerCount"] = "2", ["Sweeps:ReconcileInterval"] = "00:00:00.500",
        });
        string dataset = await service.Client.UploadAsync(Wavy(2000, seed: 5));
        Console.WriteLine($"{Environment.ProcessorCount} cores; one process, 2 workers; dataset: y = sin(3·x1) + x2² + 0.1·noise, 2000 rows, 20% validation");

        Console.WriteLine($"\nASHA (minEpochs 1, reductionFactor 3) against no early termination: {trials} random trials of up to {epochs} epochs, maxParallel 2, objective val.rmse");
        var full = await SweepAsync(service, "no early termination", ShapeSweep(dataset, trials, epochs, asha: false));
        var asha = await SweepAsync(service, "ASHA", ShapeSweep(dataset, trials, epochs, asha: true));
        Console.WriteLine($"{"",-22} {"epochs",8} {"wall s",8} {"best val.rmse",14}");
        foreach (var run in new[] { full, asha })
        {
            Console.WriteLine($"{run.Name,-22} {run.Epochs,8} {run.Seconds,8:F1} {run.Best,14:F5}");
        }
        double epochShare = (double)asha.Epochs / full.Epochs, bestGap = (asha.Best - full.Best) / full.Best;
        Console.WriteLine($"ASHA / full: epochs {epochShare:P0} (goal ≤ 40%), wall time {asha.Seconds / full.Seconds:P0}, " +
            $"best objective {bestGap:+0.0%;-0.0%;0%} (goal within 2%)");

        Console.WriteLine($"\nTPE against random: {searchTrials} trials of 8 epochs (the learning rate, 1e-5 to 1, log-uniform), maxParallel 1, seeds 1–{seeds}");
        var runs = new List<(string Method, int Seed, Run Run)>();
        for (int seed = 1; seed <= seeds; seed++)
        {
            foreach (var method in new[] { "random", "tpe" })
            {
                runs.Add((method, seed, await SweepAsync(service, $"{method} seed {seed}", SearchSweep(dataset, method, seed, searchTrials))));
            }
        }
        double target = runs.Min(r => r.Run.Best) * 1.02;
        Console.WriteLine($"best val.rmse any run found: {target / 1.02:F5}; trials until within 2% of it (— never):");
        foreach (var method in new[] { "random", "tpe" })
        {
            var needed = runs.Where(r => r.Method == method).Select(r => TrialsToReach(r.Run.Objectives, target)).ToList();
            string each = string.Join(" ", needed.Select(n => n?.ToString(CultureInfo.InvariantCulture) ?? "—"));
            // A run that never got there counts as all its trials plus one: a floor on what it would have needed.
            double mean = needed.Average(n => n ?? searchTrials + 1);
            string bests = string.Join(" ", runs.Where(r => r.Method == method).Select(r => r.Run.Best.ToString("F5", CultureInfo.InvariantCulture)));
            double meanBest = runs.Where(r => r.Method == method).Average(r => r.Run.Best);
            Console.WriteLine($"{method,-8} per seed: {each,-20} mean {mean:F1}{(needed.Any(n => n is null) ? " (a never counts as " + (searchTrials + 1) + ")" : "")}" +
                $"; best per seed {bests} (mean {meanBest:F5})");
        }
        return 0;
    }

    private static object ShapeSweep(string dataset, int trials, int epochs, bool asha) => new
    {
        @base = Base(dataset, epochs),
        parameters = new Dictionary<string, object>
        {
            ["optimizer.learningRate"] = new { distribution = "log_uniform", min = 1e-4, max = 0.3 },
            ["model.hiddenLayers"] = new { values = new[] { new[] { 8 }, new[] { 32 }, new[] { 32, 16 } } },
            ["batchSize"] = new { values = new[] { 16, 64 } },
        },
        method = "random",
        maxTrials = trials,
        maxParallel = 2,
        objective = new { metric = "val.rmse" },
        earlyTermination = asha ? new { type = "asha", minEpochs = 1, reductionFactor = 3 } : null,
        seed = 11,
    };

    /// <summary>
    /// One continuous parameter over five decades, on a fixed network: a landscape smooth enough that "within 2% of the
    /// best" is reachable by search rather than by luck, so the count measures how fast each method homes in.
    /// </summary>
    private static object SearchSweep(string dataset, string method, int seed, int trials) => new
    {
        @base = Base(dataset, 8),
        parameters = new Dictionary<string, object>
        {
            ["optimizer.learningRate"] = new { distribution = "log_uniform", min = 1e-5, max = 1.0 },
        },
        method,
        maxTrials = trials,
        maxParallel = 1,
        objective = new { metric = "val.rmse" },
        seed,
    };

    private static object Base(string dataset, int epochs) => new
    {
        datasetId = dataset, target = "y", model = new { type = "mlp", hiddenLayers = new[] { 16 } }, loss = new { name = "mse" },
        optimizer = new { name = "adam", learningRate = 0.01 }, epochs, batchSize = 32, validation = new { fraction = 0.2 }, seed = 3,
    };

    /// <summary>Submits a sweep, waits for its end, and reads its trials.</summary>
    private static async Task<Run> SweepAsync(ServiceProcess service, string name, object sweep)
    {
        var response = await service.Client.PostAsJsonAsync("/api/sweeps", sweep);
        var body = (await response.Content.ReadFromJsonAsync<JsonNode>())!;
        string id = (string?)body["id"] ?? throw new InvalidOperationException(body.ToJsonString());
        JsonNode state;
        do
        {
            await Task.Delay(250);
            state = (await service.Client.GetFromJsonAsync<JsonNode>($"/api/sweeps/{id}"))!;
        }
        while ((string?)state["status"] == "running");
        var trials = (await service.Client.GetFromJsonAsync<JsonNode>($"/api/sweeps/{id}/trials?sort=trial"))!["items"]!.AsArray();
        double seconds = ((DateTimeOffset)state["finishedAt"]! - (DateTimeOffset)state["createdAt"]!).TotalSeconds;
        var objectives = trials.Select(t => (double?)t!["objective"] ?? double.PositiveInfinity).ToList();
        Console.Error.WriteLine($"  {name}: {trials.Count} trials, {(string?)state["stopReason"]}, {seconds:F1} s");
        return new Run(name, trials.Count, trials.Sum(t => (int)t!["epochsCompleted"]!), seconds, objectives.Min(), objectives);
    }

    /// <summary>The 1-based count of trials after which the best so far is at most <paramref name="target"/>; null if never.</summary>
    private static int? TrialsToReach(IReadOnlyList<double> objectives, double target)
    {
        double best = double.PositiveInfinity;
        for (int i = 0; i < objectives.Count; i++)
        {
            best = Math.Min(best, objectives[i]);
            if (best <= target)
            {
                return i + 1;
            }
        }
        return null;
    }

    /// <summary>y = sin(3·x1) + x2² + 0.1·noise, x uniform in [−1, 1]: a curve a linear model cannot fit and a small MLP can.</summary>
    private static string Wavy(int rows, int seed)
    {
        var random = new Random(seed);
        var csv = new StringBuilder("x1,x2,y\n");
        for (int r = 0; r < rows; r++)
        {
            double x1 = random.NextDouble() * 2 - 1, x2 = random.NextDouble() * 2 - 1, noise = random.NextDouble() - 0.5;
            csv.Append(CultureInfo.InvariantCulture, $"{x1:F6},{x2:F6},{Math.Sin(3 * x1) + x2 * x2 + 0.1 * noise:F6}\n");
        }
        return csv.ToString();
    }
}
