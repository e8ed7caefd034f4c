using System.Net;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using TrainingService.Server.Losses;
using TrainingService.ProcessHarness;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>
/// The bounds of <c>POST /api/losses/evaluate</c>: values per array (Losses:MaxElements, 1000 in the in-process host),
/// evaluations at once (Losses:MaxConcurrentEvaluations), the fields it knows, and a million values through Kestrel.
/// </summary>
[Collection(ServiceTests.Name)]
public sealed class LossEvaluateLimitsTests(ServiceFixture service)
{
    private const string Url = "/api/losses/evaluate";
    private const int Max = ServiceFixture.MaxLossElements;
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(90);

    private readonly HttpClient _client = service.Client;

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static string Numbers(int count, string value) => string.Join(',', Enumerable.Repeat(value, count));

    [Fact]
    public async Task Exactly_max_elements_values_in_every_array_are_evaluated()
    {
        var response = await _client.PostAsync(Url, Json($$"""
            {"loss": "gaussian_nll", "predictions": [{{Numbers(Max, "0.5")}}], "targets": [{{Numbers(Max, "0")}}],
             "weights": [{{Numbers(Max, "2")}}], "variance": [{{Numbers(Max, "1")}}]}
            """));

        var result = await Api.ReadAsync(response, HttpStatusCode.OK);
        Assert.Equal(0.25, (double)result["loss"]!, 6); // 2 · ½ · (log 1 + 0.5² / 1)
        Assert.Equal(Max, result["gradient"]!.AsArray().Count);
    }

