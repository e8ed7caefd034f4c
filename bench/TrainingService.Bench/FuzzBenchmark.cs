using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Npgsql;
using TrainingService.ProcessHarness;

namespace TrainingService.Bench;

/// <summary>
/// <c>fuzz</c>: a separate API and worker process on one PostgreSQL, and a seeded stream of hostile requests across every
/// route the API's Swagger document lists: random bytes, deep nesting, huge and non-finite numbers, wrong types, NUL and
/// invalid Unicode, unknown fields, wrong content types and methods, hostile query strings and ids, and raw requests
/// with an overflowing chunk size. Prints the status counts, the 5xx count (goal 0), the API's peak RSS, and the rows
/// created by refused requests (goal 0): rows added to datasets and jobs, less those the accepted requests created.
/// </summary>
internal static class FuzzBenchmark
{
    private static readonly string[] ContentTypes = ["application/json", "text/csv", "text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""];
    private static readonly string[] HostileValues = ["%00", "%ED%A0%80", "%C3%28", "-1", "0", "1e400", "NaN", "Infinity", "99999999999999999999", "%27%3B--", "", "%FF%FE", "2026-01-01T00:00:00%2B01:00"];
    private static readonly string[] QueryNames = ["limit", "cursor", "status", "datasetId", "createdAfter", "afterEpoch", "maxPoints", "metric", "jobIds", "rows", "name", "delimiter", "zzz"];

    private sealed record Seeds(string DatasetId, string JobId, IReadOnlyList<(string Method, string Path)> Routes);

    public static async Task<int> RunAsync(string[] args)
    {
        int requests = CommandLine.Option(args, "--requests", 10_000);
        int seed = CommandLine.Option(args, "--seed", 1);
        int concurrency = CommandLine.Option(args, "--concurrency", 16);
        string postgres = BenchService.Postgres();
        await using var api = await BenchService.StartAsync("api", postgres);
        await using var worker = await BenchService.StartAsync("worker", postgres);
        var seeds = await SeedAsync(api);
        long rowsBefore = await RowsAsync(postgres);
        api.ResetPeak();
        double baseline = api.ResidentMiB();
        Console.WriteLine($"API pid {api.Pid} ({baseline:F0} MiB resident), worker pid {worker.Pid}; {seeds.Routes.Count} routes: " +
            string.Join(", ", seeds.Routes.Select(r => $"{r.Method} {r.Path}")));

        var statuses = new ConcurrentDictionary<string, int>();
        var fiveHundreds = new ConcurrentQueue<string>();
        int created = 0;
        using var client = new HttpClient { BaseAddress = api.Client.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Authorization = api.Client.DefaultRequestHeaders.Authorization;
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, requests), new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (i, _) =>
        {
            var random = new Random(unchecked(seed * 1_000_003 + i)); // not HashCode.Combine: it is salted per process
            var (label, status) = await SendAsync(client, api.Port, seeds, random);
            statuses.AddOrUpdate(status, 1, (_, n) => n + 1);
            if (status.StartsWith('5'))
            {
                fiveHundreds.Enqueue($"{status} {label}");
            }
            if (Creates(label, status))
            {
                Interlocked.Increment(ref created);
            }
        });
        double seconds = clock.Elapsed.TotalSeconds;
        long rowsAfter = await RowsAsync(postgres);
        Report(requests, seconds, statuses, fiveHundreds, api, baseline, rowsAfter - rowsBefore, created, seed);
        return fiveHundreds.IsEmpty && rowsAfter - rowsBefore == created ? 0 : 1;
    }

    private static void Report(int requests, double seconds, ConcurrentDictionary<string, int> statuses, ConcurrentQueue<string> fiveHundreds,
        ServiceProcess api, double baseline, long rowsAdded, int created, int seed)
    {
        Console.WriteLine();
        Console.WriteLine($"{requests:N0} hostile requests (seed {seed}) in {seconds:F1} s ({requests / seconds:F0}/s)");
        Console.WriteLine("| status | count |");
        Console.WriteLine("|---|---:|");
        foreach (var (status, count) in statuses.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            Console.WriteLine($"| {status} | {count:N0} |");
        }
        Console.WriteLine();
        Console.WriteLine($"5xx: {fiveHundreds.Count} (goal 0)");
        foreach (var line in fiveHundreds.Take(20))
        {
            Console.WriteLine($"  {line}");
        }
        Console.WriteLine($"API peak RSS during the fuzz: {api.PeakMiB():F0} MiB (resident before: {baseline:F0} MiB, after: {api.ResidentMiB():F0} MiB)");
        Console.WriteLine($"rows added to datasets + jobs: {rowsAdded}; created by accepted requests (201 upload, 202 submit or retry): {created}; " +
            $"by refused requests: {rowsAdded - created} (goal 0)");
    }

    /// <summary>A dataset, a finished job (so models, predictions and histories exist) and the routes from Swagger.</summary>
    private static async Task<Seeds> SeedAsync(ServiceProcess api)
    {
        var csv = new StringBuilder("x1,x2,label,y\n");
        var random = new Random(7);
        for (int i = 0; i < 60; i++)
        {
            double a = random.NextDouble(), b = random.NextDouble();
            csv.Append(System.Globalization.CultureInfo.InvariantCulture, $"{a},{b},{(a > b ? "up" : "down")},{3 * a - 2 * b}\n");
        }
        var upload = await api.Client.PostAsync("/api/datasets?name=fuzz-seed", new StringContent(csv.ToString(), Encoding.UTF8, "text/csv"));
        string dataset = (string)JsonNode.Parse(await upload.Content.ReadAsStringAsync())!["id"]!;
        var submit = await api.Client.PostAsync("/api/jobs", new StringContent(
            $$"""{"datasetId": "{{dataset}}", "target": "y", "features": ["x1", "x2"], "loss": "mse", "epochs": 2}""", Encoding.UTF8, "application/json"));
        string job = (string)JsonNode.Parse(await submit.Content.ReadAsStringAsync())!["id"]!;
        for (int i = 0; i < 600 && (string?)JsonNode.Parse(await api.Client.GetStringAsync($"/api/jobs/{job}"))!["status"] is "queued" or "running"; i++)
        {
            await Task.Delay(100);
        }
        var swagger = JsonNode.Parse(await api.Client.GetStringAsync("/swagger/v1/swagger.json"))!;
        var routes = swagger["paths"]!.AsObject()
            .SelectMany(p => p.Value!.AsObject().Select(m => (Method: m.Key.ToUpperInvariant(), Path: p.Key)))
            .ToList();
        return new Seeds(dataset, job, routes);
    }

