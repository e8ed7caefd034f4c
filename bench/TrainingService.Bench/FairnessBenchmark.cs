using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using TrainingService.ProcessHarness;

namespace TrainingService.Bench;

/// <summary>
/// <c>fairness</c>: how long tenant B's single job waits behind tenant A's backlog of N jobs on one worker (a real
/// process with <c>Worker:WorkerCount=1</c>), with fair scheduling and, in the same run, without it
/// (<c>Quotas:FairScheduling=false</c>: Hangfire's first-in-first-out order). Also printed: the FIFO wait computed for
/// the fair run, as A's jobs waiting when B submitted times A's mean job time measured in the FIFO run.
/// </summary>
internal static class FairnessBenchmark
{
    /// <summary>B's wait; A's jobs not yet started when B submitted, and those of them that started before B's; A's mean job time.</summary>
    private sealed record Outcome(double WaitMs, int Ahead, int Overtook, double MeanJobMs, int Finished);

    public static async Task<int> RunAsync(string[] args)
    {
        int jobs = CommandLine.Option(args, "--jobs", 100);
        string postgres = BenchService.Postgres();
        Console.WriteLine($"tenant A queues {jobs} jobs, then tenant B submits one; one worker, {Environment.ProcessorCount} cores");
        var fair = await MeasureAsync(postgres, jobs, fairScheduling: true);
        var fifo = await MeasureAsync(postgres, jobs, fairScheduling: false);
        Console.WriteLine("| scheduling | A's jobs waiting when B submitted | of them started before B's | B's wait (submit → running) | A's mean job (start → end, n) |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        Print("fair (default)", fair);
        Print("FIFO (Quotas:FairScheduling=false)", fifo);
        Console.WriteLine($"FIFO computed for the fair run: {fair.Ahead} jobs ahead of B × {fifo.MeanJobMs:F0} ms (A's mean job, FIFO run) = " +
            $"{fair.Ahead * fifo.MeanJobMs / 1000:F1} s, beside B's measured {fair.WaitMs / 1000:F2} s");
        await AtLimitAsync(postgres, CommandLine.Option(args, "--waiting", 50));
        return 0;
    }

    /// <summary>
    /// The cost of waiting at a running-jobs limit: tenant A (limit 1) has one job running and N waiting on two workers for
    /// 25 s with <c>Quotas:DeferredRecheck</c> at 10 s: how many Hangfire deliveries that makes, the service's CPU time (beside
    /// 10 s of the running job alone), and
    /// how soon A's next job starts once the running one ends (woken, or at the recheck).
    /// </summary>
    private static async Task AtLimitAsync(string postgres, int waiting)
    {
        await using var service = await BenchService.StartAsync("all", postgres, new Dictionary<string, string>
        {
            ["Worker:WorkerCount"] = "2",
            ["Quotas:Tenants:limit-a:MaxRunningJobs"] = "1",
            ["Quotas:DeferredRecheck"] = "00:00:10",
        });
        using var a = await KeyAsync(service, "limit-a");
        string data = await a.UploadAsync(BenchApi.Linear(3000, seed: 3));
        string running = await a.SubmitAsync(new
        {
            datasetId = data, target = "y", loss = "mse", optimizer = new { name = "sgd", learningRate = 0.001 }, epochs = 10_000, batchSize = 4,
        });
        await WaitForAsync(a, running, "running");
        await using var database = Npgsql.NpgsqlDataSource.Create(postgres);
        double alone = service.CpuSeconds();
        await Task.Delay(TimeSpan.FromSeconds(10));
        alone = (service.CpuSeconds() - alone) / 10;
        long before = await CountHangfireJobsAsync(database);
        var queued = new List<string>();
        for (int i = 0; i < waiting; i++)
        {
            queued.Add(await a.SubmitAsync(Spec(data, i)));
        }
        double cpu = service.CpuSeconds();
        await Task.Delay(TimeSpan.FromSeconds(25));
        cpu = service.CpuSeconds() - cpu;
        long deliveries = await CountHangfireJobsAsync(database) - before - waiting;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await a.PostAsync($"/api/jobs/{running}/cancel", null);
        await WaitForAsync(a, running, "cancelled", "succeeded");
        double ended = clock.Elapsed.TotalMilliseconds;
        await WaitForAsync(a, queued[0], "running", "succeeded");
        double next = clock.Elapsed.TotalMilliseconds - ended;
        Console.WriteLine($"at a running limit: tenant A (MaxRunningJobs 1) with 1 job running and {waiting} waiting on 2 workers, 25 s, " +
            $"DeferredRecheck 10 s: {deliveries} Hangfire jobs scheduled again ({(double)deliveries / waiting:F1} per waiting job), " +
            $"service CPU {cpu / 25:F2} s/s (with the one running job alone: {alone:F2} s/s); A's next job started {next:F0} ms after the running one ended");
        foreach (string id in queued)
        {
            await a.PostAsync($"/api/jobs/{id}/cancel", null);
        }
    }

    private static async Task<long> CountHangfireJobsAsync(Npgsql.NpgsqlDataSource database)
    {
        await using var command = database.CreateCommand("SELECT count(*) FROM hangfire.job");
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static void Print(string name, Outcome o) =>
        Console.WriteLine($"| {name} | {o.Ahead} | {o.Overtook} | {o.WaitMs / 1000:F2} s | {o.MeanJobMs:F0} ms ({o.Finished}) |");

    private static async Task<Outcome> MeasureAsync(string postgres, int jobs, bool fairScheduling)
    {
        string run = fairScheduling ? "fair" : "fifo";
        await using var service = await BenchService.StartAsync("all", postgres, new Dictionary<string, string>
        {
            ["Worker:WorkerCount"] = "1",
            ["Quotas:FairScheduling"] = fairScheduling ? "true" : "false",
        });
        using var a = await KeyAsync(service, $"{run}-a");
        using var b = await KeyAsync(service, $"{run}-b");
        string dataA = await a.UploadAsync(BenchApi.Linear(3000, seed: 1));
        string dataB = await b.UploadAsync(BenchApi.Linear(3000, seed: 2));
        var backlog = new List<string>();
        for (int i = 0; i < jobs; i++)
        {
            backlog.Add(await a.SubmitAsync(Spec(dataA, i)));
        }
        await WaitForAsync(a, backlog[0], "running", "succeeded");
        string single = await b.SubmitAsync(Spec(dataB, 0));
        var started = await WaitForAsync(b, single, "running", "succeeded");
        double wait = (At(started, "startedAt")!.Value - At(started, "createdAt")!.Value).TotalMilliseconds;

        int ahead = 0, overtook = 0;
        var durations = new List<double>();
        foreach (string id in backlog)
        {
            var job = (await a.GetFromJsonAsync<JsonNode>($"/api/jobs/{id}"))!;
            var startedAt = At(job, "startedAt");
            if (startedAt is null || startedAt > At(started, "createdAt"))
            {
                ahead++;
                overtook += startedAt < At(started, "startedAt") ? 1 : 0;
            }
            if ((string?)job["status"] == "succeeded")
            {
                durations.Add((At(job, "finishedAt")!.Value - startedAt!.Value).TotalMilliseconds);
            }
            await a.PostAsync($"/api/jobs/{id}/cancel", null);
        }
        await WaitForAsync(b, single, "succeeded", "failed", "cancelled");
        return new Outcome(wait, ahead, overtook, durations.Count > 0 ? durations.Average() : double.NaN, durations.Count);
    }

    private static object Spec(string datasetId, int seed) => new
    {
        datasetId, target = "y", loss = "mse", optimizer = new { name = "sgd", learningRate = 0.01 }, epochs = 2, batchSize = 16, seed = seed + 1,
    };

    private static DateTimeOffset? At(JsonNode job, string field) =>
        job[field] is { } at ? DateTimeOffset.Parse((string)at!, CultureInfo.InvariantCulture) : null;

    private static async Task<HttpClient> KeyAsync(ServiceProcess service, string tenant)
    {
        var response = await service.Client.PostAsJsonAsync("/api/keys", new { tenant, role = "member", name = "fairness bench" });
        var key = (string?)(await response.Content.ReadFromJsonAsync<JsonNode>())!["key"] ?? throw new InvalidOperationException(tenant);
        var client = new HttpClient { BaseAddress = service.Client.BaseAddress, Timeout = TimeSpan.FromMinutes(5) };
        client.DefaultRequestHeaders.Authorization = new("Bearer", key);
        return client;
    }

    private static async Task<JsonNode> WaitForAsync(HttpClient client, string job, params string[] statuses)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(20);
        while (DateTime.UtcNow < deadline)
        {
            var state = (await client.GetFromJsonAsync<JsonNode>($"/api/jobs/{job}"))!;
            if (statuses.Contains((string?)state["status"]))
            {
                return state;
            }
            await Task.Delay(20);
        }
        throw new TimeoutException($"job {job} did not reach {string.Join("/", statuses)}");
    }
}
