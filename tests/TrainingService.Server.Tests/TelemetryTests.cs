using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using TrainingService.ProcessHarness;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>OpenTelemetry: a job's trace from submit to its epochs, the Prometheus endpoint and who may read it.</summary>
[Collection(ServiceTests.Name)]
public sealed class TelemetryTests(ServiceFixture service)
{
    private static async Task<string> TrainOneAsync(HttpClient client, int epochs = 4)
    {
        var dataset = await client.UploadAsync(TestData.Linear(200, seed: 81));
        var job = await client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: epochs));
        var done = await client.WaitForEndAsync(job.Id(), 120);
        Assert.Equal("succeeded", (string?)done["status"]);
        return job.Id();
    }

    [Fact]
    public async Task A_jobs_worker_spans_join_the_trace_of_its_submit_and_each_epoch_is_a_child_of_the_attempt()
    {
        var spans = new ConcurrentBag<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "TrainingService",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Add,
        };
        ActivitySource.AddActivityListener(listener);

        string id = await TrainOneAsync(service.Client);
        await Task.Delay(200); // the last epoch's span stops as its write returns

        var submit = spans.Single(s => s.DisplayName == "job submit" && (string?)s.GetTagItem("job.id") == id);
        var attempt = spans.Single(s => s.DisplayName == "job attempt" && (string?)s.GetTagItem("job.id") == id);
        Assert.Equal(submit.TraceId, attempt.TraceId);
        Assert.Equal(submit.SpanId, attempt.ParentSpanId);
        Assert.Equal("succeeded", (string?)attempt.GetTagItem("job.status"));
        var epochs = spans.Where(s => s.DisplayName == "epoch" && s.ParentSpanId == attempt.SpanId).Select(s => (int)s.GetTagItem("epoch")!).Order();
        Assert.Equal([1, 2, 3, 4], epochs);
        Assert.Contains(spans, s => s.DisplayName == "job enqueue" && (string?)s.GetTagItem("job.id") == id && s.TraceId == submit.TraceId);
    }

    [Fact]
    public async Task Owners_read_prometheus_metrics_with_the_services_own_instruments_and_no_per_job_labels()
    {
        string id = await TrainOneAsync(service.Client);
        await Task.Delay(1500); // the job gauges are counted every second (Telemetry:GaugeInterval in the tests)

        var response = await service.Client.GetAsync("/metrics");
        string text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        foreach (string metric in new[]
        {
            "trainingservice_epoch_duration_seconds_bucket", "trainingservice_queue_wait_seconds_count", "trainingservice_training_samples_total",
            "trainingservice_compute_duration_seconds_count{otel_scope_name=\"TrainingService\",phase=\"train\"",
            "trainingservice_jobs{otel_scope_name=\"TrainingService\",state=\"queued\"} 0", "trainingservice_jobs_ended_total",
            "trainingservice_upload_bytes_total", "http_server_request_duration_seconds_bucket",
        })
        {
            Assert.Contains(metric, text);
        }
        Assert.DoesNotContain(id, text);
        Assert.DoesNotContain("tenant", text);
    }

    [Fact]
    public async Task Metrics_on_the_api_port_are_for_owners_only()
    {
        var admin = await Tenants.CreateKeyAsync(service.Client, Tenants.NewName("metrics"), "admin");
        using var anonymous = service.CreateClient(null);
        using var asAdmin = service.CreateClient(admin.Key);

        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/metrics")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await asAdmin.GetAsync("/metrics")).StatusCode);
    }

    [Fact]
    public async Task A_metrics_port_serves_every_process_without_a_key_and_only_there()
    {
        await using var database = await TestDatabase.CreateAsync();
        int port = ServiceProcess.FreePort();
        await using var api = ServiceFixture.StartProcess("api", database.ConnectionString);
        await using var worker = ServiceFixture.StartProcess("worker", database.ConnectionString,
            new Dictionary<string, string> { ["Telemetry:MetricsPort"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        await Task.WhenAll(api.WaitReadyAsync(TimeSpan.FromSeconds(90)), worker.WaitReadyAsync(TimeSpan.FromSeconds(90)));

        string id;
        try
        {
            id = await TrainOneAsync(api.Client, epochs: 3);
        }
        catch (Exception e) when (e is Xunit.Sdk.XunitException)
        {
            // Once in a full run the job waited for a worker this process never became: say what the worker printed.
            throw new Xunit.Sdk.XunitException($"{e.Message}\nworker (exited: {worker.HasExited}) printed:\n{worker.Output[^Math.Min(4000, worker.Output.Length)..]}");
        }
        using var scraper = new HttpClient();
        string text = await scraper.GetStringAsync($"http://127.0.0.1:{port}/metrics");

        Assert.Contains("trainingservice_epoch_duration_seconds_count", text);
        Assert.Equal(HttpStatusCode.NotFound, (await scraper.GetAsync($"http://127.0.0.1:{worker.Port}/metrics")).StatusCode);
        // The worker's log lines about the job carry its id and the trace id of its submit.
        string ended = worker.Output.Split('\n').Single(line => line.Contains($"Job {id} ended", StringComparison.Ordinal));
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(ended, $"TraceId:[0-9a-f]{{32}}.*JobId:{id}"), ended);
    }
}
