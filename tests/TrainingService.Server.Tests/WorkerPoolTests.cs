using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using TrainingService.ProcessHarness;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>
/// Worker pools: a spec's compute.device routes its job to GPU workers (cuda), CPU workers (cpu) or either (any). Tested
/// without a GPU: a worker process claims the cuda pool (Worker:Pool=Cuda) while it computes on the CPU accelerator.
/// </summary>
[Collection(ServiceTests.Name)]
public sealed class WorkerPoolTests(ServiceFixture service)
{
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(90);

    private static object Spec(string datasetId, string? device, int epochs = 3) => new
    {
        datasetId, target = "y", loss = new { name = "mse" }, optimizer = new { name = "sgd", learningRate = 0.05 }, epochs, batchSize = 32,
        seed = 1, compute = device is null ? null : new { device },
    };

    private static JsonNode Started(JsonNode job) => job["transitions"]!.AsArray().First(t => (string?)t!["status"] == "running")!;

    [Fact]
    public async Task A_job_asks_for_any_device_by_default_and_an_unknown_device_is_refused()
    {
        var dataset = await service.Client.UploadAsync(TestData.Linear(100, seed: 71));

        var job = await service.Client.SubmitAsync(Spec(dataset.Id(), device: null));
        var refused = await service.Client.PostAsJsonAsync("/api/jobs", Spec(dataset.Id(), "tpu"), Api.Json);

        Assert.Equal("any", (string?)job["spec"]!["compute"]!["device"]);
        await refused.AssertProblemAsync(HttpStatusCode.BadRequest, "job.invalid_compute_device", "compute.device");
        var done = await service.Client.WaitForEndAsync(job.Id());
        Assert.Equal("succeeded", (string?)done["status"]);
        var started = Started(done);
        Assert.Contains(":", (string?)started["worker"]);
        Assert.Contains("CPU accelerator", (string?)started["device"]);
        Assert.NotNull((string?)started["attempt"]);
    }

    [Fact]
    public async Task A_cuda_job_without_a_gpu_worker_stays_queued_and_says_what_it_waits_for()
    {
        var dataset = await service.Client.UploadAsync(TestData.Linear(100, seed: 72));

        var job = await service.Client.SubmitAsync(Spec(dataset.Id(), "cuda"));
        await Task.Delay(TimeSpan.FromSeconds(3)); // the in-process worker (CPU pool) polls every second
        var response = await service.Client.GetAsync($"/api/jobs/{job.Id()}");
        var waiting = await Api.ReadAsync(response, HttpStatusCode.OK);

        Assert.Equal("queued", (string?)waiting["status"]);
        Assert.Equal("cuda", (string?)waiting["waiting"]!["device"]);
        Assert.Contains("waiting for a cuda worker", (string?)waiting["waiting"]!["message"]);
        Assert.True((double)waiting["waiting"]!["seconds"]! >= 2.5);
        Assert.EndsWith("-w\"", response.Headers.ETag!.Tag);
        var cpu = await service.Client.SubmitAsync(Spec(dataset.Id(), "cpu"));
        Assert.Equal("succeeded", (string?)(await service.Client.WaitForEndAsync(cpu.Id()))["status"]);
        Assert.Null((await service.Client.GetJsonAsync($"/api/jobs/{cpu.Id()}"))["waiting"]);
        await service.Client.PostAsync($"/api/jobs/{job.Id()}/cancel", null);
        Assert.Equal("cancelled", (string?)(await service.Client.WaitForEndAsync(job.Id()))["status"]);
    }

    [Fact]
    public async Task Each_pool_runs_only_its_own_jobs_and_the_shared_ones()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var api = ServiceFixture.StartProcess("api", database.ConnectionString);
        await api.WaitReadyAsync(Startup);
        var dataset = await api.Client.UploadAsync(TestData.Linear(200, seed: 73));
        await using var gpu = ServiceFixture.StartProcess("worker", database.ConnectionString, new Dictionary<string, string> { ["Worker:Pool"] = "Cuda" });

        var cpuJob = await api.Client.SubmitAsync(Spec(dataset.Id(), "cpu"));
        var cudaJob = await api.Client.SubmitAsync(Spec(dataset.Id(), "cuda"));
        var cuda = await api.Client.WaitForEndAsync(cudaJob.Id(), 120);
        var anyOnGpu = await api.Client.WaitForEndAsync((await api.Client.SubmitAsync(Spec(dataset.Id(), "any"))).Id(), 120);

        var stillQueued = await api.Client.GetJsonAsync($"/api/jobs/{cpuJob.Id()}");
        Assert.Equal("queued", (string?)stillQueued["status"]);
        Assert.Contains("waiting for a cpu worker", (string?)stillQueued["waiting"]!["message"]);
        Assert.Equal($":{gpu.Pid}", ((string?)Started(cuda)["worker"])![^($":{gpu.Pid}".Length)..]);
        Assert.EndsWith($":{gpu.Pid}", (string?)Started(anyOnGpu)["worker"]);

        await using var cpu = ServiceFixture.StartProcess("worker", database.ConnectionString, new Dictionary<string, string> { ["Worker:Pool"] = "Cpu" });
        var ran = await api.Client.WaitForEndAsync(cpuJob.Id(), 120);
        Assert.Equal("succeeded", (string?)ran["status"]);
        Assert.EndsWith($":{cpu.Pid}", (string?)Started(ran)["worker"]);
        Assert.Equal("succeeded", (string?)cuda["status"]);
    }
}
