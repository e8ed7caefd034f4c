namespace TrainingService.Server.Infrastructure;

/// <summary>
/// <c>TrainingService.Server --healthcheck</c>: asks the running service's liveness endpoint and exits 0 or 1, so a
/// container image without curl can still have a HEALTHCHECK.
/// </summary>
public static class HealthProbe
{
    public static async Task<int> RunAsync()
    {
        string url = Environment.GetEnvironmentVariable("HEALTHCHECK_URL") ?? "http://127.0.0.1:8080/health/live";
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        try
        {
            using var response = await client.GetAsync(url);
            return response.IsSuccessStatusCode ? 0 : 1;
        }
        catch (HttpRequestException)
        {
            return 1;
        }
        catch (TaskCanceledException)
        {
            return 1;
        }
    }
}
