using System.Text.Json.Nodes;

namespace TrainingService.Server.Tests.Infrastructure;

/// <summary>
/// Jobs that run for a while (20,000 rows in batches of 4, ~2 s an epoch on two cores): for tests about running jobs.
/// The worker trains one job at a time, so a test that starts one must end it before it returns.
/// </summary>
public static class LongJobs
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static string? _datasetId;

    public static async Task<string> DatasetAsync(HttpClient client)
    {
        await Gate.WaitAsync();
        try
        {
            return _datasetId ??= (await client.UploadAsync(TestData.Linear(20_000, seed: 1234), "long-running")).Id();
        }
        finally
        {
            Gate.Release();
        }
    }

    public static async Task<JsonNode> StartAsync(HttpClient client, int epochs = 500, object? maxRuntime = null)
    {
        string dataset = await DatasetAsync(client);
        return await client.SubmitAsync(new
        {
            datasetId = dataset, target = "y", loss = "mse", optimizer = new { name = "sgd", learningRate = 0.001 },
            epochs, batchSize = 4, seed = 5, maxRuntime,
        });
    }

    /// <summary>Cancels the job if it is still going and waits for it to end.</summary>
    public static async Task EndAsync(HttpClient client, string jobId)
    {
        await client.PostAsync($"/api/jobs/{jobId}/cancel", null);
        await client.WaitForEndAsync(jobId);
    }
}
