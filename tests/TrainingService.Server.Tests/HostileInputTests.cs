using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>
/// What a hostile or careless client sends: text PostgreSQL cannot store, unknown fields, numbers past every range,
/// fields that do not apply, wrong types, random bytes and deep nesting, on every route. Each is a 4xx problem with a
/// code, never a 5xx, and nothing is stored.
/// </summary>
[Collection(ServiceTests.Name)]
public sealed class HostileInputTests(ServiceFixture service)
{
    private static string? _dataset;
    private static string? _finishedJob;

    private readonly HttpClient _client = service.Client;

    private async Task<string> DatasetAsync() => _dataset ??= (await _client.UploadAsync(TestData.Linear(40, seed: 71))).Id();

    /// <summary>A succeeded linear job on x1, x2 → y, so it has a model to predict with.</summary>
    private async Task<string> FinishedJobAsync()
    {
        if (_finishedJob is null)
        {
            var job = await _client.SubmitAsync(TestData.LinearSpec(await DatasetAsync(), epochs: 1));
            var done = await _client.WaitForEndAsync(job.Id());
            Assert.Equal("succeeded", (string?)done["status"]);
            _finishedJob = job.Id();
        }
        return _finishedJob;
    }

    private async Task<HttpResponseMessage> PostJsonAsync(string url, string json) =>
        await _client.PostAsync(url, new StringContent(json, Encoding.UTF8, "application/json"));

    /// <summary>A valid spec with <paramref name="overrides"/> (raw JSON members) merged in at the top level.</summary>
    private async Task<string> SpecAsync(string overrides)
    {
        string members = $$"""{"datasetId": "{{await DatasetAsync()}}", "target": "y", "loss": "mse", "epochs": 1""";
        return overrides.Length == 0 ? members + "}" : $"{members}, {overrides}}}";
    }

    private Task<long> RowsAsync() => service.Database.ScalarAsync<long>("SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM datasets)");

    [Fact]
    public async Task Created_after_with_any_utc_offset_filters_by_the_same_instant()
    {
        var job = await _client.SubmitAsync(TestData.LinearSpec(await DatasetAsync(), epochs: 1));
        var created = DateTimeOffset.Parse((string)job["createdAt"]!, System.Globalization.CultureInfo.InvariantCulture);
        string Query(DateTimeOffset at, int hours) =>
            Uri.EscapeDataString(at.ToOffset(TimeSpan.FromHours(hours)).ToString("yyyy-MM-ddTHH:mm:ss.fffffffzzz", System.Globalization.CultureInfo.InvariantCulture));

        var before = await _client.GetJsonAsync($"/api/jobs?datasetId={await DatasetAsync()}&limit=100&createdAfter={Query(created.AddSeconds(-1), 1)}");
        var after = await _client.GetJsonAsync($"/api/jobs?datasetId={await DatasetAsync()}&limit=100&createdAfter={Query(created.AddSeconds(1), -7)}");

        Assert.Contains(job.Id(), before["items"]!.AsArray().Select(j => (string?)j!["id"]));
        Assert.DoesNotContain(job.Id(), after["items"]!.AsArray().Select(j => (string?)j!["id"]));
        await _client.WaitForEndAsync(job.Id());
    }

    public static TheoryData<string, string> BadTextInSpecs => new()
    {
        { """ "model": {"type": "linear", "activation": "\u0000"} """, "model.activation" },
        { """ "model": {"type": "mlp", "hiddenLayers": [4], "activation": "re\u0000lu"} """, "model.activation" },
        { """ "target": "\ud800" """, "target" },
        { """ "target": ["y", "\udc00x"] """, "target[1]" },
        { """ "loss": {"name": "\ud800"} """, "loss.name" },
        { """ "loss": {"terms": [{"name": "mse"}, {"name": "\u0000"}]} """, "loss.terms[1].name" },
        { """ "loss": {"name": "huber", "del\u0000ta": 1} """, "loss" },
        { """ "features": ["x1", "\u0000"] """, "features[1]" },
        { """ "missing": "\ud800" """, "missing" },
        { """ "classWeights": {"\u0000": 1} """, "classWeights" },
    };

