using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using TrainingService.ProcessHarness;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>
/// Per-tenant quotas on the in-process service: the request rate per key, the upload size and the stored bytes. The
/// tenants here have small quotas in <see cref="ServiceFixture.Settings"/>; every other tenant has the defaults.
/// </summary>
[Collection(ServiceTests.Name)]
public sealed class QuotaTests(ServiceFixture service)
{
    private async Task<HttpClient> KeyAsync(string tenant, string role = "member")
    {
        var response = await service.Client.PostAsJsonAsync("/api/keys", new { tenant, role, name = $"quota test {Guid.NewGuid():N}" });
        var created = await Api.ReadAsync(response, HttpStatusCode.Created);
        return service.CreateClient((string)created["key"]!);
    }

    /// <summary>A CSV of about <paramref name="bytes"/> bytes, different for each <paramref name="seed"/>.</summary>
    private static string Csv(int bytes, int seed)
    {
        var csv = new StringBuilder("x,y\n");
        for (int i = 0; csv.Length < bytes; i++)
        {
            csv.Append(CultureInfo.InvariantCulture, $"{seed}.{i},{i % 7}\n");
        }
        return csv.ToString();
    }

    private static MultipartFormDataContent Multipart(string csv)
    {
        var file = new StringContent(csv, Encoding.UTF8);
        file.Headers.ContentType = new MediaTypeHeaderValue("text/csv");
        return new MultipartFormDataContent { { file, "file", "data.csv" } };
    }

    [Fact]
    public async Task A_key_past_its_request_rate_gets_429_with_retry_after_while_other_keys_go_on()
    {
        using var throttled = await KeyAsync("quota-rate", "viewer");
        using var sameTenant = await KeyAsync("quota-rate", "viewer");
        using var otherTenant = await KeyAsync("quota-rate-other", "viewer");

        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await throttled.GetAsync("/api/me")).StatusCode); // the burst
        }
        var refused = await throttled.GetAsync("/api/me");
        await refused.AssertProblemAsync(HttpStatusCode.TooManyRequests, "quota.rate_limited");
        Assert.InRange(int.Parse(refused.Headers.GetValues("Retry-After").Single(), CultureInfo.InvariantCulture), 1, 5);

        Assert.Equal(HttpStatusCode.OK, (await sameTenant.GetAsync("/api/me")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await otherTenant.GetAsync("/api/me")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await service.Client.GetAsync("/api/me")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await throttled.GetAsync("/health/live")).StatusCode); // health is not an API call
    }

    [Fact]
    public async Task An_upload_over_the_tenants_size_limit_is_a_413_of_its_own_code_whether_declared_or_streamed()
    {
        using var client = await KeyAsync("quota-upload");
        var declared = await client.PostCsvAsync(Csv(3000, seed: 1));
        await declared.AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, "quota.upload_bytes");
        var streamed = await client.PostAsync("/api/datasets", Multipart(Csv(3000, seed: 2))); // passes the length check: counted as read
        await streamed.AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, "quota.upload_bytes");

        Assert.Equal(HttpStatusCode.Created, (await client.PostCsvAsync(Csv(1500, seed: 3))).StatusCode);
        // Another tenant has only the server's limit.
        using var other = await KeyAsync("quota-upload-other");
        Assert.Equal(HttpStatusCode.Created, (await other.PostCsvAsync(Csv(3000, seed: 1))).StatusCode);
    }

    [Fact]
    public async Task An_upload_that_does_not_fit_the_tenants_stored_bytes_is_refused_before_and_after_its_body_and_stores_nothing()
    {
        using var client = await KeyAsync("quota-storage");
        Assert.Equal(HttpStatusCode.Created, (await client.PostCsvAsync(Csv(3000, seed: 10))).StatusCode);

        var declared = await client.PostCsvAsync(Csv(3000, seed: 11)); // its Content-Length does not fit: refused unread
        var problem = await declared.AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, "quota.stored_bytes");
        Assert.Equal(5000, (long)problem["limit"]!);
        var streamed = await client.PostAsync("/api/datasets", Multipart(Csv(3000, seed: 12))); // refused when it is stored
        await streamed.AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, "quota.stored_bytes");

        Assert.Equal(1, await service.Database.ScalarAsync<long>("SELECT count(*) FROM datasets WHERE tenant = 'quota-storage'"));
        Assert.Equal(0, await service.Database.ScalarAsync<long>(
            "SELECT count(*) FROM dataset_chunks c WHERE NOT EXISTS (SELECT 1 FROM datasets d WHERE d.id = c.dataset_id)"));
    }

    [Fact]
    public async Task Concurrent_uploads_that_each_fit_but_not_together_store_only_what_fits()
    {
        using var first = await KeyAsync("quota-race");
        using var second = await KeyAsync("quota-race"); // two uploads at once per key (Datasets:MaxConcurrentUploadsPerClient)
        // Multipart bodies declare no file length, so all four pass the early check; the count at commit decides.
        var responses = await Task.WhenAll(Enumerable.Range(0, 4).Select(i =>
            (i % 2 == 0 ? first : second).PostAsync("/api/datasets", Multipart(Csv(3000, seed: 20 + i)))));

        Assert.Equal(1, responses.Count(r => r.StatusCode == HttpStatusCode.Created));
        foreach (var refused in responses.Where(r => r.StatusCode != HttpStatusCode.Created))
        {
            await refused.AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, "quota.stored_bytes");
        }
        Assert.InRange(await service.Database.ScalarAsync<long>("SELECT sum(size_bytes)::bigint FROM datasets WHERE tenant = 'quota-race'"), 1, 5000);
    }

    [Theory]
    [InlineData("Quotas:Default:MaxRunningJobs", "0", "MaxRunningJobs")]
    [InlineData("Quotas:Tenants:team-x:RequestsPerSecond", "0", "Quotas:Tenants:team-x")]
    [InlineData("Quotas:Tenants:TEAM:MaxQueuedJobs", "5", "Quotas:Tenants:TEAM is not a tenant name")]
    public async Task An_invalid_quota_stops_the_process_at_start_naming_it(string setting, string value, string named)
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = ServiceFixture.StartProcess("worker", database.ConnectionString, new Dictionary<string, string> { [setting] = value });

        int exit = await server.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.NotEqual(0, exit);
        Assert.Contains(named, server.Output);
    }
}
