using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>
/// Tenants see only their own data: another tenant's id answers exactly as an id that does not exist (status, code and
/// body, up to the id itself and the trace id), lists and their cursors hold only the caller's rows, and neither content
/// dedup nor idempotency keys reach across tenants.
/// </summary>
[Collection(ServiceTests.Name)]
public sealed class TenantIsolationTests(ServiceFixture service)
{
    private const string Unknown = "00000000-0000-0000-0000-0000000beef0";

    /// <summary>Two tenants with a member key each (A is the owner of the data under test, B the one probing).</summary>
    private async Task<(HttpClient A, HttpClient B)> TwoTenantsAsync()
    {
        var a = await Tenants.CreateKeyAsync(service.Client, Tenants.NewName("iso-a"), "member");
        var b = await Tenants.CreateKeyAsync(service.Client, Tenants.NewName("iso-b"), "member");
        return (service.CreateClient(a.Key), service.CreateClient(b.Key));
    }

    /// <summary>A finished job of <paramref name="client"/>'s tenant (so it has a history and a model), and its dataset.</summary>
    private static async Task<(string DatasetId, string JobId)> FinishedJobAsync(HttpClient client, int seed)
    {
        var dataset = await client.UploadAsync(TestData.Linear(200, seed));
        var job = await client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 2));
        Assert.Equal("succeeded", (string?)(await client.WaitForEndAsync(job.Id()))["status"]);
        return (dataset.Id(), job.Id());
    }

    /// <summary>
    /// Sends the request for another tenant's <paramref name="existing"/> id and for the <see cref="Unknown"/> id, and asserts
    /// both answer <paramref name="status"/> with the same content type and the same body once each id is blanked.
    /// </summary>
    private static async Task AssertSameAsMissingAsync(HttpClient caller, string existing, Func<string, HttpRequestMessage> request,
        HttpStatusCode status = HttpStatusCode.NotFound)
    {
        using var ofOther = await caller.SendAsync(request(existing));
        using var missing = await caller.SendAsync(request(Unknown));
        string otherBody = await ofOther.Content.ReadAsStringAsync(), missingBody = await missing.Content.ReadAsStringAsync();
        string what = $"{request(existing).Method} {request(existing).RequestUri}";
        Assert.True(ofOther.StatusCode == status, $"{what}: expected {(int)status}, got {(int)ofOther.StatusCode}: {otherBody}");
        Assert.Equal(missing.StatusCode, ofOther.StatusCode);
        Assert.Equal("application/problem+json", ofOther.Content.Headers.ContentType?.MediaType);
        Assert.Equal(missing.Content.Headers.ContentType?.ToString(), ofOther.Content.Headers.ContentType?.ToString());
        Assert.Equal(Tenants.WithoutTraceId(missingBody).Replace(Unknown, "{id}"), Tenants.WithoutTraceId(otherBody).Replace(existing, "{id}"));
    }

    private static HttpRequestMessage Request(HttpMethod method, string url, string? json = null, string? accept = null)
    {
        var request = new HttpRequestMessage(method, url);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }
        if (accept is not null)
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(accept));
        }
        return request;
    }

    [Fact]
    public async Task Another_tenants_dataset_answers_get_preview_and_delete_exactly_like_a_missing_one()
    {
        var (a, b) = await TwoTenantsAsync();
        var dataset = (await a.UploadAsync(TestData.Linear(50, seed: 1211))).Id();

        await AssertSameAsMissingAsync(b, dataset, id => Request(HttpMethod.Get, $"/api/datasets/{id}"));
        await AssertSameAsMissingAsync(b, dataset, id => Request(HttpMethod.Get, $"/api/datasets/{id}/preview"));
        await AssertSameAsMissingAsync(b, dataset, id => Request(HttpMethod.Delete, $"/api/datasets/{id}"));

        Assert.Equal(dataset, (await a.GetJsonAsync($"/api/datasets/{dataset}")).Id()); // B's delete did nothing
    }

    [Fact]
    public async Task Another_tenants_job_answers_every_job_route_exactly_like_a_missing_one()
    {
        var (a, b) = await TwoTenantsAsync();
        var (_, job) = await FinishedJobAsync(a, seed: 1212);
        string predict = """{"rows":[{"x1":0.5,"x2":-0.5}]}""";

        await AssertSameAsMissingAsync(b, job, id => Request(HttpMethod.Get, $"/api/jobs/{id}"));
        await AssertSameAsMissingAsync(b, job, id => Request(HttpMethod.Post, $"/api/jobs/{id}/cancel"));
        await AssertSameAsMissingAsync(b, job, id => Request(HttpMethod.Post, $"/api/jobs/{id}/retry"));
        await AssertSameAsMissingAsync(b, job, id => Request(HttpMethod.Get, $"/api/jobs/{id}/history"));
        await AssertSameAsMissingAsync(b, job, id => Request(HttpMethod.Get, $"/api/jobs/{id}/history", accept: "text/csv"));
        await AssertSameAsMissingAsync(b, job, id => Request(HttpMethod.Get, $"/api/jobs/{id}/history/stream", accept: "text/event-stream"));
        await AssertSameAsMissingAsync(b, job, id => Request(HttpMethod.Get, $"/api/jobs/{id}/model"));
        await AssertSameAsMissingAsync(b, job, id => Request(HttpMethod.Post, $"/api/jobs/{id}/predict", predict));
        await AssertSameAsMissingAsync(b, job, id => Request(HttpMethod.Get, $"/api/histories?jobIds={id}"));

        // The owner's tenant's ETags do not turn B's request into a 304 either (the state cache checks the tenant).
        using var own = await a.GetAsync($"/api/jobs/{job}");
        using var model = await a.GetAsync($"/api/jobs/{job}/model");
        await AssertSameAsMissingAsync(b, job, id => WithETag(Request(HttpMethod.Get, $"/api/jobs/{id}"), own.Headers.ETag!));
        await AssertSameAsMissingAsync(b, job, id => WithETag(Request(HttpMethod.Get, $"/api/jobs/{id}/model"), model.Headers.ETag!));

        // A's job is as it was: not retried (no second job), still succeeded.
        var listed = await a.GetJsonAsync("/api/jobs");
        Assert.Equal([job], listed["items"]!.AsArray().Select(j => j!.Id()));
        Assert.Equal("succeeded", (string?)(await a.GetJsonAsync($"/api/jobs/{job}"))["status"]);
        Assert.Empty((await b.GetJsonAsync("/api/jobs"))["items"]!.AsArray());
    }

    private static HttpRequestMessage WithETag(HttpRequestMessage request, EntityTagHeaderValue etag)
    {
        request.Headers.IfNoneMatch.Add(etag);
        return request;
    }

    [Fact]
    public async Task A_job_cannot_be_submitted_on_another_tenants_dataset()
    {
        var (a, b) = await TwoTenantsAsync();
        var dataset = (await a.UploadAsync(TestData.Linear(50, seed: 1213))).Id();

        await AssertSameAsMissingAsync(b, dataset, id => Request(HttpMethod.Post, "/api/jobs",
            System.Text.Json.JsonSerializer.Serialize(TestData.LinearSpec(id), Api.Json)), HttpStatusCode.UnprocessableEntity);

        Assert.Empty((await b.GetJsonAsync("/api/jobs"))["items"]!.AsArray());
        Assert.Empty((await a.GetJsonAsync("/api/jobs"))["items"]!.AsArray());
    }

    [Fact]
    public async Task Job_and_dataset_lists_and_their_cursors_show_only_the_callers_tenant()
    {
        var (a, b) = await TwoTenantsAsync();
        var ofA = new List<string>();
        var ofB = new List<string>();
        var datasetA = (await a.UploadAsync(TestData.Linear(50, seed: 1214))).Id();
        var datasetB = (await b.UploadAsync(TestData.Linear(50, seed: 1215))).Id();
        for (int i = 0; i < 3; i++) // interleaved in time, so a cursor that ignored the tenant would land on the other's jobs
        {
            ofA.Add((await a.SubmitAsync(TestData.LinearSpec(datasetA, epochs: 1, seed: i))).Id());
            ofB.Add((await b.SubmitAsync(TestData.LinearSpec(datasetB, epochs: 1, seed: i))).Id());
        }

        Assert.Equal(Enumerable.Reverse(ofB), await PagesAsync(b, "/api/jobs?limit=1"));
        Assert.Equal(Enumerable.Reverse(ofA), await PagesAsync(a, "/api/jobs?limit=2"));
        Assert.Empty((await b.GetJsonAsync($"/api/jobs?datasetId={datasetA}"))["items"]!.AsArray());
        var datasets = await b.GetJsonAsync("/api/datasets");
        Assert.Equal([datasetB], datasets["items"]!.AsArray().Select(d => d!.Id()));
        Assert.Equal(1, (int)datasets["total"]!);
        Assert.Empty((await b.GetJsonAsync("/api/datasets?offset=1"))["items"]!.AsArray());
        foreach (var (client, job) in ofA.Select(j => (a, j)).Concat(ofB.Select(j => (b, j))))
        {
            await client.WaitForEndAsync(job);
        }
    }

    /// <summary>Every job id of a list, following its cursors to the end.</summary>
    private static async Task<List<string>> PagesAsync(HttpClient client, string url)
    {
        var ids = new List<string>();
        string? cursor = null;
        do
        {
            var page = await client.GetJsonAsync(cursor is null ? url : $"{url}&cursor={Uri.EscapeDataString(cursor)}");
            ids.AddRange(page["items"]!.AsArray().Select(j => j!.Id()));
            cursor = (string?)page["nextCursor"];
        }
        while (cursor is not null && ids.Count < 100);
        return ids;
    }

    [Fact]
    public async Task Uploading_another_tenants_bytes_creates_a_new_dataset_and_only_the_same_tenant_dedups()
    {
        var (a, b) = await TwoTenantsAsync();
        string csv = TestData.Linear(80, seed: 1216);

        using var first = await a.PostCsvAsync(csv);
        var ofA = await Api.ReadAsync(first, HttpStatusCode.Created);
        using var inB = await b.PostCsvAsync(csv);
        var ofB = await Api.ReadAsync(inB, HttpStatusCode.Created);
        using var againInB = await b.PostCsvAsync(csv);
        var repeatB = await Api.ReadAsync(againInB, HttpStatusCode.OK);
        using var againInA = await a.PostCsvAsync(csv);
        var repeatA = await Api.ReadAsync(againInA, HttpStatusCode.OK);

        Assert.NotEqual(ofA.Id(), ofB.Id());
        Assert.Equal(ofB.Id(), repeatB.Id());
        Assert.Equal(ofA.Id(), repeatA.Id());
    }

    [Fact]
    public async Task The_same_idempotency_key_in_two_tenants_gives_two_jobs()
    {
        var (a, b) = await TwoTenantsAsync();
        string csv = TestData.Linear(60, seed: 1217);
        var datasetA = (await a.UploadAsync(csv)).Id();
        var datasetB = (await b.UploadAsync(csv)).Id();
        string key = $"shared-{Guid.NewGuid():N}";

        async Task<string> SubmitAsync(HttpClient client, string dataset, HttpStatusCode expected = HttpStatusCode.Accepted)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/jobs") { Content = JsonContent.Create(TestData.LinearSpec(dataset, epochs: 1), options: Api.Json) };
            request.Headers.Add("Idempotency-Key", key);
            using var response = await client.SendAsync(request);
            return (await Api.ReadAsync(response, expected)).Id();
        }

        string jobA = await SubmitAsync(a, datasetA);
        string jobB = await SubmitAsync(b, datasetB);
        string repeatA = await SubmitAsync(a, datasetA);
        string repeatB = await SubmitAsync(b, datasetB);

        Assert.NotEqual(jobA, jobB);
        Assert.Equal(jobA, repeatA);
        Assert.Equal(jobB, repeatB);
        await a.WaitForEndAsync(jobA);
        await b.WaitForEndAsync(jobB);
    }
}
