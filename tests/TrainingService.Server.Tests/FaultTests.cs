using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using TrainingService.ProcessHarness;
using TrainingService.Server.Tests.Infrastructure;
using Xunit.Abstractions;

namespace TrainingService.Server.Tests;

/// <summary>
/// Faults with real processes: a worker killed with SIGKILL mid-job, with Hangfire's invisibility timeout at its
/// production default (5 minutes), so only the lease can find the dead worker in time. (A PostgreSQL restart needs a
/// server the test may restart: <c>scripts/bench.sh faults</c> starts its own and measures that.)
/// </summary>
[Collection(ServiceTests.Name)]
public sealed class FaultTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(90);

    private static readonly Dictionary<string, string> Production = new()
    {
        ["Worker:InvisibilityTimeout"] = "00:05:00",
        ["Worker:RecoveryDelay"] = "00:00:30",
    };

    [Fact]
    public async Task A_killed_workers_job_resumes_on_another_worker_within_15_seconds_and_readiness_drops_it()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var api = ServiceFixture.StartProcess("api", database.ConnectionString, Production);
        await api.WaitReadyAsync(Startup);
        var dataset = await api.Client.UploadAsync(TestData.Linear(2000, seed: 61));
        var job = (await api.Client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 2000, batchSize: 8, learningRate: 0.001))).Id();
        await using var one = ServiceFixture.StartProcess("worker", database.ConnectionString, Production);
        await using var two = ServiceFixture.StartProcess("worker", database.ConnectionString, Production);
        await Task.WhenAll(one.WaitReadyAsync(Startup), two.WaitReadyAsync(Startup));
        int before = await WaitForEpochAsync(api.Client, job, 3);
        Assert.Equal(2, await LiveWorkersAsync(api.Client));
        var owner = await OwnerAsync(api.Client, job) == one.Pid ? one : two;

        owner.Kill();
        var clock = Stopwatch.StartNew();
        await owner.DisposeAsync();
        int killedAt = (int)(await api.Client.GetJsonAsync($"/api/jobs/{job}"))["epochsCompleted"]!;
        var dropped = WaitForLiveWorkersAsync(api.Client, 1, clock);
        await WaitForEpochAsync(api.Client, job, killedAt + 1, TimeSpan.FromSeconds(60));
        var resumed = clock.Elapsed;
        var readiness = await dropped;
        output.WriteLine($"killed after epoch {killedAt} (seen at {before}); next epoch stored {resumed.TotalSeconds:F1} s after the kill; " +
            $"readiness counted one worker {readiness.TotalSeconds:F1} s after it");

        Assert.True(resumed < TimeSpan.FromSeconds(15), $"resumed {resumed.TotalSeconds:F1} s after the kill");
        Assert.True(readiness < TimeSpan.FromSeconds(10), $"readiness dropped the dead worker after {readiness.TotalSeconds:F1} s");
        await api.Client.PostAsync($"/api/jobs/{job}/cancel", null);
        var ended = await api.Client.WaitForEndAsync(job, 60);
        Assert.Equal("cancelled", (string?)ended["status"]);
        Assert.Contains(ended["transitions"]!.AsArray(), t => ((string?)t!["note"])?.StartsWith($"worker ", StringComparison.Ordinal) == true
            && ((string?)t["note"])!.EndsWith($"lost after epoch {killedAt}; resumed", StringComparison.Ordinal));
        var epochs = (await api.Client.GetJsonAsync($"/api/jobs/{job}/history?limit=500"))["epochs"]!.AsArray().Select(e => (int)e!["epoch"]!).ToList();
        Assert.Equal(Enumerable.Range(1, (int)ended["epochsCompleted"]!), epochs);
    }

    [Fact]
    public async Task A_worker_process_serves_health_endpoints_only()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var worker = ServiceFixture.StartProcess("worker", database.ConnectionString);
        await worker.WaitReadyAsync(Startup);

        Assert.Equal(HttpStatusCode.OK, (await worker.Client.GetAsync("/health/live")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await worker.Client.GetAsync("/health/ready")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await worker.Client.GetAsync("/swagger/v1/swagger.json")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await worker.Client.GetAsync("/swagger/index.html")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await worker.Client.GetAsync("/api/jobs")).StatusCode);
    }

    /// <summary>The process id of the worker that started the job, from its transition note (<c>started by worker host:pid</c>).</summary>
    private static async Task<int> OwnerAsync(HttpClient client, string jobId)
    {
        var transitions = (await client.GetJsonAsync($"/api/jobs/{jobId}"))["transitions"]!.AsArray();
        string note = transitions.Select(t => (string?)t!["note"]).Last(n => n?.StartsWith("started by worker ", StringComparison.Ordinal) == true)!;
        return int.Parse(note[(note.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task<int> LiveWorkersAsync(HttpClient client) =>
        (int)(await client.GetJsonAsync("/health/ready"))["checks"]!["hangfire"]!["data"]!["liveWorkers"]!;

    private static async Task<TimeSpan> WaitForLiveWorkersAsync(HttpClient client, int count, Stopwatch clock)
    {
        while (await LiveWorkersAsync(client) != count)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "readiness still counts the dead worker");
            await Task.Delay(100);
        }
        return clock.Elapsed;
    }

    private static async Task<int> WaitForEpochAsync(HttpClient client, string jobId, int epoch, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(180));
        while (true)
        {
            int done = (int)(await client.GetJsonAsync($"/api/jobs/{jobId}"))["epochsCompleted"]!;
            if (done >= epoch)
            {
                return done;
            }
            Assert.True(DateTime.UtcNow < deadline, $"job {jobId} did not reach epoch {epoch}");
            await Task.Delay(50);
        }
    }
}