    [Theory]
    [MemberData(nameof(BadTextInSpecs))]
    public async Task Nul_and_lone_surrogates_anywhere_in_a_spec_are_refused_naming_the_field(string member, string field)
    {
        long rows = await RowsAsync();

        var response = await PostJsonAsync("/api/jobs", await SpecAsync(member));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "request.invalid_text", field);
        Assert.Contains(field, (string?)problem["detail"]);
        Assert.Equal(rows, await RowsAsync());
    }

    [Fact]
    public async Task Invalid_utf8_bytes_inside_json_strings_are_refused_as_invalid_text()
    {
        foreach (var (member, field) in new[] { ("\"missing\": \"XX\"", "missing"), ("\"target\": \"XX\"", "target"), ("\"loss\": {\"name\": \"XX\"}", "loss.name") })
        {
            var bytes = Encoding.UTF8.GetBytes(await SpecAsync(member));
            int at = Array.IndexOf(bytes, (byte)'X');
            (bytes[at], bytes[at + 1]) = (0xC3, 0x28); // a lead byte followed by a byte that cannot continue it
            var content = new ByteArrayContent(bytes);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");

            await (await _client.PostAsync("/api/jobs", content)).AssertProblemAsync(HttpStatusCode.BadRequest, "request.invalid_text", field);
        }
    }

    [Fact]
    public async Task Bad_text_in_predict_rows_and_loss_requests_is_refused_too()
    {
        string job = await FinishedJobAsync();

        await (await PostJsonAsync($"/api/jobs/{job}/predict", """{"rows": [{"x1": 1, "x2": "\ud800"}]}"""))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "request.invalid_text", "rows[0].x2");
        await (await PostJsonAsync($"/api/jobs/{job}/predict", """{"rows": [{"x1": 1, "x2\u0000": 2}]}"""))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "request.invalid_text");
        await (await PostJsonAsync("/api/losses/evaluate", """{"loss": "\ud800", "predictions": [1], "targets": [1]}"""))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "request.invalid_text", "loss");
    }

    public static TheoryData<string, string, string?> UnknownFields => new()
    {
        { """ "optimizer": {"name": "sgd", "learning_rate": 0.5} """, "optimizer.learning_rate", "learningRate" },
        { """ "epoch": 3 """, "epoch", "epochs" },
        { """ "validation": {"fractoin": 0.2} """, "validation.fractoin", "fraction" },
        { """ "model": {"type": "mlp", "hiddenLayers": [4], "hidden_layers": [8]} """, "model.hidden_layers", "hiddenLayers" },
        { """ "earlyStopping": {"min_delta": 0.1}, "validation": {"fraction": 0.2} """, "earlyStopping.min_delta", "minDelta" },
        { """ "colour": "blue" """, "colour", null },
    };

    [Theory]
    [MemberData(nameof(UnknownFields))]
    public async Task An_unknown_field_is_refused_with_the_closest_known_name(string member, string field, string? suggestion)
    {
        long rows = await RowsAsync();

        var response = await PostJsonAsync("/api/jobs", await SpecAsync(member));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "request.unknown_field", field);
        Assert.Equal(suggestion, (string?)problem["suggestion"]);
        if (field.Contains('_'))
        {
            Assert.Contains("camelCase", (string?)problem["detail"]);
        }
        Assert.Equal(rows, await RowsAsync());
    }

    [Fact]
    public async Task Unknown_fields_are_refused_by_every_json_endpoint()
    {
        string job = await FinishedJobAsync();

        await (await PostJsonAsync($"/api/jobs/{job}/predict", """{"rows": [{"x1": 1, "x2": 2}], "row": []}"""))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "request.unknown_field", "row");
        var problem = await (await PostJsonAsync("/api/losses/evaluate", """{"loss": "mse", "predictions": [1], "targets": [1], "from_logits": true}"""))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "request.unknown_field", "from_logits");
        Assert.Equal("fromLogits", (string?)problem["suggestion"]);
    }

    public static TheoryData<string, string, string> OutOfRange => new()
    {
        { """ "optimizer": {"learningRate": 1e308} """, "job.invalid_learning_rate", "optimizer.learningRate" },
        { """ "optimizer": {"learningRate": 1e400} """, "job.invalid_learning_rate", "optimizer.learningRate" },
        { """ "optimizer": {"learningRate": "Infinity"} """, "job.invalid_learning_rate", "optimizer.learningRate" },
        { """ "optimizer": {"learningRate": 10.5} """, "job.invalid_learning_rate", "optimizer.learningRate" },
        { """ "regularization": {"l2": "Infinity"} """, "job.invalid_regularization", "regularization" },
        { """ "regularization": {"l1": 1e308} """, "job.invalid_regularization", "regularization" },
        { """ "optimizer": {"epsilon": 1e308} """, "job.invalid_optimizer", "optimizer.epsilon" },
        { """ "optimizer": {"epsilon": "NaN"} """, "job.invalid_optimizer", "optimizer.epsilon" },
        { """ "optimizer": {"name": "adamw", "weightDecay": 1e308} """, "job.invalid_optimizer", "optimizer.weightDecay" },
        { """ "optimizer": {"gradientClipNorm": "Infinity"} """, "job.invalid_optimizer", "optimizer.gradientClipNorm" },
        { """ "earlyStopping": {"minDelta": 1e308}, "validation": {"fraction": 0.2} """, "job.invalid_early_stopping", "earlyStopping.minDelta" },
        { """ "earlyStopping": {"minDelta": "Infinity"}, "validation": {"fraction": 0.2} """, "job.invalid_early_stopping", "earlyStopping.minDelta" },
        { """ "schedule": {"name": "step", "stepSize": 2000000} """, "job.invalid_schedule", "schedule.stepSize" },
        { """ "schedule": {"name": "cosine", "minLearningRate": 1e308} """, "job.invalid_schedule", "schedule.minLearningRate" },
        { """ "schedule": {"name": "reduce_on_plateau", "threshold": "Infinity"} """, "job.invalid_schedule", "schedule.threshold" },
        { """ "schedule": {"name": "cosine", "warmupEpochs": 2000000} """, "job.invalid_schedule", "schedule" },
    };

    [Theory]
    [MemberData(nameof(OutOfRange))]
    public async Task Every_number_in_a_spec_has_a_finite_upper_bound(string member, string code, string field)
    {
        await (await PostJsonAsync("/api/jobs", await SpecAsync(member))).AssertProblemAsync(HttpStatusCode.BadRequest, code, field);
    }

    public static TheoryData<string, string> NotApplicable => new()
    {
        { """ "model": {"type": "linear", "activation": "relu"} """, "model.activation" },
        { """ "model": {"activation": "relu"} """, "model.activation" },
        { """ "model": {"type": "linear", "dropout": -1} """, "model.dropout" },
        { """ "model": {"type": "linear", "dropout": "NaN"} """, "model.dropout" },
        { """ "model": {"type": "linear", "hiddenLayers": [8]} """, "model.hiddenLayers" },
        { """ "optimizer": {"name": "adam", "momentum": 0.9} """, "optimizer.momentum" },
        { """ "optimizer": {"momentum": 0.9} """, "optimizer.momentum" },
        { """ "optimizer": {"name": "sgd", "beta1": 0.9} """, "optimizer.beta1" },
        { """ "optimizer": {"name": "adam", "alpha": 0.9} """, "optimizer.alpha" },
        { """ "optimizer": {"name": "sgd", "epsilon": 0.001} """, "optimizer.epsilon" },
        { """ "schedule": {"name": "cosine", "stepSize": 3} """, "schedule.stepSize" },
        { """ "schedule": {"name": "step", "patience": 3} """, "schedule.patience" },
        { """ "schedule": {"gamma": 0.5} """, "schedule.gamma" },
    };

    [Theory]
    [MemberData(nameof(NotApplicable))]
    public async Task A_field_that_does_not_apply_to_the_chosen_model_optimizer_or_schedule_is_refused(string member, string field)
    {
        await (await PostJsonAsync("/api/jobs", await SpecAsync(member))).AssertProblemAsync(HttpStatusCode.BadRequest, "job.not_applicable", field);
    }

    [Theory]
    [InlineData("1e400")]
    [InlineData("1e39")]
    [InlineData("-1e39")]
    [InlineData("\"Infinity\"")]
    [InlineData("\"-Infinity\"")]
    public async Task Predict_refuses_every_non_finite_input_alike(string value)
    {
        string job = await FinishedJobAsync();

        var response = await PostJsonAsync($"/api/jobs/{job}/predict", $$"""{"rows": [{"x1": 0.5, "x2": {{value}}}]}""");

        await response.AssertProblemAsync(HttpStatusCode.BadRequest, "predict.invalid_value", "rows[0]");
    }

    [Theory]
    [InlineData("POST", "/api/jobs", """{"epochs": "many"}""", "epochs", "a whole number")]
    [InlineData("POST", "/api/jobs", """{"epochs": 1.5}""", "epochs", "a whole number")]
    [InlineData("POST", "/api/jobs", """{"datasetId": 5}""", "datasetId", "an id")]
    [InlineData("POST", "/api/jobs", """{"optimizer": 5}""", "optimizer", "an object")]
    [InlineData("POST", "/api/jobs", """{"features": [1]}""", "features[0]", "a string")]
    [InlineData("POST", "/api/jobs", """{"maxRuntime": 5}""", "maxRuntime", "a duration")]
    [InlineData("POST", "/api/jobs", """{"standardize": "maybe"}""", "standardize", "true or false")]
    [InlineData("POST", "/api/jobs", "[1, 2]", null, "an object")]
    [InlineData("POST", "/api/jobs", "", null, "required")]
    [InlineData("GET", "/api/jobs?limit=ten", null, "limit", "a whole number")]
    [InlineData("GET", "/api/jobs?createdAfter=yesterday", null, "createdAfter", "date and time")]
    [InlineData("GET", "/api/jobs?datasetId=17", null, "datasetId", "an id")]
    public async Task Binding_errors_say_what_the_field_must_be_without_dotnet_type_names(string method, string url, string? body, string? field, string expected)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), url);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        var response = await _client.SendAsync(request);

        string code = body is { Length: > 0 } ? "request.invalid_json" : "request.invalid";
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, code, field);
        string detail = (string)problem["detail"]!;
        Assert.Contains(expected, detail);
        Assert.DoesNotContain("System.", detail);
        Assert.DoesNotContain("`", detail);
        Assert.DoesNotContain("Nullable", detail);
    }

    [Fact]
    public async Task Nesting_ten_thousand_levels_deep_is_a_400_with_a_code_on_every_json_endpoint()
    {
        string job = await FinishedJobAsync();
        string deep = new string('[', 10_000) + new string(']', 10_000);
        foreach (var (url, body) in new[]
        {
            ("/api/jobs", deep), ("/api/jobs", $$"""{"target": {{deep}}}"""), ($"/api/jobs/{job}/predict", $$"""{"rows": [{"x1": {{deep}}}]}"""),
            ("/api/losses/evaluate", $$"""{"loss": "mse", "predictions": {{deep}}, "targets": [1]}"""),
        })
        {
            var problem = await (await PostJsonAsync(url, body)).AssertProblemAsync(HttpStatusCode.BadRequest, "request.invalid_json");
            Assert.DoesNotContain("System.", (string?)problem["detail"]);
        }
    }

    [Fact]
    public async Task Every_swagger_request_example_passes_the_strict_reading()
    {
        string job = await FinishedJobAsync();
        string blobs = (await _client.UploadAsync(TestData.Blobs(60, seed: 72))).Id();
        var paths = (await _client.GetJsonAsync("/swagger/v1/swagger.json"))["paths"]!.AsObject();
        int examples = 0;
        foreach (var (path, operations) in paths)
        {
            foreach (var (method, operation) in operations!.AsObject())
            {
                if (operation?["requestBody"]?["content"]?["application/json"]?["example"] is not { } example)
                {
                    continue;
                }
                examples++;
                string body = example.ToJsonString().Replace("00000000-0000-0000-0000-000000000000", blobs);
                var response = await PostJsonAsync(path.Replace("{id}", job), body);
                string text = await response.Content.ReadAsStringAsync();
                string? code = (int)response.StatusCode >= 400 ? (string?)JsonNode.Parse(text)?["code"] : null;
                // The examples name columns of their own datasets (iris): refusals about data are fine, about reading are not.
                Assert.False(code is not null && (code.StartsWith("request.", StringComparison.Ordinal) || code == "job.not_applicable"),
                    $"{method} {path}: {(int)response.StatusCode} {text}");
            }
        }
        Assert.True(examples >= 3, $"{examples} examples");
    }

    /// <summary>Bodies of every hostile class, sent to every route.</summary>
    private static IEnumerable<(string Name, string ContentType, byte[] Body)> HostileBodies()
    {
        var random = new Random(11);
        var noise = new byte[512];
        random.NextBytes(noise);
        yield return ("random bytes", "application/json", noise);
        yield return ("random bytes as csv", "text/csv", noise);
        yield return ("deep nesting", "application/json", Encoding.UTF8.GetBytes(new string('[', 10_000) + new string(']', 10_000)));
        yield return ("deep objects", "application/json", Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("{\"a\":", 5_000)) + "1" + new string('}', 5_000)));
        yield return ("huge numbers", "application/json", Encoding.UTF8.GetBytes("""{"epochs": 1e400, "batchSize": 99999999999999999999, "seed": -1e308, "rows": [{"x1": 1e400}], "predictions": [1e400], "targets": [1e39]}"""));
        yield return ("wrong types", "application/json", Encoding.UTF8.GetBytes("""{"datasetId": [], "target": {}, "loss": 5, "epochs": "x", "rows": "all", "predictions": {"a": 1}}"""));
        yield return ("a bare string", "application/json", Encoding.UTF8.GetBytes("\"hello\""));
        yield return ("null", "application/json", Encoding.UTF8.GetBytes("null"));
        yield return ("nul text", "application/json", Encoding.UTF8.GetBytes("""{"target": "\u0000", "loss": "\ud800", "rows": [{"\u0000": 1}]}"""));
        yield return ("unknown fields", "application/json", Encoding.UTF8.GetBytes("""{"learning_rate": 1, "zzz": {"a": 1}}"""));
        yield return ("xml", "application/xml", Encoding.UTF8.GetBytes("<job><epochs>1</epochs></job>"));
        yield return ("form", "application/x-www-form-urlencoded", Encoding.UTF8.GetBytes("epochs=1&target=y"));
        yield return ("plain text", "text/plain", Encoding.UTF8.GetBytes("epochs=1"));
        yield return ("nothing", "application/json", []);
    }

    [Fact]
    public async Task Every_route_answers_hostile_bodies_and_queries_with_4xx_problems_and_stores_nothing()
    {
        string job = await FinishedJobAsync();
        var routes = service.Factory.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? []).Select(m => (Method: m, Route: e.RoutePattern.RawText!)))
            .Where(r => r.Route.StartsWith("/api", StringComparison.Ordinal))
            .Distinct().ToList();
        Assert.True(routes.Count >= 17, string.Join(", ", routes));
        var failures = new List<string>();
        foreach (var (method, route) in routes)
        {
            foreach (string id in new[] { job, Guid.NewGuid().ToString() })
            {
                string url = route.Replace("{id:guid}", id) + "?limit=-1&afterEpoch=x&maxPoints=1e400&jobIds=%00&metric=%ED%A0%80&status=%00&createdAfter=9999-99-99";
                foreach (var (name, contentType, body) in method == "GET" ? HostileBodies().Take(1) : HostileBodies())
                {
                    long rows = await RowsAsync();
                    var request = new HttpRequestMessage(new HttpMethod(method), url) { Content = new ByteArrayContent(body) };
                    request.Content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse(contentType);
                    var response = await _client.SendAsync(request);
                    string text = await response.Content.ReadAsStringAsync();
                    int status = (int)response.StatusCode;
                    string? code = status >= 400 && response.Content.Headers.ContentType?.MediaType == "application/problem+json"
                        ? (string?)JsonNode.Parse(text)?["code"] : null;
                    if (status >= 500 || (status >= 400 && code is null) || (status >= 400 && await RowsAsync() != rows))
                    {
                        failures.Add($"{method} {route} ({name}, id {(id == job ? "of a job" : "unknown")}): {status} {text[..Math.Min(text.Length, 300)]}");
                    }
                }
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }
}
