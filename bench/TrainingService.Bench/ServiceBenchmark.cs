using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using TrainingService.ProcessHarness;

namespace TrainingService.Bench;

/// <summary>
/// <c>service</c>: an API process and a worker process on one PostgreSQL, measured as clients see them:
/// pickup latency (POST /api/jobs → running), the epoch time of linear regression on 100,000 rows × 10 features, the
/// latency from an epoch's end in the worker to its arrival at an SSE client on the API, and history polling under
/// load (wrk, 64 connections, with the owner key): full GET, afterEpoch returning nothing new, and If-None-Match answered
/// 304, the last also against a second API process with Auth:Mode=none to measure what keys cost a poller.
/// </summary>
internal static partial class ServiceBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        int duration = CommandLine.Option(args, "--duration", 30), connections = CommandLine.Option(args, "--connections", 64);
        string postgres = BenchService.Postgres();
        await using var api = await BenchService.StartAsync("api", postgres);
        await using var worker = await BenchService.StartAsync("worker", postgres);
        var client = api.Client;
        Console.WriteLine($"API pid {api.Pid}, worker pid {worker.Pid}, {Environment.ProcessorCount} cores");

        var tiny = await client.UploadAsync(Linear(8, 2));
        if (!args.Contains("--polling-only"))
        {
            await PipelineAsync(client, tiny);
        }
        var long1000 = await client.SubmitAsync(new { datasetId = tiny, target = "y", loss = "mse", epochs = 1000, batchSize = 8 });
        await WaitAsync(client, long1000, TimeSpan.FromMinutes(10));
        await worker.DisposeAsync(); // the load test measures the API alone
        await LoadTestAsync(api, long1000, duration, connections);
        return 0;
    }

    /// <summary>Pickup latency, epoch times and SSE latency (skipped by <c>--polling-only</c>).</summary>
    private static async Task PipelineAsync(HttpClient client, string tiny)
    {
        var pickups = new List<double>();
        for (int i = 0; i < 20; i++)
        {
            var job = await client.SubmitAsync(new { datasetId = tiny, target = "y", loss = "mse", epochs = 1, batchSize = 8, seed = i });
            var done = await WaitAsync(client, job);
            pickups.Add((DateTimeOffset.Parse((string)done["startedAt"]!) - DateTimeOffset.Parse((string)done["createdAt"]!)).TotalMilliseconds);
            await Task.Delay(200); // the worker is idle, listening, when the next job arrives
        }
        Console.WriteLine($"pickup (POST /api/jobs → running, separate processes, 20 jobs): p50 {Percentile(pickups, 50):F0} ms, " +
            $"p95 {Percentile(pickups, 95):F0} ms, max {pickups.Max():F0} ms (goal: p50 ≤ 1 s)");

        var wide = await client.UploadAsync(Linear(100_000, 10));
        foreach (int batch in new[] { 32, 256 })
        {
            var job = await client.SubmitAsync(new
            {
                datasetId = wide, target = "y", loss = "mse", optimizer = new { name = "sgd", learningRate = 0.01 }, epochs = 4, batchSize = batch,
            });
            await WaitAsync(client, job);
            var epochs = (await client.GetFromJsonAsync<JsonNode>($"/api/jobs/{job}/history"))!["epochs"]!.AsArray();
            var times = epochs.Skip(1).Select(e => (double)e!["durationMs"]!).ToList();
            Console.WriteLine($"epoch time, linear regression, 100,000 rows x 10 features, mse, sgd, batch {batch}: " +
                $"median {Percentile(times, 50):F0} ms (epochs 2-4; epoch 1 {(double)epochs[0]!["durationMs"]!:F0} ms)");
        }

        var streamed = await client.UploadAsync(Linear(6_000, 2));
        var sseJob = await client.SubmitAsync(new
        {
            datasetId = streamed, target = "y", loss = "mse", optimizer = new { name = "sgd", learningRate = 0.001 }, epochs = 40, batchSize = 16,
        });
        var delays = await SseDelaysAsync(client, sseJob);
        Console.WriteLine($"SSE (epoch stored by the worker → event read by a client of the API, {delays.Count} epochs): " +
            $"p50 {Percentile(delays, 50):F0} ms, p95 {Percentile(delays, 95):F0} ms (goal: p50 ≤ 200 ms)");
    }

    private static async Task LoadTestAsync(ServiceProcess api, string job, int duration, int connections)
    {
        string url = $"http://127.0.0.1:{api.Port}/api/jobs/{job}/history";
        var full = await api.Client.GetAsync($"/api/jobs/{job}/history?limit=1000");
        int rows = (await full.Content.ReadFromJsonAsync<JsonNode>())!["epochs"]!.AsArray().Count;
        var empty = await api.Client.GetAsync($"/api/jobs/{job}/history?afterEpoch=1000");
        string etag = empty.Headers.ETag!.ToString();
        string[] key = ["Authorization: Bearer " + BenchService.OwnerKey];
        Console.WriteLine();
        Console.WriteLine($"history polling, a finished {rows}-epoch job, wrk: {connections} connections, 2 threads, {duration} s each, on this machine");
        Console.WriteLine("| request | requests/s | p50 | p99 |");
        Console.WriteLine("|---|---:|---:|---:|");
        await Wrk("(a) full history GET (1,000 rows)", $"{url}?limit=1000", key, duration, connections);
        await Wrk("(b) afterEpoch=1000: nothing new", $"{url}?afterEpoch=1000", key, duration, connections);
        await Wrk("(c) If-None-Match → 304", $"{url}?afterEpoch=1000", [.. key, $"If-None-Match: {etag}"], duration, connections);
        Console.WriteLine("goal for (c): ≥ 5,000 requests/s with p99 ≤ 20 ms");
        await KeyCostAsync(job, etag, duration, connections);
    }

    /// <summary>
    /// What API keys cost a poller: (c) against two API processes started together on the same database, one with keys
    /// (the default) and one with Auth:Mode=none, so neither carries the other's history (the first API process served
    /// the uploads and the job). Both are warmed first, then measured in the order on, off, off, on, on, off, so drift on
    /// a shared machine falls on both alike.
    /// </summary>
    private static async Task KeyCostAsync(string job, string etag, int duration, int connections)
    {
        string postgres = BenchService.Postgres();
        await using var api = await BenchService.StartAsync("api", postgres);
        await using var open = await BenchService.StartAsync("api", postgres, new Dictionary<string, string> { ["Auth:Mode"] = "none" });
        string path = $"/api/jobs/{job}/history?afterEpoch=1000";
        if ((await open.Client.GetAsync(path)).Headers.ETag?.ToString() != etag || (await api.Client.GetAsync(path)).Headers.ETag?.ToString() != etag)
        {
            throw new InvalidOperationException("A fresh process answers another ETag; the comparison would not be like for like.");
        }
        var keysOn = new Side("keys on (Bearer)", api.Pid, $"http://127.0.0.1:{api.Port}{path}", ["Authorization: Bearer " + BenchService.OwnerKey, $"If-None-Match: {etag}"]);
        var keysOff = new Side("keys off (Auth:Mode=none)", open.Pid, $"http://127.0.0.1:{open.Port}{path}", [$"If-None-Match: {etag}"]);
        Console.WriteLine();
        Console.WriteLine($"(c) with keys on and off (two fresh API processes), warmed 5 s each, then alternating, {duration} s a run; " +
            "CPU: the API process's user + system time per request (less sensitive than requests/s to other load on the machine)");
        Console.WriteLine("| (c) If-None-Match → 304 | requests/s | p50 | p99 | API CPU per request |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        foreach (var side in new[] { keysOn, keysOff })
        {
            await Measure(side, "warm-up: ", 5, connections);
        }
        foreach (var side in new[] { keysOn, keysOff, keysOff, keysOn, keysOn, keysOff })
        {
            await Measure(side, "", duration, connections);
        }
        double on = keysOn.Rates.Average(), off = keysOff.Rates.Average();
        Console.WriteLine($"304 polling, keys on / keys off (mean of 3 runs each): {on:N0} / {off:N0} requests/s = {on / off:F3} " +
            "(goal ≥ 0.90: keys cost pollers at most 10 %)");
        Console.WriteLine($"API CPU per 304, keys on / keys off: {keysOn.CpuPerRequest.Average():F1} / {keysOff.CpuPerRequest.Average():F1} µs " +
            $"= {keysOn.CpuPerRequest.Average() / keysOff.CpuPerRequest.Average():F3}");
    }

    /// <summary>One API process under (c), with what its runs measured.</summary>
    private sealed record Side(string Label, int Pid, string Url, string[] Headers)
    {
        public List<double> Rates { get; } = [];
        public List<double> CpuPerRequest { get; } = [];
    }

    private static async Task Measure(Side side, string prefix, int duration, int connections)
    {
        using var process = Process.GetProcessById(side.Pid);
        var cpu = process.TotalProcessorTime;
        var (rate, row) = await Wrk(side.Url, side.Headers, duration, connections);
        process.Refresh();
        double micros = (process.TotalProcessorTime - cpu).TotalMicroseconds / (rate * duration);
        string label = prefix.Length > 0 ? prefix + side.Label : $"{side.Label}, run {side.Rates.Count + 1}";
        Console.WriteLine($"| {label}{row} {micros:F1} µs |");
        if (prefix.Length == 0)
        {
            side.Rates.Add(rate);
            side.CpuPerRequest.Add(micros);
        }
    }

    /// <summary>Runs wrk and prints one table row.</summary>
    private static async Task Wrk(string label, string url, string[] headers, int duration, int connections)
    {
        var (_, row) = await Wrk(url, headers, duration, connections);
        Console.WriteLine($"| {label}{row}");
    }

    /// <summary>Runs wrk; returns requests per second and the rest of a table row (errors, rate, p50, p99).</summary>
    private static async Task<(double Rate, string Row)> Wrk(string url, string[] headers, int duration, int connections)
    {
        var arguments = new List<string> { "-t2", $"-c{connections}", $"-d{duration}s", "--latency" };
        foreach (string header in headers)
        {
            arguments.AddRange(["-H", header]);
        }
        arguments.Add(url);
        var start = new ProcessStartInfo("wrk", arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("wrk is not installed (apt-get install wrk)");
        string output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        double rate = double.Parse(RequestsPerSecond().Match(output).Groups[1].Value, CultureInfo.InvariantCulture);
        string p50 = Latency50().Match(output).Groups[1].Value, p99 = Latency99().Match(output).Groups[1].Value;
        // wrk counts statuses of 400 and above here (a 304 is not one): a refused key would show.
        string refused = NonSuccess().Match(output) is { Success: true } m ? $" ({m.Groups[1].Value} errors)" : "";
        return (rate, $"{refused} | {rate:N0} | {p50} | {p99} |");
    }

    /// <summary>Client receive time minus the epoch's recordedAt (PostgreSQL's clock: the same machine).</summary>
    private static async Task<List<double>> SseDelaysAsync(HttpClient client, string job)
    {
        var delays = new List<double>();
        using var response = await client.GetAsync($"/api/jobs/{job}/history/stream", HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        string? eventName = null;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                eventName = line[7..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal) && eventName == "epoch")
            {
                var received = DateTimeOffset.UtcNow;
                var epoch = JsonNode.Parse(line[6..])!;
                // Epochs already stored when the stream opened are not live: skip the first batch.
                if ((int)epoch["epoch"]! > 3)
                {
                    delays.Add((received - DateTimeOffset.Parse((string)epoch["recordedAt"]!)).TotalMilliseconds);
                }
            }
            else if (eventName == "end")
            {
                break;
            }
        }
        return delays;
    }

    private static string Linear(int rows, int features)
    {
        var random = new Random(rows);
        var csv = new StringBuilder(string.Join(",", Enumerable.Range(1, features).Select(i => $"x{i}")) + ",y\n");
        for (int r = 0; r < rows; r++)
        {
            double y = 0.5;
            for (int f = 0; f < features; f++)
            {
                double x = random.NextDouble() * 2 - 1;
                y += (f % 3 - 1) * x;
                csv.Append(x.ToString("F6", CultureInfo.InvariantCulture)).Append(',');
            }
            csv.Append(y.ToString("F6", CultureInfo.InvariantCulture)).Append('\n');
        }
        return csv.ToString();
    }

    private static async Task<JsonNode> WaitAsync(HttpClient client, string job, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromMinutes(5));
        while (DateTime.UtcNow < deadline)
        {
            var state = (await client.GetFromJsonAsync<JsonNode>($"/api/jobs/{job}"))!;
            if ((string?)state["status"] is "succeeded" or "failed" or "cancelled")
            {
                return state;
            }
            await Task.Delay(20);
        }
        throw new TimeoutException($"job {job} did not finish");
    }

    private static double Percentile(List<double> values, double percent)
    {
        var sorted = values.Order().ToList();
        return sorted[(int)Math.Clamp(Math.Ceiling(percent / 100 * sorted.Count) - 1, 0, sorted.Count - 1)];
    }

    [GeneratedRegex(@"Requests/sec:\s+([\d.]+)")]
    private static partial Regex RequestsPerSecond();

    [GeneratedRegex(@"50%\s+([\d.]+\w+)")]
    private static partial Regex Latency50();

    [GeneratedRegex(@"99%\s+([\d.]+\w+)")]
    private static partial Regex Latency99();

    [GeneratedRegex(@"Non-2xx or 3xx responses:\s+(\d+)")]
    private static partial Regex NonSuccess();
}
