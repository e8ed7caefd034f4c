using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>
/// What a browser and a Swagger user meet: the key in the OpenAPI document, security headers, a dashboard that runs under
/// its content security policy, forged cross-site requests refused, and no response that leaks internals or keys.
/// CORS with allowed origins, no-auth mode and a database that is down need processes of their own:
/// <see cref="SecuritySurfaceProcessTests"/>.
/// </summary>
[Collection(ServiceTests.Name)]
public sealed partial class SecuritySurfaceTests(ServiceFixture service)
{
    private const string Attacker = "https://attacker.example";

    private readonly HttpClient _client = service.Client;

    // ---- Swagger ----------------------------------------------------------------------------------------------

    [Fact]
    public async Task The_openapi_document_has_both_key_schemes_and_every_operation_requires_one_with_its_role_and_refusals()
    {
        var document = await _client.GetJsonAsync("/swagger/v1/swagger.json");

        var schemes = document["components"]!["securitySchemes"]!;
        Assert.Equal("http", (string?)schemes["bearer"]!["type"]);
        Assert.Equal("bearer", (string?)schemes["bearer"]!["scheme"]);
        Assert.Equal("apiKey", (string?)schemes["apiKeyHeader"]!["type"]);
        Assert.Equal("header", (string?)schemes["apiKeyHeader"]!["in"]);
        Assert.Equal("X-Api-Key", (string?)schemes["apiKeyHeader"]!["name"]);
        int operations = 0;
        foreach (var (method, path, operation) in Operations(document))
        {
            operations++;
            var names = operation["security"]!.AsArray().SelectMany(r => r!.AsObject().Select(p => p.Key)).ToList();
            Assert.True(names.Contains("bearer") && names.Contains("apiKeyHeader"), $"{method} {path}: security {operation["security"]?.ToJsonString()}");
            foreach (string status in new[] { "401", "403", "404" })
            {
                Assert.True(operation["responses"]?[status] is not null, $"{method} {path} does not document {status}");
            }
            Assert.Matches(RoleLine(), (string?)operation["description"] ?? "");
        }
        Assert.True(operations >= 20, $"{operations} operations");
        var paths = document["paths"]!;
        Assert.Contains("Requires role: member", (string?)paths["/api/jobs/{id}/cancel"]!["post"]!["description"]);
        Assert.Contains("Requires role: viewer", (string?)paths["/api/jobs/{id}/history"]!["get"]!["description"]);
        Assert.Contains("Requires role: admin", (string?)paths["/api/keys"]!["post"]!["description"]);
    }

    // ---- Headers ----------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("/")]
    [InlineData("/index.html")]
    [InlineData("/dashboard.js")]
    [InlineData("/lib/uplot/uPlot.iife.min.js")]
    [InlineData("/api/jobs")]
    [InlineData("/api/jobs/00000000-0000-0000-0000-000000000001")]
    [InlineData("/api/no-such-route")]
    [InlineData("/swagger/index.html")]
    [InlineData("/health/live")]
    public async Task Every_response_denies_framing_and_sniffing_and_sends_no_referrer(string path)
    {
        var response = await _client.GetAsync(path);

        Assert.Equal("nosniff", Header(response, "X-Content-Type-Options"));
        Assert.Equal("DENY", Header(response, "X-Frame-Options"));
        Assert.Equal("no-referrer", Header(response, "Referrer-Policy"));
        Assert.Contains("frame-ancestors 'none'", Header(response, "Content-Security-Policy"));
    }

    [Fact]
    public async Task The_dashboards_policy_allows_no_inline_code_and_only_swagger_ui_gets_a_looser_one()
    {
        string dashboard = Header(await _client.GetAsync("/"), "Content-Security-Policy")!;
        string swagger = Header(await _client.GetAsync("/swagger/index.html"), "Content-Security-Policy")!;
        string api = Header(await _client.GetAsync("/api/jobs"), "Content-Security-Policy")!;

        Assert.Contains("script-src 'self'", dashboard);
        Assert.Contains("style-src 'self'", dashboard);
        Assert.Contains("connect-src 'self'", dashboard);
        Assert.DoesNotContain("unsafe", dashboard);
        Assert.Contains("'unsafe-inline'", swagger);
        Assert.StartsWith("default-src 'none'", api);
        Assert.DoesNotContain("unsafe", api);
    }

