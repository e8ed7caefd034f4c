using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;

namespace TrainingService.Browser.Tests;

/// <summary>The few API calls tests make to set a scene or check what the page did (the client sends the owner key).</summary>
public static class ServiceApi
{
    public static async Task<string> UploadAsync(this HttpClient client, string csv, string name)
    {
        var response = await client.PostAsync($"/api/datasets?name={name}", new StringContent(csv, Encoding.UTF8, "text/csv"));
        return (string)(await ReadAsync(response))["id"]!;
    }

    public static async Task<string> SubmitAsync(this HttpClient client, object spec) =>
        (string)(await ReadAsync(await client.PostAsJsonAsync("/api/jobs", spec)))["id"]!;

    public static async Task<JsonNode> GetJsonAsync(this HttpClient client, string path)
    {
        var response = await client.GetAsync(path);
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        return await ReadAsync(response);
    }

    /// <summary>Polls the job until it has ended; its last state.</summary>
    public static async Task<JsonNode> WaitForEndAsync(this HttpClient client, string jobId, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var job = await client.GetJsonAsync($"/api/jobs/{jobId}");
            if ((string?)job["status"] is "succeeded" or "failed" or "cancelled")
            {
                return job;
            }
            Assert.True(DateTime.UtcNow < deadline, $"job {jobId} still {job["status"]} after {timeout}");
            await Task.Delay(200);
        }
    }

    private static async Task<JsonNode> ReadAsync(HttpResponseMessage response)
    {
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {body}");
        return JsonNode.Parse(body)!;
    }
}
