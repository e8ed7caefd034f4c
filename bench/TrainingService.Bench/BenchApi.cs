using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;

namespace TrainingService.Bench;

/// <summary>The API calls the benchmarks share: upload a CSV and submit a job, each returning the new id.</summary>
internal static class BenchApi
{
    public static async Task<string> UploadAsync(this HttpClient client, string csv)
    {
        var response = await client.PostAsync("/api/datasets", new StringContent(csv, Encoding.UTF8, "text/csv"));
        var body = (await response.Content.ReadFromJsonAsync<JsonNode>())!;
        return (string?)body["id"] ?? throw new InvalidOperationException(body.ToJsonString());
    }

    public static async Task<string> SubmitAsync(this HttpClient client, object spec)
    {
        var response = await client.PostAsJsonAsync("/api/jobs", spec);
        var body = (await response.Content.ReadFromJsonAsync<JsonNode>())!;
        return (string?)body["id"] ?? throw new InvalidOperationException(body.ToJsonString());
    }
}