    [Fact]
    public async Task Api_answers_with_tenant_data_are_not_stored_by_caches_errors_and_304s_included()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(20, seed: 901));
        var ok = await _client.GetAsync($"/api/datasets/{dataset.Id()}");
        var missing = await _client.GetAsync($"/api/jobs/{Guid.NewGuid()}");
        var refused = await service.CreateClient(null).GetAsync("/api/jobs");
        var job = await _client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 1));
        await _client.WaitForEndAsync(job.Id()); // a finished job's history no longer changes: the second read is a 304
        var first = await _client.GetAsync($"/api/jobs/{job.Id()}/history?afterEpoch=1000");
        var conditional = new HttpRequestMessage(HttpMethod.Get, $"/api/jobs/{job.Id()}/history?afterEpoch=1000");
        conditional.Headers.IfNoneMatch.Add(first.Headers.ETag!);
        var notModified = await _client.SendAsync(conditional);

        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        foreach (var response in new[] { ok, missing, refused, first, notModified })
        {
            Assert.True(response.Headers.CacheControl?.NoStore == true, $"{response.RequestMessage!.RequestUri}: {response.Headers.CacheControl}");
        }
    }

    [Fact]
    public async Task Cors_is_off_by_default_so_no_origin_gets_a_preflight_or_reads_an_answer()
    {
        var preflight = new HttpRequestMessage(HttpMethod.Options, "/api/jobs");
        preflight.Headers.Add("Origin", Attacker);
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "authorization, content-type");
        var read = new HttpRequestMessage(HttpMethod.Get, "/api/jobs");
        read.Headers.Add("Origin", Attacker);

        foreach (var response in new[] { await _client.SendAsync(preflight), await _client.SendAsync(read) })
        {
            Assert.Null(Header(response, "Access-Control-Allow-Origin"));
            Assert.Null(Header(response, "Access-Control-Allow-Headers"));
        }
    }

    // ---- The dashboard under its policy -----------------------------------------------------------------------

    [Fact]
    public async Task The_dashboard_has_no_inline_script_style_or_handler_that_its_policy_would_block()
    {
        string html = await _client.GetStringAsync("/");
        var (modules, js) = await DashboardScriptsAsync();
        string uplot = await _client.GetStringAsync("/lib/uplot/uPlot.iife.min.js");

        Assert.Contains("sweeps.js", modules); // the imports were followed
        Assert.DoesNotMatch(InlineScript(), html);
        Assert.DoesNotContain("<style", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotMatch(StyleAttribute(), html);
        Assert.DoesNotMatch(HandlerAttribute(), html);
        // Markup the script writes is held to the same rule: a style="…" or onclick="…" in it would be blocked.
        Assert.DoesNotMatch(StyleAttribute(), js);
        Assert.DoesNotMatch(HandlerAttribute(), js);
        foreach (string code in new[] { js, uplot })
        {
            Assert.DoesNotContain("eval(", code);
            Assert.DoesNotContain("new Function(", code);
        }
        foreach (Match reference in Reference().Matches(html))
        {
            string url = reference.Groups[1].Value;
            Assert.False(url.Contains("//", StringComparison.Ordinal), $"{url} is not on this origin");
            Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync(url.StartsWith('/') ? url : "/" + url)).StatusCode);
        }
    }

    [Fact]
    public async Task The_dashboard_keeps_the_key_for_the_tab_only_and_sends_it_in_a_header_never_in_a_url()
    {
        var (_, js) = await DashboardScriptsAsync();

        Assert.Contains("sessionStorage", js);
        // Chart choices (log scale, smoothing, x axis) outlive the tab in localStorage, under their own prefix; the key never does.
        var kept = Regex.Matches(js, @"localStorage\.\w+\(([^,)]*)").Select(m => m.Groups[1].Value).ToList();
        Assert.NotEmpty(kept);
        Assert.All(kept, key => Assert.StartsWith("`${PREFERENCE_PREFIX}", key, StringComparison.Ordinal));
        Assert.Contains("const PREFERENCE_PREFIX = 'trainingservice.chart.';", js);
        Assert.DoesNotContain("document.cookie", js);
        Assert.Contains("Authorization: `Bearer ${", js);
        Assert.DoesNotContain("new EventSource", js); // it cannot send the header; the dashboard reads the stream with fetch()
        Assert.DoesNotMatch(KeyInQuery(), js);
        Assert.Contains("history.replaceState", js); // the first start's #key=… leaves the address bar
        Assert.Contains("'/api/me'", js);
    }

    [Theory]
    [InlineData("key")]
    [InlineData("api_key")]
    [InlineData("access_token")]
    public async Task A_key_in_the_query_string_is_not_a_credential(string parameter)
    {
        var response = await service.CreateClient(null).GetAsync($"/api/jobs?{parameter}={ServiceFixture.OwnerKey}");

        await response.AssertProblemAsync(HttpStatusCode.Unauthorized, "auth.missing_key");
    }

    // ---- Cross-site request forgery ---------------------------------------------------------------------------

    /// <summary>The bodies a page on another site can send without a preflight: a form's three encodings.</summary>
    private static IEnumerable<(string Name, Func<HttpContent> Body)> CrossSiteForms() =>
    [
        ("text/plain", () => new StringContent("{\"datasetId\": \"x\", \"target\": \"y\"}=", Encoding.UTF8, "text/plain")),
        ("form-urlencoded", () => new FormUrlEncodedContent(new Dictionary<string, string> { ["target"] = "y", ["epochs"] = "1" })),
        ("multipart", () => new MultipartFormDataContent
        {
            { new StringContent("x1,y\n1,2\n3,4\n"), "file", "data.csv" },
            { new StringContent("1"), "epochs" },
        }),
    ];

    private static HttpRequestMessage CrossSite(string method, string path, HttpContent body)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = body };
        request.Headers.Add("Origin", Attacker);
        request.Headers.Add("Sec-Fetch-Site", "cross-site");
        return request;
    }

    [Fact]
    public async Task A_cross_site_form_post_without_a_key_is_a_401_on_every_state_changing_route_and_changes_nothing()
    {
        var job = await LongJobs.StartAsync(_client);
        await _client.WaitForAsync(job.Id(), TimeSpan.FromSeconds(60), "running"); // the checks below end by asserting it still runs
        try
        {
            var routes = await StateChangingRoutesAsync(job.Id(), await LongJobs.DatasetAsync(_client));
            long before = await CountAsync();
            var anonymous = service.CreateClient(null);
            foreach (var (method, path) in routes)
            {
                foreach (var (name, body) in CrossSiteForms())
                {
                    var response = await anonymous.SendAsync(CrossSite(method, path, body()));

                    string text = await response.Content.ReadAsStringAsync();
                    Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{method} {path} as {name}: {(int)response.StatusCode} {text}");
                    Assert.Equal("auth.missing_key", (string?)JsonNode.Parse(text)!["code"]);
                    Assert.Null(Header(response, "Access-Control-Allow-Origin"));
                }
            }
            Assert.True(routes.Count >= 9, string.Join(", ", routes));
            Assert.Equal(before, await CountAsync());
            Assert.Equal("running", (string?)(await _client.GetJsonAsync($"/api/jobs/{job.Id()}"))["status"]);
        }
        finally
        {
            await LongJobs.EndAsync(_client, job.Id());
        }
    }

    [Fact]
    public async Task Job_key_and_other_json_routes_refuse_form_and_text_bodies_with_415_even_with_a_key()
    {
        var job = await LongJobs.StartAsync(_client);
        await _client.WaitForAsync(job.Id(), TimeSpan.FromSeconds(60), "running"); // the checks below end by asserting it still runs
        try
        {
            var routes = (await StateChangingRoutesAsync(job.Id(), await LongJobs.DatasetAsync(_client)))
                .Where(r => r.Path != "/api/datasets").ToList(); // an upload takes CSV: without a key it is a 401 (above)
            long before = await CountAsync();
            foreach (var (method, path) in routes)
            {
                foreach (var (name, body) in CrossSiteForms())
                {
                    var response = await _client.SendAsync(CrossSite(method, path, body()));

                    string text = await response.Content.ReadAsStringAsync();
                    Assert.True(response.StatusCode == HttpStatusCode.UnsupportedMediaType, $"{method} {path} as {name}: {(int)response.StatusCode} {text}");
                    Assert.Equal("request.unsupported_media_type", (string?)JsonNode.Parse(text)!["code"]);
                }
            }
            Assert.Equal(before, await CountAsync());
            Assert.Equal("running", (string?)(await _client.GetJsonAsync($"/api/jobs/{job.Id()}"))["status"]);
            // A JSON client, and one that sends no body at all, are unaffected.
            var cancel = await _client.PostAsync($"/api/jobs/{job.Id()}/cancel", null);
            Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        }
        finally
        {
            await LongJobs.EndAsync(_client, job.Id());
        }
    }

    /// <summary>Every non-GET operation of the OpenAPI document, with real ids where the route takes one (a live key of its own to revoke).</summary>
    private async Task<List<(string Method, string Path)>> StateChangingRoutesAsync(string jobId, string datasetId)
    {
        string keyId = await ThrowawayKeyAsync();
        var document = await _client.GetJsonAsync("/swagger/v1/swagger.json");
        return Operations(document).Where(o => o.Method != "GET")
            .Select(o => (o.Method, o.Path.Replace("{id}", o.Path.StartsWith("/api/datasets", StringComparison.Ordinal) ? datasetId
                : o.Path.StartsWith("/api/keys", StringComparison.Ordinal) ? keyId : jobId)))
            .ToList();
    }

    private async Task<string> ThrowawayKeyAsync()
    {
        var response = await _client.PostAsJsonAsync("/api/keys", new { role = "viewer", name = $"security-surface-{Guid.NewGuid():N}" });
        return (await Api.ReadAsync(response, HttpStatusCode.Created)).Id();
    }

    private Task<long> CountAsync() => service.Database.ScalarAsync<long>(
        "SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM datasets) + (SELECT count(*) FROM api_keys WHERE revoked_at IS NULL) " +
        "+ (SELECT count(*) FROM jobs WHERE status IN ('cancelling', 'cancelled'))");

    // ---- Nothing leaks ----------------------------------------------------------------------------------------

    [Fact]
    public async Task No_response_to_bad_requests_on_any_route_holds_a_stack_trace_sql_a_connection_string_or_a_key()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(30, seed: 902));
        var job = await _client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 1));
        await _client.WaitForEndAsync(job.Id());
        string keyId = await ThrowawayKeyAsync(); // never the owner key's id: DELETE /api/keys/{id} is on the list
        var document = await _client.GetJsonAsync("/swagger/v1/swagger.json");
        var clients = new[]
        {
            _client, service.CreateClient(null), service.CreateClient(WrongSecret), service.CreateClient("ts_" + new string('z', 60)),
        };
        int scanned = 0;
        foreach (var (method, path, _) in Operations(document))
        {
            foreach (string id in new[] { Guid.NewGuid().ToString(), "not-an-id", path.Contains("keys") ? keyId : path.Contains("datasets") ? dataset.Id() : job.Id() })
            {
                string url = path.Replace("{id}", id);
                if (url.EndsWith("/stream", StringComparison.Ordinal) && id == job.Id())
                {
                    continue; // a finished job's stream is a success; other ids cover its errors
                }
                foreach (var (query, contentType, body) in BadInputs(method))
                {
                    foreach (var client in clients)
                    {
                        var request = new HttpRequestMessage(new HttpMethod(method), url + query);
                        if (body is not null)
                        {
                            request.Content = new ByteArrayContent(body);
                            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType!);
                        }
                        if (client == _client)
                        {
                            request.Headers.Add("X-Api-Key", WrongSecret); // a key sent twice: neither may come back
                        }
                        var response = await client.SendAsync(request);
                        await AssertNoLeakAsync(response, $"{method} {url}{query}");
                        Assert.True((int)response.StatusCode < 500, $"{method} {url}{query}: {(int)response.StatusCode}");
                        scanned++;
                    }
                }
            }
        }
        Assert.True(scanned > 500, $"{scanned} responses");
    }

    /// <summary>The owner key's id with another secret: shaped like a key, so it would match the scan if echoed.</summary>
    internal const string WrongSecret = "ts_00000000000000ff_WrongSecretWrongSecretWrongSecretWrongSecre";

    internal static IEnumerable<(string Query, string? ContentType, byte[]? Body)> BadInputs(string method)
    {
        if (method is "GET" or "DELETE")
        {
            yield return ("", null, null);
            yield return ("?limit=-1&cursor=%00%ff&afterEpoch=x&jobIds=a,b&metric=%27;DROP&rows=1e9&maxPoints=0&status=zzz&tenant=A%20B", null, null);
            yield break;
        }
        yield return ("", "application/json", Encoding.UTF8.GetBytes("{\"target\": "));
        yield return ("", "application/json", Encoding.UTF8.GetBytes("""{"datasetId": [], "target": {}, "loss": 5, "epochs": "x", "rows": "all", "tenant": "Bad Tenant", "role": 7}"""));
        yield return ("", "application/json", Encoding.UTF8.GetBytes("""{"target": "\u0000", "name": "\ud800", "rows": [{"\u0000": 1}], "predictions": [1e400]}"""));
        yield return ("?name=%00&delimiter=xx", "text/csv", Encoding.UTF8.GetBytes("a,b\n1,\"2\n"));
        yield return ("", "text/plain", Encoding.UTF8.GetBytes("epochs=1"));
    }

    internal static async Task AssertNoLeakAsync(HttpResponseMessage response, string what)
    {
        string body = await response.Content.ReadAsStringAsync();
        string headers = string.Join("\n", response.Headers.Concat(response.Content.Headers).Select(h => $"{h.Key}: {string.Join(", ", h.Value)}"));
        foreach (var (name, text) in new[] { ("body", body), ("headers", headers) })
        {
            var leak = Leak().Match(text);
            Assert.False(leak.Success, $"{what} ({(int)response.StatusCode}): its {name} holds '{leak.Value}': {text[..Math.Min(text.Length, 2000)]}");
        }
    }

    // ---- Helpers ----------------------------------------------------------------------------------------------

    internal static IEnumerable<(string Method, string Path, JsonNode Operation)> Operations(JsonNode document) =>
        document["paths"]!.AsObject().SelectMany(path => path.Value!.AsObject()
            .Select(operation => (operation.Key.ToUpperInvariant(), path.Key, operation.Value!)));

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values) ? string.Join(", ", values) : null;

    [GeneratedRegex(@"Requires role: (viewer|member|admin|owner)\b")]
    private static partial Regex RoleLine();

    // dashboard.js and the modules it imports, transitively: all of them run under the dashboard's policy.
    private async Task<(List<string> Modules, string Code)> DashboardScriptsAsync()
    {
        var modules = new List<string> { "dashboard.js" };
        var code = new System.Text.StringBuilder();
        for (int i = 0; i < modules.Count; i++)
        {
            string text = await _client.GetStringAsync("/" + modules[i]);
            code.AppendLine(text);
            modules.AddRange(ModuleImport().Matches(text).Select(m => m.Groups[1].Value).Distinct().Where(m => !modules.Contains(m)).ToList());
        }
        return (modules, code.ToString());
    }

    [GeneratedRegex(@"from '\./([\w-]+\.js)'")]
    private static partial Regex ModuleImport();

    [GeneratedRegex(@"<script(?![^>]*\ssrc=)[^>]*>", RegexOptions.IgnoreCase)]
    private static partial Regex InlineScript();

    [GeneratedRegex(@"\sstyle\s*=", RegexOptions.IgnoreCase)]
    private static partial Regex StyleAttribute();

    [GeneratedRegex(@"<[^>]*\son[a-z]+\s*=", RegexOptions.IgnoreCase)]
    private static partial Regex HandlerAttribute();

    [GeneratedRegex(@"(?:src|href)=""([^""]+)""")]
    private static partial Regex Reference();

    [GeneratedRegex(@"[?&](?:key|api_key|apikey|token|access_token)=", RegexOptions.IgnoreCase)]
    private static partial Regex KeyInQuery();

    /// <summary>A .NET stack frame, SQL, Npgsql or a connection string's parts, an exception's type, or a whole key's shape.</summary>
    [GeneratedRegex(@"   at |\.cs:line|Exception\b|Npgsql|\bSELECT |\bINSERT INTO|\bUPDATE \w+ SET|\bDELETE FROM|Host=|Password|Username=|Database=|ts_[0-9a-f]{16}_[A-Za-z0-9_-]")]
    private static partial Regex Leak();
}
