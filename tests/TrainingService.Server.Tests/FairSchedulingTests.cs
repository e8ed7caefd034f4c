using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using TrainingService.ProcessHarness;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>
/// Fair scheduling across tenants with the real executable, each test on its own database: a tenant's single job is not
/// starved by another's backlog, and a tenant at its running-jobs limit waits while others run.
/// </summary>
[Collection(ServiceTests.Name)]
public sealed class FairSchedulingTests
{
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(90);

    private static async Task<HttpClient> KeyAsync(ServiceProcess service, string tenant)
    {
        var response = await service.Client.PostAsJsonAsync("/api/keys", new { tenant, role = "member", name = $"{tenant} key" });
        var created = await Api.ReadAsync(response, HttpStatusCode.Created);
        var client = new HttpClient { BaseAddress = service.Client.BaseAddress, Timeout = TimeSpan.FromMinutes(2) };
        client.DefaultRequestHeaders.Authorization = new("Bearer", (string)created["key"]!);
        return client;
    }

    /// <summary>A job that runs until cancelled (20,000 rows in batches of 4, 500 epochs).</summary>
    private static object LongSpec(string datasetId) => new
    {
        datasetId, target = "y", loss = "mse", optimizer = new { name = "sgd", learningRate = 0.001 }, epochs = 500, batchSize = 4, seed = 5,
    };

    private static DateTimeOffset? StartedAt(JsonNode job) => job["startedAt"] is { } at ? DateTimeOffset.Parse((string)at!, System.Globalization.CultureInfo.InvariantCulture) : null;

    [Fact]
    public async Task With_one_worker_a_tenants_single_job_starts_next_ahead_of_another_tenants_backlog_of_fifty()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var service = ServiceFixture.StartProcess("all", database.ConnectionString, new Dictionary<string, string> { ["Worker:WorkerCount"] = "1" });
        await service.WaitReadyAsync(Startup);
        using var a = await KeyAsync(service, "team-a");
        using var b = await KeyAsync(service, "team-b");
        string big = (await a.UploadAsync(TestData.Linear(20_000, seed: 1234))).Id();
        string small = (await a.UploadAsync(TestData.Linear(200, seed: 1))).Id();
        var running = await a.SubmitAsync(LongSpec(big));
        await a.WaitForAsync(running.Id(), TimeSpan.FromSeconds(60), "running");
        var backlog = new List<string>();
        for (int i = 0; i < 50 - 1; i++)
        {
            backlog.Add((await a.SubmitAsync(TestData.LinearSpec(small, epochs: 2, seed: i + 1))).Id());
        }
        string theirs = (await b.UploadAsync(TestData.Linear(200, seed: 2))).Id();
        var single = await b.SubmitAsync(TestData.LinearSpec(theirs, epochs: 2));

        await a.PostAsync($"/api/jobs/{running.Id()}/cancel", null); // the one worker comes free
        var started = StartedAt(await b.WaitForAsync(single.Id(), TimeSpan.FromSeconds(120), "running", "succeeded"))!.Value;

        foreach (string id in backlog)
        {
            var job = await a.GetJsonAsync($"/api/jobs/{id}");
            Assert.True(StartedAt(job) is not { } at || at > started, $"Tenant A's job {id} started at {StartedAt(job):O}, before B's single job ({started:O})");
            await a.PostAsync($"/api/jobs/{id}/cancel", null);
        }
    }

    [Fact]
    public async Task A_tenant_at_its_running_limit_waits_while_others_run_and_its_next_job_starts_when_one_ends()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var service = ServiceFixture.StartProcess("all", database.ConnectionString, new Dictionary<string, string>
        {
            ["Worker:WorkerCount"] = "2",
            ["Quotas:Tenants:team-a:MaxRunningJobs"] = "1",
            ["Quotas:Tenants:team-a:MaxQueuedJobs"] = "2",
            ["Quotas:DeferredRecheck"] = "00:00:30",
        });
        await service.WaitReadyAsync(Startup);
        using var a = await KeyAsync(service, "team-a");
        using var b = await KeyAsync(service, "team-b");
        string data = (await a.UploadAsync(TestData.Linear(20_000, seed: 1234))).Id();
        var first = await a.SubmitAsync(LongSpec(data));
        await a.WaitForAsync(first.Id(), TimeSpan.FromSeconds(60), "running");
        var waiting = new[] { await a.SubmitAsync(LongSpec(data)), await a.SubmitAsync(LongSpec(data)) };

        var full = await a.PostAsJsonAsync("/api/jobs", LongSpec(data), Api.Json); // a third queued job is past team-a's quota
        await full.AssertProblemAsync(HttpStatusCode.TooManyRequests, "quota.queued_jobs");
        Assert.Equal("30", full.Headers.GetValues("Retry-After").Single());

        // The second worker is free, but team-a is at its limit: team-b's job runs on it, team-a's wait.
        string theirs = (await b.UploadAsync(TestData.Linear(200, seed: 2))).Id();
        var other = await b.SubmitAsync(TestData.LinearSpec(theirs, epochs: 2));
        Assert.Equal("succeeded", (string?)(await b.WaitForEndAsync(other.Id(), 60))["status"]);
        await Task.Delay(TimeSpan.FromSeconds(2));
        foreach (var job in waiting)
        {
            Assert.Equal("queued", (string?)(await a.GetJsonAsync($"/api/jobs/{job.Id()}"))["status"]);
        }

        // When team-a's running job ends, its next starts at once, not at the 30 s recheck.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await LongJobs.EndAsync(a, first.Id());
        await a.WaitForAsync(waiting[0].Id(), TimeSpan.FromSeconds(10), "running");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        Assert.Equal("queued", (string?)(await a.GetJsonAsync($"/api/jobs/{waiting[1].Id()}"))["status"]);

        // No spinning: each waiting job was put back on the schedule a few times at most, not once per poll.
        long hangfireJobs = await database.ScalarAsync<long>("SELECT count(*) FROM hangfire.job");
        Assert.InRange(hangfireJobs, 4, 4 + 6);
        foreach (var job in waiting)
        {
            await LongJobs.EndAsync(a, job.Id());
        }
    }
}
