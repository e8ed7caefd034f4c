using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;

namespace TrainingService.Bench;

/// <summary>The API calls the benchmarks share: upload a CSV and submit a job, each returning the new id; and their small dataset.</summary>
internal static class BenchApi
{
    /// <summary>A small regression CSV: y = 0.5 + x1 − x2, x uniform in [−1, 1].</summary>
    public static string Linear(int rows, int seed)
    {
        var random = new Random(seed);
        var csv = new StringBuilder("x1,x2,y\n");
        for (int r = 0; r < rows; r++)
        {
            double x1 = random.NextDouble() * 2 - 1, x2 = random.NextDouble() * 2 - 1;
            csv.Append(CultureInfo.InvariantCulture, $"{x1:F6},{x2:F6},{0.5 + x1 - x2:F6}\n");
        }
        return csv.ToString();
    }

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
