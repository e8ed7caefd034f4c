using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using TrainingService.ProcessHarness;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>
/// Error paths with no other home: problems the framework raises, limits only Kestrel enforces, specs that fail only
/// against their data, and data problems found by the worker, which surface as the failed job's <c>failure.code</c>.
/// </summary>
[Collection(ServiceTests.Name)]
public sealed class ProblemCodeTests(ServiceFixture service)
{
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(90);
    private static string? _finishedJob;

    private readonly HttpClient _client = service.Client;

    /// <summary>A succeeded linear job (so it has a model and a history), trained once for the tests that need one.</summary>
    private async Task<string> FinishedJobAsync()
    {
        if (_finishedJob is not null)
        {
            return _finishedJob;
        }
        var dataset = await _client.UploadAsync(TestData.Linear(40, seed: 61));
        var job = await _client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 1));
        var done = await _client.WaitForEndAsync(job.Id());
        Assert.True((string?)done["status"] == "succeeded", done.ToJsonString());
        return _finishedJob = job.Id();
    }

    /// <summary>Submits a job the worker accepts but cannot train; returns it once it has failed.</summary>
    private async Task<JsonNode> FailedJobAsync(object spec)
    {
        var job = await _client.SubmitAsync(spec);
        var done = await _client.WaitForEndAsync(job.Id());
        Assert.True((string?)done["status"] == "failed", done.ToJsonString());
        Assert.Equal("error", (string?)done["stopReason"]);
        return done;
    }

    [Theory]
    [InlineData("GET", "/api/nowhere", null, null, HttpStatusCode.NotFound, "route.not_found")]
    [InlineData("DELETE", "/api/jobs", null, null, HttpStatusCode.MethodNotAllowed, "request.method_not_allowed")]
    [InlineData("POST", "/api/jobs", "text/plain", "epochs=1", HttpStatusCode.UnsupportedMediaType, "request.unsupported_media_type")]
    [InlineData("POST", "/api/losses/evaluate", "application/xml", "<loss/>", HttpStatusCode.UnsupportedMediaType, "request.unsupported_media_type")]
    [InlineData("POST", "/api/jobs", "application/json", "", HttpStatusCode.BadRequest, "request.invalid")]
    [InlineData("GET", "/api/jobs?limit=ten", null, null, HttpStatusCode.BadRequest, "request.invalid")]
    [InlineData("GET", "/api/jobs?createdAfter=yesterday", null, null, HttpStatusCode.BadRequest, "request.invalid")]
    public async Task Problems_the_framework_raises_carry_a_code_too(string method, string url, string? contentType, string? body,
        HttpStatusCode status, string code)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), url);
        if (contentType is not null)
        {
            request.Content = new StringContent(body ?? "", Encoding.UTF8, contentType);
        }

        await (await _client.SendAsync(request)).AssertProblemAsync(status, code);
    }

    [Fact]
    public async Task A_chunked_body_past_the_request_limit_is_refused_with_413_dataset_too_large()
    {
        // Only Kestrel enforces the request-body limit (Datasets:MaxUploadBytes plus room for multipart framing), so this
        // runs against the real executable. A chunked body has no Content-Length to check up front, and a non-file part is
        // not counted by the upload itself: the body limit is what stops it, and the upload reports it as its own 413 (so a
        // fast chunked file gets one code whichever count passes the cap first).
        await using var database = await TestDatabase.CreateAsync();
        await using var api = ServiceFixture.StartProcess("api", database.ConnectionString,
            new Dictionary<string, string> { ["Datasets:MaxUploadBytes"] = "1000" });
        await api.WaitReadyAsync(Startup);
        using var form = new MultipartFormDataContent();
        form.Add(new StringContent(new string('n', 200_000)), "note");
        var file = new StringContent("a,b\n1,2\n", Encoding.UTF8);
        file.Headers.ContentType = new MediaTypeHeaderValue("text/csv");
        form.Add(file, "file", "small.csv");
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/datasets") { Content = form };
        request.Headers.TransferEncodingChunked = true;

        await (await api.Client.SendAsync(request)).AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, "dataset.too_large");
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM datasets"));
    }

    [Fact]
    public async Task A_header_row_longer_than_the_csv_reader_accepts_is_unreadable_and_nothing_is_stored()
    {
        // The CSV reader gives up on a row past 16 Mi characters. The in-process service caps uploads at 16 MB, below
        // that, so this runs against the real executable with a cap above it (the default cap is 1 GiB).
        await using var database = await TestDatabase.CreateAsync();
        await using var api = ServiceFixture.StartProcess("api", database.ConnectionString,
            new Dictionary<string, string> { ["Datasets:MaxUploadBytes"] = "18000000" });
        await api.WaitReadyAsync(Startup);
        var header = new byte[17_000_000];
        Array.Fill(header, (byte)'a');

        await (await api.Client.PostBytesAsync(header)).AssertProblemAsync(HttpStatusCode.BadRequest, "dataset.unreadable");
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM datasets"));
    }

    [Fact]
    public async Task A_last_event_id_that_is_not_an_epoch_number_is_refused()
    {
        string job = await FinishedJobAsync();
        var request = new HttpRequestMessage(HttpMethod.Get, $"/api/jobs/{job}/history/stream");
        request.Headers.Add("Last-Event-ID", "epoch-3");

        await (await _client.SendAsync(request)).AssertProblemAsync(HttpStatusCode.BadRequest, "history.invalid_last_event_id", "Last-Event-ID");
        // afterEpoch is the query-string spelling of the same resume point, for clients that cannot set headers.
        await (await _client.GetAsync($"/api/jobs/{job}/history/stream?afterEpoch=-1"))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "history.invalid_last_event_id", "Last-Event-ID");
    }

    [Fact]
    public async Task Predict_refuses_more_than_ten_thousand_rows_in_one_request()
    {
        string job = await FinishedJobAsync();
        var rows = Enumerable.Range(0, 10_001).Select(i => new { x1 = 0.5, x2 = -0.5 }).ToArray();

        var response = await _client.PostAsJsonAsync($"/api/jobs/{job}/predict", new { rows });

        await response.AssertProblemAsync(HttpStatusCode.BadRequest, "predict.too_many_rows", "rows");
    }

    [Fact]
    public async Task A_dataset_with_no_usable_column_besides_the_target_has_no_features()
    {
        var dataset = await _client.UploadAsync("y\n1\n2\n3\n4\n");

        var response = await _client.PostAsJsonAsync("/api/jobs", new { datasetId = dataset.Id(), target = "y", loss = "mse", epochs = 1 });

        await response.AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "job.no_features", "features");
    }

    [Theory]
    [InlineData("""{"name": "poisson_nll", "log_input": false}""", "loss.log_input")]
    [InlineData("""{"terms": [{"name": "mse"}, {"name": "poisson_nll", "log_input": false}]}""", "loss.terms[1].log_input")]
    public async Task Poisson_nll_on_rates_cannot_be_trained(string loss, string field)
    {
        var dataset = await _client.UploadAsync(TestData.Linear(40, seed: 62));
        var spec = JsonNode.Parse($$"""{"datasetId": "{{dataset.Id()}}", "target": "y", "loss": {{loss}}, "epochs": 1}""")!;

        var response = await _client.PostAsync("/api/jobs", new StringContent(spec.ToJsonString(), Encoding.UTF8, "application/json"));

        await response.AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "job.unsupported_loss_parameter", field);
    }

    [Fact]
    public async Task A_job_left_with_fewer_than_two_complete_rows_fails_with_data_too_few_rows()
    {
        // Valid at submit (x and y are numeric columns), but dropping the rows with a missing x leaves one row.
        var dataset = await _client.UploadAsync("x,y\n1,1\nNA,2\n,3\nNA,4\n");

        var done = await FailedJobAsync(new { datasetId = dataset.Id(), target = "y", loss = "mse", epochs = 1, missing = "drop_rows" });

        Assert.Equal("data.too_few_rows", (string?)done["failure"]!["code"]);
        Assert.Equal(0, (int)done["epochsCompleted"]!);
    }

    [Fact]
    public async Task Probability_targets_that_do_not_sum_to_one_fail_with_data_invalid_distribution_naming_the_line()
    {
        // Every column is in [0, 1], so kl_div is accepted at submit; only the worker adds up each row.
        var dataset = await _client.UploadAsync("u,p_a,p_b\n0.1,0.5,0.5\n0.2,0.3,0.7\n0.3,0.4,0.4\n0.4,0.9,0.1\n");

        var done = await FailedJobAsync(new { datasetId = dataset.Id(), target = new[] { "p_a", "p_b" }, loss = "kl_div", epochs = 1 });

        Assert.Equal("data.invalid_distribution", (string?)done["failure"]!["code"]);
        Assert.Contains("line 4", (string?)done["failure"]!["message"]);
    }
}
