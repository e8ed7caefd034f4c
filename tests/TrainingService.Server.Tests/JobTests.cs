using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>Job lifecycle: states and transitions, cancel, idempotent submission, retry, listing, timeouts.</summary>
[Collection(ServiceTests.Name)]
public sealed class JobTests(ServiceFixture service)
{
    private readonly HttpClient _client = service.Client;

    private static IEnumerable<string> Statuses(JsonNode job) => job["transitions"]!.AsArray().Select(t => (string)t!["status"]!);

    [Fact]
    public async Task A_finished_job_lists_every_transition_with_its_time_and_its_summary()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(300, seed: 21));
        var job = await _client.SubmitAsync(new
        {
            datasetId = dataset.Id(), target = "y", loss = "mse", epochs = 4, validation = new { fraction = 0.25 },
            optimizer = new { name = "sgd", learningRate = 0.05 },
        });

        var done = await _client.WaitForEndAsync(job.Id());

        Assert.Equal(["queued", "running", "succeeded"], Statuses(done));
        Assert.All(done["transitions"]!.AsArray(), t => Assert.NotNull((string?)t!["at"]));
        Assert.Equal(4, (int)done["progress"]!["epoch"]!);
        Assert.Equal(4, (int)done["progress"]!["totalEpochs"]!);
        var history = await _client.GetJsonAsync($"/api/jobs/{job.Id()}/history");
        var last = history["epochs"]!.AsArray()[^1]!;
        Assert.Equal((double)last["trainLoss"]!, (double)done["summary"]!["lastTrainLoss"]!, 12);
        Assert.Equal((double)last["valLoss"]!, (double)done["summary"]!["lastValLoss"]!, 12);
        double best = history["epochs"]!.AsArray().Min(e => (double)e!["valLoss"]!);
        Assert.Equal(best, (double)done["summary"]!["bestValLoss"]!, 12);
    }

    [Fact]
    public async Task A_queued_job_is_cancelled_at_once_and_never_runs()
    {
        var blocker = await LongJobs.StartAsync(_client);
        try
        {
            await _client.WaitForAsync(blocker.Id(), TimeSpan.FromSeconds(30), "running");
            var queued = await _client.SubmitAsync(TestData.LinearSpec(await LongJobs.DatasetAsync(_client), epochs: 1));

            var response = await _client.PostAsync($"/api/jobs/{queued.Id()}/cancel", null);
            var cancelled = await Api.ReadAsync(response, HttpStatusCode.Accepted);

            Assert.Equal("cancelled", (string?)cancelled["status"]);
            Assert.Equal("cancelled", (string?)cancelled["stopReason"]);
            Assert.Equal(["queued", "cancelled"], Statuses(cancelled));
            await LongJobs.EndAsync(_client, blocker.Id());
            var after = await _client.GetJsonAsync($"/api/jobs/{queued.Id()}");
            Assert.Equal(["queued", "cancelled"], Statuses(after));
            Assert.Null(after["startedAt"]);
        }
        finally
        {
            await LongJobs.EndAsync(_client, blocker.Id());
        }
    }

    [Fact]
    public async Task A_running_job_stops_at_the_next_batch_and_keeps_its_epochs()
    {
        var job = await LongJobs.StartAsync(_client);
        try
        {
            await _client.WaitForAsync(job.Id(), TimeSpan.FromSeconds(30), "running");
            await WaitForEpochsAsync(job.Id(), 1);

            var started = DateTime.UtcNow;
            var cancelling = await Api.ReadAsync(await _client.PostAsync($"/api/jobs/{job.Id()}/cancel", null), HttpStatusCode.Accepted);
            var done = await _client.WaitForEndAsync(job.Id());
            var took = DateTime.UtcNow - started;

            Assert.Equal("cancelling", (string?)cancelling["status"]);
            Assert.Equal("cancelled", (string?)done["status"]);
            Assert.Equal("cancelled", (string?)done["stopReason"]);
            Assert.Equal(["queued", "running", "cancelling", "cancelled"], Statuses(done));
            int epochs = (int)done["epochsCompleted"]!;
            Assert.InRange(epochs, 1, 499);
            var history = await _client.GetJsonAsync($"/api/jobs/{job.Id()}/history");
            Assert.Equal(epochs, history["epochs"]!.AsArray().Count);
            // An epoch is ~5,000 batches: stopping took a batch, not the rest of an epoch (generous bound for a noisy machine).
            Assert.True(took < TimeSpan.FromSeconds(3), $"cancel took {took}");
        }
        finally
        {
            await LongJobs.EndAsync(_client, job.Id());
        }
    }

    [Fact]
    public async Task Cancelling_a_finished_job_is_a_conflict()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(40, seed: 22));
        var job = await _client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 1));
        await _client.WaitForEndAsync(job.Id());

        await (await _client.PostAsync($"/api/jobs/{job.Id()}/cancel", null)).AssertProblemAsync(HttpStatusCode.Conflict, "job.not_cancellable");
        await (await _client.PostAsync($"/api/jobs/{Guid.NewGuid()}/cancel", null)).AssertProblemAsync(HttpStatusCode.NotFound, "job.not_found");
    }

    [Fact]
    public async Task A_job_past_its_max_runtime_is_cancelled_with_stop_reason_timeout()
    {
        var job = await LongJobs.StartAsync(_client, maxRuntime: "00:00:02");
        try
        {
            var done = await _client.WaitForEndAsync(job.Id());

            Assert.Equal("cancelled", (string?)done["status"]);
            Assert.Equal("timeout", (string?)done["stopReason"]);
        }
        finally
        {
            await LongJobs.EndAsync(_client, job.Id());
        }
    }

    [Fact]
    public async Task The_same_idempotency_key_and_body_returns_the_first_job()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(40, seed: 23));
        var spec = TestData.LinearSpec(dataset.Id(), epochs: 1);
        string key = Guid.NewGuid().ToString();

        var first = await Api.ReadAsync(await PostWithKey(spec, key), HttpStatusCode.Accepted);
        var second = await Api.ReadAsync(await PostWithKey(spec, key), HttpStatusCode.Accepted);

        Assert.Equal(first.Id(), second.Id());
    }

    [Fact]
    public async Task The_same_idempotency_key_with_another_body_is_refused()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(40, seed: 24));
        string key = Guid.NewGuid().ToString();
        await Api.ReadAsync(await PostWithKey(TestData.LinearSpec(dataset.Id(), epochs: 1), key), HttpStatusCode.Accepted);

        var response = await PostWithKey(TestData.LinearSpec(dataset.Id(), epochs: 2), key);

        await response.AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "job.idempotency_key_reused", "Idempotency-Key");
    }

    [Fact]
    public async Task An_idempotency_key_longer_than_255_characters_is_refused()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(40, seed: 29));
        long before = await service.Database.ScalarAsync<long>("SELECT count(*) FROM jobs");

        var response = await PostWithKey(TestData.LinearSpec(dataset.Id(), epochs: 1), new string('k', 256));

        await response.AssertProblemAsync(HttpStatusCode.BadRequest, "job.invalid_idempotency_key", "Idempotency-Key");
        Assert.Equal(before, await service.Database.ScalarAsync<long>("SELECT count(*) FROM jobs"));
    }

    [Fact]
    public async Task Twenty_concurrent_identical_submissions_create_one_job()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(40, seed: 25));
        var spec = TestData.LinearSpec(dataset.Id(), epochs: 1);
        string key = Guid.NewGuid().ToString();
        long before = await service.Database.ScalarAsync<long>("SELECT count(*) FROM jobs");

        var responses = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => PostWithKey(spec, key)));

        var ids = new HashSet<string>();
        foreach (var response in responses)
        {
            ids.Add((await Api.ReadAsync(response, HttpStatusCode.Accepted)).Id());
        }
        Assert.Single(ids);
        Assert.Equal(before + 1, await service.Database.ScalarAsync<long>("SELECT count(*) FROM jobs"));
    }

    [Fact]
    public async Task Retry_creates_a_new_job_with_the_same_spec_linked_to_the_original()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(40, seed: 26));
        var original = await _client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 2, seed: 99));
        await _client.WaitForEndAsync(original.Id());

        var retry = await Api.ReadAsync(await _client.PostAsync($"/api/jobs/{original.Id()}/retry", null), HttpStatusCode.Accepted);
        var done = await _client.WaitForEndAsync(retry.Id());

        Assert.NotEqual(original.Id(), retry.Id());
        Assert.Equal(original.Id(), (string?)retry["retryOf"]);
        Assert.Equal(99, (int)retry["seed"]!);
        Assert.Equal("succeeded", (string?)done["status"]);
        await (await _client.PostAsync($"/api/jobs/{Guid.NewGuid()}/retry", null)).AssertProblemAsync(HttpStatusCode.NotFound, "job.not_found");
    }

    [Fact]
    public async Task The_job_list_is_newest_first_filtered_and_its_cursor_is_stable_under_inserts()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(20, seed: 27));
        var created = new List<string>();
        for (int i = 0; i < 5; i++)
        {
            created.Add((await _client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 1, seed: i))).Id());
        }
        string filter = $"datasetId={dataset.Id()}";

        var first = await _client.GetJsonAsync($"/api/jobs?{filter}&limit=2");
        for (int i = 0; i < 2; i++)
        {
            // Newer than every job paged so far: must not appear on the following pages.
            created.Add((await _client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 1, seed: 100 + i))).Id());
        }
        var second = await _client.GetJsonAsync($"/api/jobs?{filter}&limit=2&cursor={Uri.EscapeDataString((string)first["nextCursor"]!)}");
        var third = await _client.GetJsonAsync($"/api/jobs?{filter}&limit=2&cursor={Uri.EscapeDataString((string)second["nextCursor"]!)}");

        var paged = first["items"]!.AsArray().Concat(second["items"]!.AsArray()).Concat(third["items"]!.AsArray()).Select(j => j!.Id()).ToList();
        Assert.Equal(Enumerable.Reverse(created.Take(5)).ToList(), paged);
        Assert.Null((string?)third["nextCursor"]);
        foreach (var id in created)
        {
            await _client.WaitForEndAsync(id);
        }
        var succeeded = await _client.GetJsonAsync($"/api/jobs?{filter}&status=succeeded&limit=100");
        Assert.Equal(7, succeeded["items"]!.AsArray().Count);
        var none = await _client.GetJsonAsync($"/api/jobs?{filter}&createdAfter={Uri.EscapeDataString(DateTimeOffset.UtcNow.AddMinutes(1).ToString("O"))}");
        Assert.Empty(none["items"]!.AsArray());
    }

    [Theory]
    [InlineData("cursor=not-a-cursor", "job.invalid_cursor", "cursor")]
    [InlineData("limit=0", "job.invalid_limit", "limit")]
    [InlineData("limit=1000000", "job.invalid_limit", "limit")]
    [InlineData("status=sleeping", "job.invalid_status", "status")]
    public async Task A_bad_list_query_is_a_400_with_its_own_code(string query, string code, string field)
    {
        await (await _client.GetAsync($"/api/jobs?{query}")).AssertProblemAsync(HttpStatusCode.BadRequest, code, field);
    }

    [Fact]
    public async Task A_job_carries_a_strong_etag_and_answers_304_until_it_changes()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(40, seed: 28));
        var job = await _client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 1));
        await _client.WaitForEndAsync(job.Id());

        var response = await _client.GetAsync($"/api/jobs/{job.Id()}");
        var etag = response.Headers.ETag!;
        var request = new HttpRequestMessage(HttpMethod.Get, $"/api/jobs/{job.Id()}");
        request.Headers.IfNoneMatch.Add(etag);
        var conditional = await _client.SendAsync(request);

        Assert.False(etag.IsWeak);
        Assert.Equal(HttpStatusCode.NotModified, conditional.StatusCode);
        Assert.Empty(await conditional.Content.ReadAsByteArrayAsync());

        // Deleting its dataset changes the job (datasetId becomes null): the old ETag no longer matches.
        Assert.Equal(HttpStatusCode.NoContent, (await _client.DeleteAsync($"/api/datasets/{dataset.Id()}")).StatusCode);
        var after = new HttpRequestMessage(HttpMethod.Get, $"/api/jobs/{job.Id()}");
        after.Headers.IfNoneMatch.Add(etag);
        var changed = await _client.SendAsync(after);
        var body = await Api.ReadAsync(changed, HttpStatusCode.OK);
        Assert.Null(body["datasetId"]);
        Assert.NotEqual(etag, changed.Headers.ETag);
    }

    [Fact]
    public async Task A_finished_job_leaves_no_lease_behind()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(40, seed: 29));
        var job = await _client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 1));
        await _client.WaitForEndAsync(job.Id());

        long key = Jobs.JobLease.KeyOf(Guid.Parse(job.Id()));
        long held = await service.Database.ScalarAsync<long>(
            $"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND ((classid::bigint << 32) | objid::bigint) = {key}");
        Assert.Equal(0L, held);
    }

    [Fact]
    public async Task A_running_job_that_nothing_works_on_is_enqueued_again_and_finishes()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(200, seed: 30));
        var job = await _client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 3));
        await _client.WaitForEndAsync(job.Id());
        string before = await service.Database.ScalarAsync<string>($"SELECT hangfire_job_id FROM jobs WHERE id = '{job.Id()}'");

        // What a failed final write leaves: the row says running, its Hangfire job has ended, no worker holds the lease.
        await service.Database.ScalarAsync<int>($"UPDATE jobs SET status = 'running', finished_at = NULL WHERE id = '{job.Id()}' RETURNING 1");

        var deadline = DateTime.UtcNow.AddSeconds(60);
        string status;
        do
        {
            await Task.Delay(200);
            status = await service.Database.ScalarAsync<string>($"SELECT status FROM jobs WHERE id = '{job.Id()}'");
        }
        while (status != "succeeded" && DateTime.UtcNow < deadline);
        Assert.Equal("succeeded", status);
        Assert.NotEqual(before, await service.Database.ScalarAsync<string>($"SELECT hangfire_job_id FROM jobs WHERE id = '{job.Id()}'"));
        var history = await _client.GetJsonAsync($"/api/jobs/{job.Id()}/history");
        Assert.Equal([1, 2, 3], history["epochs"]!.AsArray().Select(e => (int)e!["epoch"]!));
    }

    private Task<HttpResponseMessage> PostWithKey(object spec, string key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/jobs") { Content = JsonContent.Create(spec, options: Api.Json) };
        request.Headers.Add("Idempotency-Key", key);
        return _client.SendAsync(request);
    }

    private async Task WaitForEpochsAsync(string jobId, int epochs)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((int)(await _client.GetJsonAsync($"/api/jobs/{jobId}"))["epochsCompleted"]! < epochs)
        {
            Assert.True(DateTime.UtcNow < deadline, $"job {jobId} did not finish {epochs} epochs");
            await Task.Delay(50);
        }
    }
}