    private static async Task<long> RowsAsync(string postgres)
    {
        await using var connection = new NpgsqlConnection(postgres);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT (SELECT count(*) FROM datasets) + (SELECT count(*) FROM jobs)", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Whether an accepted request added a row: a new dataset, or a new job (submit, retry).</summary>
    private static bool Creates(string label, string status) =>
        (status == "201" && label.StartsWith("POST /api/datasets", StringComparison.Ordinal))
        || (status == "202" && label.StartsWith("POST /api/jobs", StringComparison.Ordinal) && !label.Contains("/cancel", StringComparison.Ordinal));

    /// <summary>One hostile request; returns its label (method and URL) and status ("timeout" or "error" when none came).</summary>
    private static async Task<(string Label, string Status)> SendAsync(HttpClient client, int port, Seeds seeds, Random random)
    {
        var (method, template) = seeds.Routes[random.Next(seeds.Routes.Count)];
        if (random.NextDouble() < 0.03)
        {
            method = random.NextDouble() < 0.5 ? "PUT" : "PATCH";
        }
        string path = template.Replace("{id}", Id(random, seeds, template, method));
        string url = path + Query(random);
        if (random.NextDouble() < 0.01 && method == "POST")
        {
            return ($"{method} {path} (raw chunk overflow)", await RawChunkOverflowAsync(port, path));
        }
        var request = new HttpRequestMessage(new HttpMethod(method), url);
        if (method is "POST" or "PUT" or "PATCH" || random.NextDouble() < 0.05)
        {
            var (body, type) = FuzzBodies.For(template, seeds.DatasetId, random);
            request.Content = new ByteArrayContent(body);
            if (type.Length > 0)
            {
                request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(type);
            }
        }
        try
        {
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            string code = (int)response.StatusCode >= 400 ? await CodeAsync(response) : "";
            return ($"{method} {url}", $"{(int)response.StatusCode}{code}");
        }
        catch (TaskCanceledException)
        {
            return ($"{method} {url}", "timeout");
        }
        catch (HttpRequestException e)
        {
            return ($"{method} {url}: {e.Message}", "connection error");
        }
    }

    /// <summary>" (no code)" when a 4xx/5xx answer is not a problem with a code: the fuzz reports those separately.</summary>
    private static async Task<string> CodeAsync(HttpResponseMessage response)
    {
        string text = await response.Content.ReadAsStringAsync();
        try
        {
            return response.Content.Headers.ContentType?.MediaType == "application/problem+json" && JsonNode.Parse(text)?["code"] is not null ? "" : " (no code)";
        }
        catch (System.Text.Json.JsonException)
        {
            return " (no code)";
        }
    }

    private static string Id(Random random, Seeds seeds, string template, string method) => random.Next(6) switch
    {
        // Never delete the seed dataset: the rest of the run needs it.
        0 or 1 when !(method == "DELETE" && template.StartsWith("/api/datasets", StringComparison.Ordinal)) =>
            template.StartsWith("/api/datasets", StringComparison.Ordinal) ? seeds.DatasetId : seeds.JobId,
        2 => RandomGuid(random).ToString(),
        3 => "not-a-guid",
        4 => Uri.EscapeDataString(new string('9', random.Next(1, 5000))),
        _ => RandomGuid(random).ToString("N"),
    };

    private static Guid RandomGuid(Random random)
    {
        var bytes = new byte[16];
        random.NextBytes(bytes);
        return new Guid(bytes);
    }

    private static string Query(Random random)
    {
        int count = random.Next(0, 4);
        if (count == 0)
        {
            return "";
        }
        var parts = Enumerable.Range(0, count).Select(_ =>
        {
            string value = random.Next(10) == 0 ? new string('a', random.Next(1, 20_000)) : HostileValues[random.Next(HostileValues.Length)];
            return $"{QueryNames[random.Next(QueryNames.Length)]}={value}";
        });
        return "?" + string.Join('&', parts);
    }

    /// <summary>A body whose first chunk size overflows a 64-bit integer, sent on a raw socket; the status line's code.</summary>
    private static async Task<string> RawChunkOverflowAsync(int port, string path)
    {
        using var socket = new TcpClient();
        await socket.ConnectAsync(System.Net.IPAddress.Loopback, port);
        var stream = socket.GetStream();
        string request = $"POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {BenchService.OwnerKey}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n" +
            "Connection: close\r\n\r\nFFFFFFFFFFFFFFFF\r\n{}\r\n0\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var buffer = new MemoryStream();
        try
        {
            await stream.CopyToAsync(buffer, timeout.Token);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
        }
        string text = Encoding.UTF8.GetString(buffer.ToArray());
        return text.Length >= 12 && text.StartsWith("HTTP/1.1 ", StringComparison.Ordinal)
            ? text[9..12] + (text.Contains("\"code\":", StringComparison.Ordinal) || text[9] < '4' ? "" : " (no code)")
            : "no answer";
    }
}