    [Theory]
    [InlineData("predictions")]
    [InlineData("targets")]
    [InlineData("weights")]
    [InlineData("variance")]
    public async Task One_value_past_max_elements_in_any_array_is_a_413_problem_naming_the_array(string field)
    {
        var arrays = new Dictionary<string, int> { ["predictions"] = Max, ["targets"] = Max, ["weights"] = Max, ["variance"] = Max };
        arrays[field] = Max + 1;
        string body = "{\"loss\": \"gaussian_nll\", " + string.Join(", ", arrays.Select(a => $"\"{a.Key}\": [{Numbers(a.Value, "1")}]")) + "}";

        var response = await _client.PostAsync(Url, Json(body));

        await response.AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, "loss.too_many_elements", field);
    }

    [Fact]
    public async Task Rows_count_by_their_values()
    {
        string Rows(int count) => Numbers(count, "[0.5, 0.5]");
        string Body(int rows) => $$"""{"loss": "kl_div", "predictions": [{{Rows(rows)}}], "targets": [{{Rows(rows)}}]}""";

        await Api.ReadAsync(await _client.PostAsync(Url, Json(Body(Max / 2))), HttpStatusCode.OK);
        await (await _client.PostAsync(Url, Json(Body(Max / 2 + 1))))
            .AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, "loss.too_many_elements", "predictions");
    }

    [Fact]
    public async Task Reading_stops_at_the_bound_and_answers_before_the_rest_of_the_body_is_sent()
    {
        // Through Kestrel on a raw connection, with a chunked body that never ends: an answer proves the server neither
        // waited for the rest nor computed anything. (The in-process test server sends a body whole before the app runs.)
        await using var database = await TestDatabase.CreateAsync();
        await using var api = ServiceFixture.StartProcess("api", database.ConnectionString,
            new Dictionary<string, string> { ["Losses:MaxElements"] = Max.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        await api.WaitReadyAsync(Startup);
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, api.Port);
        var stream = tcp.GetStream();
        byte[] start = Encoding.UTF8.GetBytes($$"""{"loss": "mse", "targets": [0], "predictions": [{{Numbers(Max + 1, "1")}}, """);
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"POST {Url} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {ServiceFixture.OwnerKey}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{start.Length:X}\r\n"));
        await stream.WriteAsync(start);
        await stream.WriteAsync("\r\n"u8.ToArray());

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var answer = new StringBuilder();
        var buffer = new byte[4096];
        while (!answer.ToString().Contains("\"field\":\"predictions\"", StringComparison.Ordinal)
            && await stream.ReadAsync(buffer, timeout.Token) is > 0 and var read)
        {
            answer.Append(Encoding.UTF8.GetString(buffer, 0, read));
        }
        string status = answer.ToString().Split("\r\n")[0];

        Assert.Equal("HTTP/1.1 413 Payload Too Large", status);
        Assert.Contains("\"code\":\"loss.too_many_elements\"", answer.ToString());
    }


    [Fact]
    public async Task A_body_that_stops_arriving_is_a_408_within_the_deadline_and_frees_its_slot()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var api = ServiceFixture.StartProcess("api", database.ConnectionString, new Dictionary<string, string>
        {
            ["Losses:MaxBodyTime"] = "00:00:01",
            ["Losses:MaxConcurrentEvaluations"] = "1",
        });
        await api.WaitReadyAsync(Startup);
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, api.Port);
        var stream = tcp.GetStream();
        byte[] start = """{"loss": "mse", "targets": [0], "predictions": [1"""u8.ToArray();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"POST {Url} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {ServiceFixture.OwnerKey}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"));
        await stream.WriteAsync(start); // then nothing: the client dawdles, still inside the grace of the minimum data rate
        var clock = System.Diagnostics.Stopwatch.StartNew();

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var answer = new StringBuilder();
        var buffer = new byte[4096];
        while (!answer.ToString().Contains("loss.request_timeout", StringComparison.Ordinal)
            && await stream.ReadAsync(buffer, timeout.Token) is > 0 and var read)
        {
            answer.Append(Encoding.UTF8.GetString(buffer, 0, read));
        }

        Assert.Equal("HTTP/1.1 408 Request Timeout", answer.ToString().Split("\r\n")[0]);
        Assert.Contains("\"code\":\"loss.request_timeout\"", answer.ToString());
        // The deadline (1 s), not Kestrel's minimum data rate, whose 5 s grace the client is still inside.
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(4.5));
        // Its slot is free again: the one evaluation allowed at once runs.
        var next = await api.Client.PostAsync(Url, Json("""{"loss": "mse", "predictions": [1], "targets": [0]}"""));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Fact]
    public async Task Past_the_concurrent_evaluations_a_request_gets_429_with_retry_after_and_is_not_queued()
    {
        var slots = service.Factory.Services.GetRequiredService<LossEvaluationSlots>();
        var held = new List<IDisposable>();
        const string body = """{"loss": "mse", "predictions": [1], "targets": [0]}""";
        try
        {
            while (held.Count <= slots.Capacity && slots.TryTake() is { } slot)
            {
                held.Add(slot);
            }
            Assert.Equal(slots.Capacity, held.Count);

            var refused = await _client.PostAsync(Url, Json(body)).WaitAsync(TimeSpan.FromSeconds(10));

            await refused.AssertProblemAsync(HttpStatusCode.TooManyRequests, "loss.too_many_evaluations");
            Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
        }
        finally
        {
            held.ForEach(slot => slot.Dispose());
        }
        await Api.ReadAsync(await _client.PostAsync(Url, Json(body)), HttpStatusCode.OK);
    }

    [Theory]
    [InlineData("""{"loss": "mse", "predictions": [1], "targets": [0], "learning_rate": 0.1}""", "learning_rate")]
    [InlineData("""{"loss": "mse", "prediction": [1], "targets": [0]}""", "prediction")]
    [InlineData("""{"loss": "mse", "predictions": [1], "targets": [0], "options": {"a": [1, 2]}}""", "options")]
    public async Task An_unknown_field_is_a_400_problem_naming_it(string body, string field)
    {
        var response = await _client.PostAsync(Url, Json(body));

        await response.AssertProblemAsync(HttpStatusCode.BadRequest, "request.unknown_field", field);
    }

    [Theory]
    [InlineData("""{"loss": "mse", "predictions": [1, 2""", "$.predictions")]
    [InlineData("""{"loss": "mse", "predictions": [1], "targets": [0]} x""", "$")]
    public async Task Malformed_json_is_a_400_problem_with_its_line_and_column(string body, string field)
    {
        var problem = await (await _client.PostAsync(Url, Json(body))).AssertProblemAsync(HttpStatusCode.BadRequest, "request.invalid_json", field);

        Assert.Equal(1, (int)problem["line"]!);
        Assert.True((int)problem["column"]! > 1, problem.ToJsonString());
    }

    [Theory]
    [InlineData("""{"loss": "mse", "reduction": 5, "predictions": [1], "targets": [0]}""", "$.reduction")]
    [InlineData("""{"loss": "mse", "fromLogits": "yes", "predictions": [1], "targets": [0]}""", "$.fromLogits")]
    [InlineData("""{"loss": "mse", "params": [1], "predictions": [1], "targets": [0]}""", "$.params")]
    [InlineData("""{"loss": "cross_entropy", "classWeights": [1, "a"], "predictions": [[1, 2]], "targets": [0]}""", "$.classWeights[1]")]
    public async Task A_field_of_the_wrong_type_is_a_400_invalid_json_problem_naming_it(string body, string field)
    {
        var response = await _client.PostAsync(Url, Json(body));

        await response.AssertProblemAsync(HttpStatusCode.BadRequest, "request.invalid_json", field);
    }


    [Fact]
    public async Task A_value_longer_than_a_field_may_take_is_a_413_problem()
    {
        string name = new('a', EvaluateRequestReader.MaxValueBytes + 1);

        var response = await _client.PostAsync(Url, Json($$"""{"predictions": [1], "targets": [0], "loss": "{{name}}"}"""));

        await response.AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, "request.too_large", "loss");
    }

    [Fact]
    public async Task A_million_values_stream_through_kestrel_and_give_the_small_case_scaled_up()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var api = ServiceFixture.StartProcess("api", database.ConnectionString,
            new Dictionary<string, string> { ["Losses:MaxElements"] = "1000000" });
        await api.WaitReadyAsync(Startup);
        const int n = 1_000_000;
        string Repeat(string four, int extra = 0) => Numbers(n / 4, four) + (extra > 0 ? "," + Numbers(extra, "1") : "");

        var small = await Api.ReadAsync(await api.Client.PostAsync(Url, Json("""{"loss": "mse", "predictions": [1, 2, 3, 4], "targets": [0, 0, 0, 0]}""")),
            HttpStatusCode.OK);
        var large = await Api.ReadAsync(await api.Client.PostAsync(Url, Json($$"""{"loss": "mse", "predictions": [{{Repeat("1,2,3,4")}}], "targets": [{{Repeat("0,0,0,0")}}]}""")),
            HttpStatusCode.OK);
        var over = await api.Client.PostAsync(Url, Json($$"""{"loss": "mse", "predictions": [{{Repeat("1,2,3,4", 1)}}], "targets": [0]}"""));

        Assert.Equal(7.5, (double)small["loss"]!, 6);
        Assert.Equal((double)small["loss"]!, (double)large["loss"]!, 6);
        var gradient = large["gradient"]!.AsArray();
        Assert.Equal(n, gradient.Count);
        // The mean's gradient 2(p − t)/n: the small case's, scaled by 4/n.
        Assert.Equal((double)small["gradient"]![3]! * 4 / n, (double)gradient[n - 1]!, 12);
        await over.AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, "loss.too_many_elements", "predictions");
    }
}
