using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using TrainingService.Server.Jobs;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>Reading histories: exact pages, sampled views, conditional GETs, CSV, SSE, comparisons, bad queries.</summary>
[Collection(ServiceTests.Name)]
public sealed class HistoryTests(ServiceFixture service)
{
    private readonly HttpClient _client = service.Client;

    private async Task<string> FinishedJobAsync(int epochs, int seed)
    {
        var dataset = await _client.UploadAsync(TestData.Linear(64, seed: seed));
        var job = await _client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: epochs, batchSize: 64, learningRate: 0.01));
        await _client.WaitForEndAsync(job.Id(), 120);
        return job.Id();
    }

    private static List<int> Epochs(JsonNode history) => history["epochs"]!.AsArray().Select(e => (int)e!["epoch"]!).ToList();

    [Fact]
    public async Task Exact_pages_continue_from_after_epoch_with_next_after_epoch()
    {
        string job = await FinishedJobAsync(25, 31);

        var first = await _client.GetJsonAsync($"/api/jobs/{job}/history?limit=10");
        var second = await _client.GetJsonAsync($"/api/jobs/{job}/history?afterEpoch={(int)first["nextAfterEpoch"]!}&limit=10");
        var third = await _client.GetJsonAsync($"/api/jobs/{job}/history?afterEpoch={(int)second["nextAfterEpoch"]!}&limit=10");
        var nothingNew = await _client.GetJsonAsync($"/api/jobs/{job}/history?afterEpoch=25");

        Assert.Equal(Enumerable.Range(1, 10), Epochs(first));
        Assert.True((bool)first["hasMore"]!);
        Assert.Equal(Enumerable.Range(11, 10), Epochs(second));
        Assert.Equal(Enumerable.Range(21, 5), Epochs(third));
        Assert.False((bool)third["hasMore"]!);
        Assert.False((bool)third["sampled"]!);
        Assert.Empty(nothingNew["epochs"]!.AsArray());
        Assert.Equal(25, (int)nothingNew["nextAfterEpoch"]!);
    }

    [Fact]
    public async Task A_sampled_view_keeps_the_first_and_last_epochs_and_each_buckets_extremes()
    {
        string job = await FinishedJobAsync(120, 32);
        var all = await _client.GetJsonAsync($"/api/jobs/{job}/history?limit=500");

        var sampled = await _client.GetJsonAsync($"/api/jobs/{job}/history?maxPoints=20&metric=trainLoss");

        var epochs = Epochs(sampled);
        Assert.True((bool)sampled["sampled"]!);
        Assert.InRange(epochs.Count, 3, 20);
        Assert.Equal(1, epochs[0]);
        Assert.Equal(120, epochs[^1]);
        Assert.Equal(epochs.Order().ToList(), epochs);
        var losses = all["epochs"]!.AsArray().ToDictionary(e => (int)e!["epoch"]!, e => (double)e!["trainLoss"]!);
        Assert.Contains(losses.MinBy(p => p.Value).Key, epochs);
        Assert.Contains(losses.Where(p => p.Key > 1).MaxBy(p => p.Value).Key, epochs.Append(1));
        Assert.False((bool)all["sampled"]!);
        Assert.Equal(120, all["epochs"]!.AsArray().Count);
        foreach (int maxPoints in new[] { 3, 4, 5 })
        {
            var few = Epochs(await _client.GetJsonAsync($"/api/jobs/{job}/history?maxPoints={maxPoints}&metric=trainLoss"));
            Assert.InRange(few.Count, 3, maxPoints);
            Assert.Equal([1, 120], new[] { few[0], few[^1] });
        }
    }

    [Fact]
    public async Task A_sampled_view_gives_each_buckets_loss_ranges_and_the_buckets_cover_the_history()
    {
        string job = await FinishedJobAsync(120, 40);
        var epochs = (await _client.GetJsonAsync($"/api/jobs/{job}/history?limit=500"))["epochs"]!.AsArray();
        var losses = epochs.ToDictionary(e => (int)e!["epoch"]!, e => (double)e!["trainLoss"]!);
        var rmse = epochs.ToDictionary(e => (int)e!["epoch"]!, e => (double)e!["metrics"]!["rmse"]!);

        var sampled = await _client.GetJsonAsync($"/api/jobs/{job}/history?maxPoints=20&metric=rmse");
        var exact = await _client.GetJsonAsync($"/api/jobs/{job}/history?maxPoints=500&metric=trainLoss");

        Assert.Equal("rmse", (string?)sampled["metric"]);
        var buckets = sampled["buckets"]!.AsArray();
        Assert.InRange(buckets.Count, 3, 20);
        int next = 1;
        foreach (var bucket in buckets)
        {
            int from = (int)bucket!["fromEpoch"]!, to = (int)bucket["toEpoch"]!;
            Assert.Equal(next, from);
            var ranges = bucket["ranges"]!;
            foreach (var (name, values) in new[] { ("trainLoss", losses), ("rmse", rmse) })
            {
                var inBucket = Enumerable.Range(from, to - from + 1).Select(e => values[e]).ToList();
                Assert.Equal(inBucket.Min(), (double)ranges[name]!["min"]!);
                Assert.Equal(inBucket.Max(), (double)ranges[name]!["max"]!);
                Assert.Equal(0, (int)ranges[name]!["nonFinite"]!);
            }
            Assert.Null(ranges["valLoss"]!["min"]); // this job has no validation split
            next = to + 1;
        }
        Assert.Equal(121, next);
        Assert.False((bool)exact["sampled"]!);
        Assert.Null(exact["buckets"]);
        Assert.Equal(120, exact["epochs"]!.AsArray().Count);
    }

    [Fact]
    public async Task A_range_read_returns_only_the_epochs_up_to_to_epoch_exact_or_sampled()
    {
        string job = await FinishedJobAsync(60, 41);

        var exact = await _client.GetJsonAsync($"/api/jobs/{job}/history?afterEpoch=10&toEpoch=20");
        var paged = await _client.GetJsonAsync($"/api/jobs/{job}/history?afterEpoch=10&toEpoch=20&limit=4");
        var sampled = await _client.GetJsonAsync($"/api/jobs/{job}/history?afterEpoch=10&toEpoch=50&maxPoints=10");
        var whole = await _client.GetJsonAsync($"/api/jobs/{job}/history?afterEpoch=10&toEpoch=50&maxPoints=40");

        Assert.Equal(Enumerable.Range(11, 10), Epochs(exact));
        Assert.False((bool)exact["hasMore"]!);
        Assert.Equal(Enumerable.Range(11, 4), Epochs(paged));
        Assert.True((bool)paged["hasMore"]!);
        Assert.True((bool)sampled["sampled"]!);
        Assert.Equal([11, 50], new[] { Epochs(sampled)[0], Epochs(sampled)[^1] });
        Assert.Equal(11, (int)sampled["buckets"]!.AsArray()[0]!["fromEpoch"]!);
        Assert.Equal(50, (int)sampled["buckets"]!.AsArray()[^1]!["toEpoch"]!);
        Assert.False((bool)whole["sampled"]!);
        Assert.Equal(Enumerable.Range(11, 40), Epochs(whole));
    }

    [Fact]
    public async Task An_unchanged_history_answers_304_and_a_new_epoch_answers_200()
    {
        var job = await LongJobs.StartAsync(_client);
        try
        {
            await _client.WaitForAsync(job.Id(), TimeSpan.FromSeconds(30), "running");
            string url = $"/api/jobs/{job.Id()}/history?afterEpoch=0&limit=500";
            // From the first epoch on, the start-up writes (data summary, history truncation) that also move the ETag are done.
            var (etag, count) = await WaitForEpochsAsync(url, atLeast: 1, TimeSpan.FromSeconds(60));

            var unchanged = await Conditional(url, etag);
            Assert.Equal(HttpStatusCode.NotModified, unchanged.StatusCode);
            Assert.Empty(await unchanged.Content.ReadAsByteArrayAsync());

            // Every 200 carries a new ETag; a 200 without a new epoch (some other write moved the version) is not the
            // answer this test waits for, so it polls on with that ETag until an epoch lands.
            var deadline = DateTime.UtcNow.AddSeconds(60);
            var current = etag;
            int latest = count;
            while (latest <= count && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
                var changed = await Conditional(url, current);
                if (changed.StatusCode == HttpStatusCode.NotModified)
                {
                    continue;
                }
                Assert.NotEqual(current, changed.Headers.ETag);
                latest = (await Api.ReadAsync(changed, HttpStatusCode.OK))["epochs"]!.AsArray().Count;
                current = changed.Headers.ETag!;
            }
            Assert.True(latest > count, $"no new epoch after {count} within 60 s");
            Assert.NotEqual(etag, current);
        }
        finally
        {
            await LongJobs.EndAsync(_client, job.Id());
        }
    }

    [Fact]
    public async Task The_csv_export_has_every_epoch_and_a_header()
    {
        string job = await FinishedJobAsync(12, 33);
        var request = new HttpRequestMessage(HttpMethod.Get, $"/api/jobs/{job}/history?limit=3");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/csv"));

        var response = await _client.SendAsync(request);
        var lines = (await response.Content.ReadAsStringAsync()).TrimEnd('\n').Split('\n');

        Assert.Equal("text/csv", response.Content.Headers.ContentType?.MediaType);
        Assert.StartsWith("epoch,trainLoss,valLoss,regularizationLoss,learningRate,gradientNorm,durationMs,samplesPerSecond,recordedAt", lines[0]);
        Assert.Equal(13, lines.Length); // never sampled, never paged: the limit does not apply
        Assert.StartsWith("12,", lines[^1]);
    }

    [Fact]
    public async Task A_client_reading_the_csv_slowly_holds_no_database_connection_while_it_dawdles()
    {
        var store = service.Factory.Services.GetRequiredService<JobStore>();
        var dataset = await _client.UploadAsync(TestData.Linear(20, seed: 34));
        var (created, _) = await store.CreateAsync(new NewJob("default", Guid.Parse(dataset.Id()), "{}", 1, 3, null, null, ""), TimeSpan.FromHours(1),
            CancellationToken.None);
        var id = created!.JobId;
        await store.CancelAsync("default", id, CancellationToken.None); // no worker runs it
        const int epochs = 200_000; // a history far larger than the socket buffers between PostgreSQL and the service
        Assert.Equal(epochs, await service.Database.ScalarAsync<int>($$"""
            WITH added AS (INSERT INTO job_epochs (job_id, epoch, train_loss, val_loss, regularization_loss, metrics, learning_rate,
                                                   gradient_norm, duration_ms, samples_per_second, recorded_at)
                SELECT '{{id}}', e, 1.0 / e, NULL, 0, '{"mae": 0.5}', 0.01, 1, 10, 100, now() FROM generate_series(1, {{epochs}}) e RETURNING 1)
            SELECT count(*)::int FROM added
            """));
        var request = new HttpRequestMessage(HttpMethod.Get, $"/api/jobs/{id}/history");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/csv"));

        using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await using var body = await response.Content.ReadAsStreamAsync();
        var first = new byte[4096];
        await body.ReadExactlyAsync(first);
        int busy = 0;
        for (int look = 0; look < 10; look++) // the client dawdles for two seconds
        {
            busy = Math.Max(busy, await service.Database.ScalarAsync<int>("""
                SELECT count(*)::int FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle' AND query LIKE '%FROM job_epochs%'
                """));
            await Task.Delay(200);
        }
        int lines = first.Count(b => b == (byte)'\n');
        using (var reader = new StreamReader(body))
        {
            while (await reader.ReadLineAsync() is not null)
            {
                lines++;
            }
        }

        Assert.True(busy == 0, $"{busy} connection(s) held by the download while its client dawdled");
        Assert.Equal(epochs + 1, lines); // the header and every epoch
    }

    [Fact]
    public async Task A_diverging_job_fails_with_its_epoch_and_its_non_finite_losses_stay_valid_json_and_csv()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(200, seed: 34));
        var job = await _client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 50, batchSize: 8, learningRate: 10)); // the largest learning rate accepted (JobSpecValidator.MaxLearningRate)

        var done = await _client.WaitForEndAsync(job.Id());
        var history = await _client.GetAsync($"/api/jobs/{job.Id()}/history");
        string json = await history.Content.ReadAsStringAsync();
        var csvRequest = new HttpRequestMessage(HttpMethod.Get, $"/api/jobs/{job.Id()}/history");
        csvRequest.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/csv"));
        string csv = await (await _client.SendAsync(csvRequest)).Content.ReadAsStringAsync();

        Assert.Equal("failed", (string?)done["status"]);
        Assert.Equal("diverged", (string?)done["stopReason"]);
        Assert.Equal("training.diverged", (string?)done["failure"]!["code"]);
        int epoch = (int)done["failure"]!["epoch"]!;
        var last = JsonNode.Parse(json)!["epochs"]!.AsArray()[^1]!;
        Assert.Equal(epoch, (int)last["epoch"]!);
        Assert.Contains((string?)last["trainLoss"]?.ToString(), new[] { "NaN", "Infinity", "-Infinity" });
        Assert.Matches(@"\n" + epoch + @",(NaN|Infinity|-Infinity),", csv);
    }

    [Fact]
    public async Task An_sse_client_that_disconnects_and_resumes_with_last_event_id_misses_and_repeats_nothing()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(4000, seed: 35));
        var job = await _client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 12, batchSize: 8, learningRate: 0.001));
        string url = $"/api/jobs/{job.Id()}/history/stream";

        var (first, _) = await SseClient.ReadAsync(_client, url, null, e => e.Event == "epoch" && e.Id == "3", TimeSpan.FromSeconds(60));
        var (rest, _) = await SseClient.ReadAsync(_client, url, first[^1].Id, e => e.Event == "end", TimeSpan.FromSeconds(120));

        var ids = first.Concat(rest).Where(e => e.Event == "epoch").Select(e => int.Parse(e.Id!)).ToList();
        Assert.Equal(Enumerable.Range(1, 12), ids);
        var end = JsonNode.Parse(rest[^1].Data)!;
        Assert.Equal("end", rest[^1].Event);
        Assert.Equal("succeeded", (string?)end["status"]);
        Assert.Equal(12, (int)end["epochsCompleted"]!);
        Assert.Equal(1, (int)JsonNode.Parse(first[0].Data)!["epoch"]!);
    }

    [Fact]
    public async Task An_idle_sse_stream_sends_heartbeats()
    {
        var job = await LongJobs.StartAsync(_client);
        try
        {
            await _client.WaitForAsync(job.Id(), TimeSpan.FromSeconds(30), "running");
            // Resume after an epoch far ahead: nothing to send for a while but heartbeats (1 s in the tests).
            var (events, heartbeats) = await SseClient.ReadAsync(_client, $"/api/jobs/{job.Id()}/history/stream", "100000", _ => false,
                TimeSpan.FromSeconds(3.5));

            Assert.Empty(events);
            Assert.True(heartbeats >= 2, $"{heartbeats} heartbeats");
        }
        finally
        {
            await LongJobs.EndAsync(_client, job.Id());
        }
    }

    [Fact]
    public async Task Several_jobs_can_be_compared_on_one_metric()
    {
        string a = await FinishedJobAsync(5, 36), b = await FinishedJobAsync(8, 37);

        var comparison = await _client.GetJsonAsync($"/api/histories?jobIds={a},{b}&metric=trainLoss");

        Assert.Equal("trainLoss", (string?)comparison["metric"]);
        var series = comparison["series"]!.AsArray();
        Assert.Equal([a, b], series.Select(s => (string)s!["jobId"]!));
        Assert.Equal(5, series[0]!["points"]!.AsArray().Count);
        Assert.Equal(8, series[1]!["points"]!.AsArray().Count);
        Assert.All(series[1]!["points"]!.AsArray(), p => Assert.True((double)p!["value"]! > 0));
    }

    [Theory]
    [InlineData("history?afterEpoch=-1", "history.invalid_after_epoch", "afterEpoch")]
    [InlineData("history?afterEpoch=abc", "history.invalid_after_epoch", "afterEpoch")]
    [InlineData("history?limit=0", "history.invalid_limit", "limit")]
    [InlineData("history?limit=501", "history.invalid_limit", "limit")]
    [InlineData("history?maxPoints=2", "history.invalid_max_points", "maxPoints")]
    [InlineData("history?toEpoch=0", "history.invalid_to_epoch", "toEpoch")]
    [InlineData("history?toEpoch=ten", "history.invalid_to_epoch", "toEpoch")]
    [InlineData("history?afterEpoch=5&toEpoch=5", "history.invalid_to_epoch", "toEpoch")]
    [InlineData("history?metric=lossiness", "history.unknown_metric", "metric")]
    public async Task A_bad_history_query_is_a_400_with_its_own_code(string query, string code, string field)
    {
        string job = await FinishedJobAsync(1, 38);

        await (await _client.GetAsync($"/api/jobs/{job}/{query}")).AssertProblemAsync(HttpStatusCode.BadRequest, code, field);
    }

    [Fact]
    public async Task Bad_comparison_queries_are_400s_and_unknown_jobs_404s()
    {
        string job = await FinishedJobAsync(1, 39);
        string six = string.Join(",", Enumerable.Range(0, 6).Select(_ => Guid.NewGuid()));

        await (await _client.GetAsync($"/api/histories?jobIds={six}")).AssertProblemAsync(HttpStatusCode.BadRequest, "history.too_many_jobs", "jobIds");
        await (await _client.GetAsync($"/api/histories?jobIds={job},banana")).AssertProblemAsync(HttpStatusCode.BadRequest, "history.invalid_job_id", "jobIds");
        await (await _client.GetAsync($"/api/histories?jobIds={job}&metric=x")).AssertProblemAsync(HttpStatusCode.BadRequest, "history.unknown_metric", "metric");
        await (await _client.GetAsync("/api/histories")).AssertProblemAsync(HttpStatusCode.BadRequest, "history.missing_job_ids", "jobIds");
        await (await _client.GetAsync($"/api/histories?jobIds={job},{Guid.NewGuid()}")).AssertProblemAsync(HttpStatusCode.NotFound, "job.not_found");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var stream = await _client.GetAsync($"/api/jobs/{job}/history/stream", HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        string events = await stream.Content.ReadAsStringAsync(timeout.Token); // a finished job's stream ends by itself
        Assert.Contains("event: epoch", events);
        Assert.EndsWith("\n\n", events);
        Assert.Contains("event: end", events);
    }

    /// <summary>Polls the history until it holds at least <paramref name="atLeast"/> epochs; its ETag and epoch count then.</summary>
    private async Task<(EntityTagHeaderValue ETag, int Count)> WaitForEpochsAsync(string url, int atLeast, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var response = await _client.GetAsync(url);
            var etag = response.Headers.ETag!;
            int count = (await Api.ReadAsync(response, HttpStatusCode.OK))["epochs"]!.AsArray().Count;
            if (count >= atLeast || DateTime.UtcNow >= deadline)
            {
                Assert.True(count >= atLeast, $"{count} epochs after {timeout}");
                return (etag, count);
            }
            await Task.Delay(100);
        }
    }

    private Task<HttpResponseMessage> Conditional(string url, EntityTagHeaderValue etag)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.IfNoneMatch.Add(etag);
        return _client.SendAsync(request);
    }
}
