using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using TrainingService.ProcessHarness;

namespace TrainingService.Bench;

/// <summary>
/// <c>evaluate</c>: the largest <c>POST /api/losses/evaluate</c> the API accepts (gaussian_nll with predictions, targets,
/// weights and variance, each <c>Losses:MaxElements</c> long), sent to a separate API process once and then twice at
/// once. Reports the payload, the server's resident memory before, at its peak, and after a short idle, and the ratio
/// of the peak to the payload (goal: at most about 10×, and back near the baseline after).
/// </summary>
internal static class EvaluateBenchmark
{
    /// <summary>The service's default <c>Losses:MaxElements</c>; <c>--elements</c> sets both the request and the setting.</summary>
    private const int DefaultMaxElements = 4_000_000;

    public static async Task<int> RunAsync(string[] args)
    {
        int elements = CommandLine.Option(args, "--elements", DefaultMaxElements);
        int idleSeconds = CommandLine.Option(args, "--idle", 10);
        // Without --elements the server runs with its defaults (so this command also measures a build that predates the setting).
        var settings = new Dictionary<string, string> { ["Logging:LogLevel:TrainingService.Server.Losses"] = "Information" };
        if (args.Contains("--elements"))
        {
            settings["Losses:MaxElements"] = elements.ToString(CultureInfo.InvariantCulture);
        }
        byte[] body = Body(elements, out double expectedLoss);
        await using var api = await BenchService.StartAsync("api", BenchService.Postgres(), settings);
        await SendAsync(api, Body(1000, out _)); // the first call loads the kernels
        await Task.Delay(TimeSpan.FromSeconds(2));
        Console.WriteLine($"API process: pid {api.Pid}, {Environment.ProcessorCount} cores; request: {elements:N0} values in each of " +
            $"predictions, targets, weights and variance, {body.Length / 1e6:F1} MB of JSON; expected loss {expectedLoss:G6}");
        Console.WriteLine();
        Console.WriteLine("| requests at once | payload | RSS before | peak RSS | peak / payload | (peak − before) / payload | RSS after " +
            $"{idleSeconds} s idle | time | statuses | loss |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
        foreach (int concurrent in new[] { 1, 2 })
        {
            await MeasureAsync(api, body, concurrent, idleSeconds);
        }
        Console.WriteLine();
        foreach (string line in api.Output.Split('\n').Where(l => l.Contains("Compacted the heap", StringComparison.Ordinal)))
        {
            Console.WriteLine($"server: {line.Trim()}");
        }
        Console.WriteLine("goal: peak RSS at most ~10x the payload, and back near the RSS before after the idle");
        return 0;
    }

    private static async Task MeasureAsync(ServiceProcess api, byte[] body, int concurrent, int idleSeconds)
    {
        double before = api.ResidentMiB();
        var watch = api.WatchPeak();
        var clock = Stopwatch.StartNew();
        var results = await Task.WhenAll(Enumerable.Range(0, concurrent).Select(_ => SendAsync(api, body)));
        double seconds = clock.Elapsed.TotalSeconds;
        double peak = await watch.StopAsync();
        await Task.Delay(TimeSpan.FromSeconds(idleSeconds));
        double after = api.ResidentMiB();
        double payloadMiB = concurrent * body.Length / (1024.0 * 1024);
        Console.WriteLine($"| {concurrent} | {payloadMiB:F0} MiB | {before:F0} MiB | {peak:F0} MiB | {peak / payloadMiB:F1}× | " +
            $"{(peak - before) / payloadMiB:F1}× | {after:F0} MiB | {seconds:F1} s | {string.Join(", ", results.Select(r => r.Status))} | " +
            $"{string.Join(", ", results.Select(r => r.Loss))} |");
    }

    /// <summary>Sends the body; returns the status and the loss (or the problem's code), reading the rest of the answer away.</summary>
    private static async Task<(int Status, string Loss)> SendAsync(ServiceProcess api, byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await api.Client.PostAsync("/api/losses/evaluate", content, CancellationToken.None);
        await using var stream = await response.Content.ReadAsStreamAsync();
        var head = new byte[256];
        int read = await stream.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false);
        await stream.CopyToAsync(Stream.Null);
        string text = Encoding.UTF8.GetString(head, 0, read);
        string key = response.IsSuccessStatusCode ? "\"loss\":" : "\"code\":";
        int at = text.IndexOf(key, StringComparison.Ordinal);
        string value = at < 0 ? text : text[(at + key.Length)..].Split(',', '}')[0];
        return ((int)response.StatusCode, value);
    }

    /// <summary>
    /// gaussian_nll over <paramref name="n"/> random values, numbers written as float32 round-trip text (the shortest a
    /// client can send, so the largest ratio of memory to payload); <paramref name="expected"/> is its mean loss.
    /// </summary>
    private static byte[] Body(int n, out double expected)
    {
        var random = new Random(11);
        var arrays = new float[4][];
        for (int a = 0; a < 4; a++)
        {
            arrays[a] = new float[n];
            for (int i = 0; i < n; i++)
            {
                arrays[a][i] = a < 2 ? (float)(random.NextDouble() * 10 - 5) : (float)(0.5 + random.NextDouble());
            }
        }
        // PyTorch's gaussian_nll: ½(log max(var, eps) + (input − target)² / max(var, eps)), weighted, mean over elements.
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            double d = arrays[0][i] - arrays[1][i], v = Math.Max(arrays[3][i], 1e-6);
            sum += arrays[2][i] * 0.5 * (Math.Log(v) + d * d / v);
        }
        expected = sum / n;
        var text = new StringBuilder(n * 48);
        text.Append("{\"loss\":\"gaussian_nll\"");
        string[] names = ["predictions", "targets", "weights", "variance"];
        for (int a = 0; a < 4; a++)
        {
            text.Append(",\"").Append(names[a]).Append("\":[");
            for (int i = 0; i < n; i++)
            {
                text.Append(i == 0 ? "" : ",").Append(arrays[a][i].ToString("R", CultureInfo.InvariantCulture));
            }
            text.Append(']');
        }
        return Encoding.UTF8.GetBytes(text.Append('}').ToString());
    }
}
