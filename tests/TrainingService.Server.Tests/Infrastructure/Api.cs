using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace TrainingService.Server.Tests.Infrastructure;

/// <summary>The API as a test drives it: typed-enough helpers over HttpClient, and problem assertions.</summary>
public static class Api
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static async Task<HttpResponseMessage> PostCsvAsync(this HttpClient client, string csv, string query = "")
    {
        var content = new StringContent(csv, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("text/csv");
        return await client.PostAsync($"/api/datasets{query}", content);
    }

    public static async Task<HttpResponseMessage> PostBytesAsync(this HttpClient client, byte[] bytes, string contentType = "text/csv", string query = "")
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return await client.PostAsync($"/api/datasets{query}", content);
    }

    /// <summary>Uploads a CSV that must be accepted; returns the dataset.</summary>
    public static async Task<JsonNode> UploadAsync(this HttpClient client, string csv, string? name = null)
    {
        var response = await client.PostCsvAsync(csv, name is null ? $"?name=test-{Guid.NewGuid():N}" : $"?name={Uri.EscapeDataString(name)}");
        return await ReadAsync(response, HttpStatusCode.Created, HttpStatusCode.OK);
    }

    /// <summary>Submits a job that must be accepted; returns it.</summary>
    public static async Task<JsonNode> SubmitAsync(this HttpClient client, object spec)
    {
        var response = await client.PostAsJsonAsync("/api/jobs", spec, Json);
        return await ReadAsync(response, HttpStatusCode.Accepted);
    }

    public static async Task<JsonNode> GetJsonAsync(this HttpClient client, string url) =>
        await ReadAsync(await client.GetAsync(url), HttpStatusCode.OK);

    public static async Task<JsonNode> ReadAsync(HttpResponseMessage response, params HttpStatusCode[] expected)
    {
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(expected.Contains(response.StatusCode), $"Expected {string.Join("/", expected)}, got {(int)response.StatusCode}: {body}");
        return JsonNode.Parse(body)!;
    }

    /// <summary>Waits until the job reaches one of <paramref name="statuses"/>; fails with its last state otherwise.</summary>
    public static async Task<JsonNode> WaitForAsync(this HttpClient client, string jobId, TimeSpan timeout, params string[] statuses)
    {
        var deadline = DateTime.UtcNow + timeout;
        JsonNode job;
        do
        {
            job = await client.GetJsonAsync($"/api/jobs/{jobId}");
            if (statuses.Contains((string?)job["status"]))
            {
                return job;
            }
            await Task.Delay(50);
        }
        while (DateTime.UtcNow < deadline);
        Assert.Fail($"Job {jobId} did not reach {string.Join("/", statuses)} within {timeout}; last state: {job.ToJsonString()}");
        return job;
    }

    public static Task<JsonNode> WaitForEndAsync(this HttpClient client, string jobId, int seconds = 60) =>
        client.WaitForAsync(jobId, TimeSpan.FromSeconds(seconds), "succeeded", "failed", "cancelled");

    /// <summary>Asserts an application/problem+json response with this status and code (and field, when given).</summary>
    public static async Task<JsonNode> AssertProblemAsync(this HttpResponseMessage response, HttpStatusCode status, string code, string? field = null)
    {
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"Expected {(int)status} {code}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonNode.Parse(body)!;
        Assert.Equal(code, (string?)problem["code"]);
        if (field is not null)
        {
            Assert.Equal(field, (string?)problem["field"]);
        }
        return problem;
    }

    public static string Id(this JsonNode node) => (string)node["id"]!;
}
