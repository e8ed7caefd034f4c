using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Npgsql;
using TrainingService.Server.Configuration;
using TrainingService.ProcessHarness;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>
/// The browser surfaces that need a process of their own: CORS with allowed origins, no-auth mode against forged
/// cross-site requests, and a database that is down (a process that loses it without taking the shared server along).
/// </summary>
public sealed class SecuritySurfaceProcessTests
{
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(90);
    private const string Dashboard = "https://dash.example";
    private const string Attacker = "https://attacker.example";

    [Fact]
    public async Task An_allowed_origin_gets_preflights_for_both_key_headers_and_reads_answers_and_other_origins_get_nothing()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var api = ServiceFixture.StartProcess("api", database.ConnectionString, new Dictionary<string, string>
        {
            ["Cors:AllowedOrigins:0"] = Dashboard,
        });
        await api.WaitReadyAsync(Startup);
        using var anonymous = new HttpClient { BaseAddress = api.Client.BaseAddress };

        foreach (var (method, path, headers) in new[]
        {
            ("POST", "/api/jobs", "authorization, content-type, idempotency-key"),
            ("GET", $"/api/jobs/{Guid.NewGuid()}/history", "x-api-key, if-none-match"),
            ("DELETE", "/api/keys/0000000000000001", "authorization"),
        })
        {
            var allowed = await anonymous.SendAsync(Preflight(path, Dashboard, method, headers));
            var other = await anonymous.SendAsync(Preflight(path, Attacker, method, headers));

            Assert.True(allowed.StatusCode is HttpStatusCode.NoContent or HttpStatusCode.OK, $"{method} {path}: {(int)allowed.StatusCode}");
            Assert.Equal(Dashboard, Header(allowed, "Access-Control-Allow-Origin"));
            Assert.Contains(method, Header(allowed, "Access-Control-Allow-Methods") ?? "");
            foreach (string header in headers.Split(", "))
            {
                Assert.Contains(header, Header(allowed, "Access-Control-Allow-Headers") ?? "", StringComparison.OrdinalIgnoreCase);
            }
            Assert.Null(Header(other, "Access-Control-Allow-Origin"));
            Assert.Null(Header(other, "Access-Control-Allow-Headers"));
        }
        var read = new HttpRequestMessage(HttpMethod.Get, "/api/jobs");
        read.Headers.Add("Origin", Dashboard);
        var answer = await api.Client.SendAsync(read);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal(Dashboard, Header(answer, "Access-Control-Allow-Origin"));
        Assert.Null(Header(answer, "Access-Control-Allow-Credentials")); // keys travel in headers; no cookies to send
        var foreign = new HttpRequestMessage(HttpMethod.Get, "/api/jobs");
        foreign.Headers.Add("Origin", Attacker);
        Assert.Null(Header(await api.Client.SendAsync(foreign), "Access-Control-Allow-Origin"));
    }

    [Theory]
    [InlineData("*")]
    [InlineData("https://dash.example/app")]
    [InlineData("dash.example")]
    [InlineData("ftp://dash.example")]
    [InlineData("https://*.example")]
    public void An_allowed_origin_that_is_not_an_origin_is_refused_at_start(string origin)
    {
        var options = new CorsOptions { AllowedOrigins = ["https://fine.example:8443", origin] };
        var results = new List<ValidationResult>();

        Assert.False(Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true));
        Assert.Contains(origin, Assert.Single(results).ErrorMessage);
    }

    [Fact]
    public async Task In_no_auth_mode_a_page_on_another_origin_can_change_nothing_and_local_clients_still_can()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var api = ServiceFixture.StartProcess("api", database.ConnectionString, new Dictionary<string, string>
        {
            ["Auth:Mode"] = "none",
            ["Cors:AllowedOrigins:0"] = Dashboard,
        });
        await api.WaitReadyAsync(Startup);
        using var browser = new HttpClient { BaseAddress = api.Client.BaseAddress };
        var dataset = await browser.UploadAsync(TestData.Linear(20, seed: 903)); // no Origin: curl, scripts
        var job = await browser.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 1));

        foreach (var (method, path, body) in new (string, string, Func<HttpContent>)[]
        {
            ("POST", "/api/datasets?name=forged", () => new MultipartFormDataContent { { new StringContent("x1,y\n1,2\n3,4\n"), "file", "data.csv" } }),
            ("POST", "/api/datasets?name=forged", () => new StringContent("x1,y\n1,2\n3,4\n", Encoding.UTF8, "text/plain")),
            ("POST", "/api/jobs", () => new StringContent($$"""{"datasetId": "{{dataset.Id()}}", "target": "y", "loss": "mse", "epochs": 1}""", Encoding.UTF8, "text/plain")),
            ("POST", $"/api/jobs/{job.Id()}/cancel", () => new FormUrlEncodedContent(new Dictionary<string, string> { ["a"] = "b" })),
            ("POST", $"/api/jobs/{job.Id()}/retry", () => new StringContent("", Encoding.UTF8, "text/plain")),
            ("DELETE", $"/api/datasets/{dataset.Id()}", () => new StringContent("")),
        })
        {
            var forged = new HttpRequestMessage(new HttpMethod(method), path) { Content = body() };
            forged.Headers.Add("Origin", Attacker);

            await (await browser.SendAsync(forged)).AssertProblemAsync(HttpStatusCode.Forbidden, "auth.cross_origin");
        }
        Assert.Equal(1L, await database.ScalarAsync<long>("SELECT count(*) FROM datasets"));
        Assert.Equal(1L, await database.ScalarAsync<long>("SELECT count(*) FROM jobs"));
        foreach (string origin in new[] { Dashboard, $"http://127.0.0.1:{api.Port}" })
        {
            var upload = new HttpRequestMessage(HttpMethod.Post, $"/api/datasets?name=from-{Guid.NewGuid():N}")
            {
                Content = new StringContent(TestData.Linear(20, seed: origin.Length), Encoding.UTF8, "text/csv"),
            };
            upload.Headers.Add("Origin", origin);
            Assert.Equal(HttpStatusCode.Created, (await browser.SendAsync(upload)).StatusCode);
        }
    }

    [Fact]
    public async Task While_the_database_is_down_no_response_on_any_route_leaks_internals_or_keys_and_none_is_a_500()
    {
        await using var database = await TestDatabase.CreateAsync();
        var (proxy, viaProxy) = TcpProxy.ToPostgres(database.ConnectionString);
        await using var _ = proxy;
        await using var api = ServiceFixture.StartProcess("api", viaProxy);
        await api.WaitReadyAsync(Startup);
        var document = await api.Client.GetJsonAsync("/swagger/v1/swagger.json");
        var dataset = await api.Client.UploadAsync(TestData.Linear(20, seed: 904));

        proxy.Stop();

        using var anonymous = new HttpClient { BaseAddress = api.Client.BaseAddress };
        using var wrong = new HttpClient { BaseAddress = api.Client.BaseAddress };
        wrong.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", SecuritySurfaceTests.WrongSecret);
        var statuses = new Dictionary<int, int>();
        foreach (var (method, path, _) in SecuritySurfaceTests.Operations(document))
        {
            string url = path.Replace("{id}", path.Contains("keys") ? "0000000000000001" : path.Contains("datasets") ? dataset.Id() : Guid.NewGuid().ToString());
            foreach (var (query, contentType, body) in SecuritySurfaceTests.BadInputs(method).Take(3))
            {
                foreach (var client in new[] { api.Client, anonymous, wrong })
                {
                    var request = new HttpRequestMessage(new HttpMethod(method), url + query);
                    if (body is not null)
                    {
                        request.Content = new ByteArrayContent(body);
                        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType!);
                    }
                    var response = await client.SendAsync(request);

                    await SecuritySurfaceTests.AssertNoLeakAsync(response, $"{method} {url}{query} (database down)");
                    Assert.True((int)response.StatusCode < 500 || response.StatusCode == HttpStatusCode.ServiceUnavailable,
                        $"{method} {url}{query}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
                    statuses[(int)response.StatusCode] = statuses.GetValueOrDefault((int)response.StatusCode) + 1;
                }
            }
        }
        Assert.True(statuses.GetValueOrDefault(503) > 20, string.Join(", ", statuses.Select(s => $"{s.Value} × {s.Key}")));
        Assert.DoesNotContain("Unhandled error", api.Output);
    }

    private static HttpRequestMessage Preflight(string path, string origin, string method, string headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Options, path);
        request.Headers.Add("Origin", origin);
        request.Headers.Add("Access-Control-Request-Method", method);
        request.Headers.Add("Access-Control-Request-Headers", headers);
        return request;
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values) ? string.Join(", ", values) : null;
}
