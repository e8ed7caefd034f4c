using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using TrainingService.Server.Datasets;
using TrainingService.ProcessHarness;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>
/// Uploads as a hostile or unlucky client sends them: too slow, too many at once, too large, badly named. None may hold
/// a database connection while it waits on its client, store anything, or leave a spool file behind.
/// </summary>
[Collection(ServiceTests.Name)]
public sealed class UploadLimitTests(ServiceFixture service)
{
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(90);
    private readonly HttpClient _client = service.Client;

    private UploadSpool Spool => service.Factory.Services.GetRequiredService<UploadSpool>();

    [Fact]
    public async Task An_accepted_upload_leaves_no_spool_file_either()
    {
        await _client.UploadAsync(TestData.Linear(5_000, seed: 90));

        Assert.Empty(Spool.OwnFiles());
        Assert.Equal(0, Spool.BytesInUse);
    }

    [Fact]
    public async Task An_upload_that_would_overfill_the_spool_gets_503_and_stores_nothing()
    {
        var settings = new Configuration.DatasetOptions { MaxSpoolBytes = 1 << 20, ChunkRows = 1000 };
        var options = Microsoft.Extensions.Options.Options.Create(settings);
        var spool = new UploadSpool(options, Microsoft.Extensions.Logging.Abstractions.NullLogger<UploadSpool>.Instance);
        var importer = new CsvImporter(service.Factory.Services.GetRequiredService<NpgsqlDataSource>(), options,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<CsvImporter>.Instance, spool);
        long datasets = await service.Database.ScalarAsync<long>("SELECT count(*) FROM datasets");

        // 100,000 rows of three full-precision doubles: 2.4 MB encoded, over the 1 MiB spool.
        var result = await importer.ImportAsync("default", new MemoryStream(Encoding.UTF8.GetBytes(TestData.Linear(100_000, seed: 93))), "spool", null,
            CancellationToken.None);

        Assert.Equal(503, result.Problem?.Status);
        Assert.Equal("dataset.spool_full", result.Problem?.Code);
        Assert.Equal(0, spool.BytesInUse);
        Assert.Empty(spool.OwnFiles());
        Assert.Equal(datasets, await service.Database.ScalarAsync<long>("SELECT count(*) FROM datasets"));
    }

    [Fact]
    public async Task A_spool_directory_that_cannot_take_a_file_gets_503_not_a_500()
    {
        // A path under a regular file: CreateDirectory fails the way a removed or unwritable spool does.
        string blocker = Path.GetTempFileName();
        try
        {
            var options = Microsoft.Extensions.Options.Options.Create(new Configuration.DatasetOptions { SpoolDirectory = Path.Combine(blocker, "spool") });
            var spool = new UploadSpool(options, Microsoft.Extensions.Logging.Abstractions.NullLogger<UploadSpool>.Instance);
            var importer = new CsvImporter(service.Factory.Services.GetRequiredService<NpgsqlDataSource>(), options,
                Microsoft.Extensions.Logging.Abstractions.NullLogger<CsvImporter>.Instance, spool);

            var result = await importer.ImportAsync("default", new MemoryStream(Encoding.UTF8.GetBytes(TestData.Linear(10, seed: 94))), "blocked", null,
                CancellationToken.None);

            Assert.Equal(503, result.Problem?.Status);
            Assert.Equal("dataset.spool_full", result.Problem?.Code);
        }
        finally
        {
            File.Delete(blocker);
        }
    }

    [Fact]
    public async Task Dataset_names_longer_than_the_cap_or_with_a_nul_are_refused_naming_the_field()
    {
        string csv = "a,b\n1,2\n";

        await (await _client.PostCsvAsync(csv, $"?name={new string('n', 257)}")).AssertProblemAsync(HttpStatusCode.BadRequest, "dataset.name_too_long", "name");
        await (await _client.PostCsvAsync(csv, "?name=a%00b")).AssertProblemAsync(HttpStatusCode.BadRequest, "dataset.invalid_name", "name");
        var longest = await _client.UploadAsync("a,b\n1,3\n", new string('n', 256));
        Assert.Equal(256, ((string)longest["name"]!).Length);
    }

    [Fact]
    public async Task A_dataset_name_with_a_lone_surrogate_is_refused()
    {
        // A query string cannot carry a lone surrogate (it is decoded from UTF-8); a multipart file name or a caller can.
        var importer = service.Factory.Services.GetRequiredService<CsvImporter>();

        var result = await importer.ImportAsync("default", new MemoryStream("a,b\n1,2\n"u8.ToArray()), "bad \ud800 name", null, CancellationToken.None);

        Assert.Equal("dataset.invalid_name", result.Problem?.Code);
        Assert.Equal("name", result.Problem?.Field);
    }

    [Fact]
    public async Task A_column_name_longer_than_the_cap_is_refused_naming_the_column()
    {
        string csv = $"a,{new string('c', 257)}\n1,2\n";
        long datasets = await service.Database.ScalarAsync<long>("SELECT count(*) FROM datasets");

        var problem = await (await _client.PostCsvAsync(csv)).AssertProblemAsync(HttpStatusCode.BadRequest, "dataset.column_name_too_long");

        Assert.Equal(2, (int)problem["column"]!);
        Assert.Equal(datasets, await service.Database.ScalarAsync<long>("SELECT count(*) FROM datasets"));
        await _client.UploadAsync($"a,{new string('c', 256)}\n1,2\n");
    }

    [Fact]
    public async Task Past_a_limit_an_upload_is_refused_with_its_own_problem_and_nothing_is_stored_or_left_spooled()
    {
        await using var database = await TestDatabase.CreateAsync();
        string spool = Directory.CreateTempSubdirectory("ts-spool-").FullName;
        await using var api = ServiceFixture.StartProcess("api", database.ConnectionString, new Dictionary<string, string>
        {
            ["Datasets:MaxConcurrentUploadsPerClient"] = "2",
            ["Datasets:MinUploadBytesPerSecond"] = "2000",
            ["Datasets:MinUploadRateGrace"] = "00:00:02",
            ["Datasets:SpoolDirectory"] = spool,
        });
        await api.WaitReadyAsync(Startup);
        long chunkBytes = await database.ScalarAsync<long>("SELECT pg_total_relation_size('dataset_chunks')");
        var uri = api.Client.BaseAddress!;

        // A chunked body (no Content-Length to refuse early) past Datasets:MaxUploadBytes (16 MB in the tests).
        var tooLarge = await RawUpload.SendAsync(uri, Rows(20_000), TimeSpan.Zero, limitBytes: 17_000_000);
        tooLarge.AssertProblem(HttpStatusCode.RequestEntityTooLarge, "dataset.too_large");

        // About 300 bytes a second, under the 2,000 B/s floor once the 2 s grace is over.
        var slow = await RawUpload.SendAsync(uri, Rows(50), TimeSpan.FromMilliseconds(1000));
        slow.AssertProblem(HttpStatusCode.RequestTimeout, "dataset.upload_too_slow");

        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM datasets"));
        Assert.Equal(chunkBytes, await database.ScalarAsync<long>("SELECT pg_total_relation_size('dataset_chunks')")); // not even dead rows
        Assert.Empty(SpoolFiles(spool));

        // Two uploads in flight from this client, then a third: refused before its body is read.
        var finish = new TaskCompletionSource();
        var held = Enumerable.Range(0, 2).Select(_ => RawUpload.SendAsync(uri, Rows(200), TimeSpan.FromMilliseconds(50), finish: finish.Task)).ToList();
        await WaitUntilAsync(() => SpoolFiles(spool).Length == 2, TimeSpan.FromSeconds(20));
        var third = await RawUpload.SendAsync(uri, Rows(1), TimeSpan.Zero, limitBytes: 0);
        third.AssertProblem(HttpStatusCode.TooManyRequests, "dataset.too_many_uploads");
        Assert.Equal("10", third.RetryAfter);
        finish.SetResult();
        foreach (var upload in held)
        {
            Assert.Equal(HttpStatusCode.Created, (await upload).Status);
        }
        Assert.Equal(2L, await database.ScalarAsync<long>("SELECT count(*) FROM datasets"));
        await WaitUntilAsync(() => !Directory.Exists(spool), TimeSpan.FromSeconds(10)); // no files, and no empty folder left either
    }

    [Fact]
    public async Task A_hundred_slow_uploads_in_flight_starve_no_other_request_and_end_with_a_timeout()
    {
        await using var database = await TestDatabase.CreateAsync();
        string spool = Directory.CreateTempSubdirectory("ts-spool-").FullName;
        // A small pool: before uploads spooled, 100 trickling uploads each held a connection and every other request failed.
        string postgres = new NpgsqlConnectionStringBuilder(database.ConnectionString) { MaxPoolSize = 20, Timeout = 5 }.ConnectionString;
        await using var api = ServiceFixture.StartProcess("all", postgres, new Dictionary<string, string>
        {
            ["Datasets:MaxConcurrentUploads"] = "150",
            ["Datasets:MaxConcurrentUploadsPerClient"] = "150",
            ["Datasets:MinUploadBytesPerSecond"] = "50",
            ["Datasets:UploadTimeout"] = "00:00:15",
            ["Datasets:SpoolDirectory"] = spool,
        });
        await api.WaitReadyAsync(Startup);
        var dataset = await api.Client.UploadAsync(TestData.Linear(400, seed: 92));
        var job = await api.Client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 20, batchSize: 8));

        // 100 clients, each about 400 bytes a second (above the 50 B/s floor, so only the overall timeout ends them).
        var uploads = Enumerable.Range(0, 100).Select(_ => RawUpload.SendAsync(api.Client.BaseAddress!, Rows(8), TimeSpan.FromMilliseconds(100))).ToList();
        await WaitUntilAsync(() => SpoolFiles(spool).Length == 100, TimeSpan.FromSeconds(30));

        foreach (string url in new[] { "/api/jobs", $"/api/jobs/{job.Id()}/history", "/api/datasets", "/health/ready", "/api/jobs", "/api/datasets" })
        {
            var clock = Stopwatch.StartNew();
            var response = await api.Client.GetAsync(url);
            Assert.True(response.IsSuccessStatusCode, $"{url}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"{url} took {clock.Elapsed}");
        }
        Assert.Equal(100, SpoolFiles(spool).Length);
        Assert.DoesNotContain(uploads, u => u.IsCompleted);
        Assert.Equal("succeeded", (string?)(await api.Client.WaitForEndAsync(job.Id()))["status"]);

        foreach (var upload in uploads)
        {
            (await upload).AssertProblem(HttpStatusCode.RequestTimeout, "dataset.upload_timeout");
        }
        await WaitUntilAsync(() => !Directory.Exists(spool), TimeSpan.FromSeconds(10));
        Assert.Equal(1L, await database.ScalarAsync<long>("SELECT count(*) FROM datasets"));
        Assert.Equal(HttpStatusCode.OK, (await api.Client.GetAsync("/health/ready")).StatusCode);
    }

    /// <summary>The files in a spool folder; none when the spool has removed the folder (it does once its last upload ends).</summary>
    private static string[] SpoolFiles(string spool) => Directory.Exists(spool) ? Directory.GetFiles(spool) : [];

    private static byte[] Rows(int count) =>
        Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, count).Select(i => $"{i % 10},{Random.Shared.Next(1000)}\n")));

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not reached within {timeout}");
            await Task.Delay(50);
        }
    }

    /// <summary>The answer to a <see cref="RawUpload"/>.</summary>
    private sealed record RawResponse(HttpStatusCode Status, string Body, string? RetryAfter)
    {
        public void AssertProblem(HttpStatusCode status, string code)
        {
            Assert.True(Status == status, $"Expected {(int)status} {code}, got {(int)Status}: {Body}");
            Assert.Equal(code, (string?)JsonNode.Parse(Body)!["code"]);
        }
    }

    /// <summary>
    /// A chunked CSV upload over a bare socket: the header row, then <c>rows</c> every <c>pause</c> until the server
    /// answers, <c>limitBytes</c> are sent (then the body is left open) or <c>finish</c> completes (then the body is
    /// ended). The answer is read while the body is still being sent: HttpClient drops an answer that arrives early
    /// when the server then closes the connection, which is what a server refusing a body does.
    /// </summary>
    private static class RawUpload
    {
        public static async Task<RawResponse> SendAsync(Uri server, byte[] rows, TimeSpan pause, long limitBytes = long.MaxValue, Task? finish = null)
        {
            using var tcp = new TcpClient();
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(90));
            await tcp.ConnectAsync(server.Host, server.Port, stop.Token);
            var stream = tcp.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes(
                $"POST /api/datasets?name=raw-{Guid.NewGuid():N} HTTP/1.1\r\nHost: {server.Authority}\r\nAuthorization: Bearer {ServiceFixture.OwnerKey}\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n"), stop.Token);
            var answer = ReadAnswerAsync(stream, stop.Token);
            finish ??= new TaskCompletionSource().Task;
            try
            {
                long sent = 0;
                if (limitBytes > 0)
                {
                    await WriteChunkAsync(stream, "a,b\n"u8.ToArray(), stop.Token);
                }
                while (!answer.IsCompleted && !finish.IsCompleted && sent < limitBytes)
                {
                    await WriteChunkAsync(stream, rows, stop.Token);
                    sent += rows.Length;
                    await Task.WhenAny(answer, finish, Task.Delay(pause, stop.Token));
                }
                if (finish.IsCompleted && !answer.IsCompleted)
                {
                    await stream.WriteAsync("0\r\n\r\n"u8.ToArray(), stop.Token);
                }
            }
            catch (IOException)
            {
                // The server answered and closed the connection while this body was still being sent.
            }
            return await answer;
        }

        private static async Task WriteChunkAsync(Stream stream, byte[] bytes, CancellationToken cancellationToken)
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"{bytes.Length:X}\r\n"), cancellationToken);
            await stream.WriteAsync(bytes, cancellationToken);
            await stream.WriteAsync("\r\n"u8.ToArray(), cancellationToken);
        }

        /// <summary>Reads the status line, headers and body (Content-Length or chunked, single chunk) of the answer.</summary>
        private static async Task<RawResponse> ReadAnswerAsync(Stream stream, CancellationToken cancellationToken)
        {
            var received = new MemoryStream();
            var buffer = new byte[8192];
            while (true)
            {
                int read;
                try
                {
                    read = await stream.ReadAsync(buffer, cancellationToken);
                }
                catch (IOException)
                {
                    read = 0;
                }
                received.Write(buffer, 0, read);
                string text = Encoding.UTF8.GetString(received.GetBuffer(), 0, (int)received.Length);
                int headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                if (headEnd >= 0 && (read == 0 || IsComplete(text, headEnd)))
                {
                    string head = text[..headEnd], body = text[(headEnd + 4)..];
                    var status = (HttpStatusCode)int.Parse(head.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
                    int open = body.IndexOf('{'), close = body.LastIndexOf('}');
                    return new RawResponse(status, open >= 0 && close > open ? body[open..(close + 1)] : body, Header(head, "Retry-After"));
                }
                Assert.True(read > 0, $"the connection closed without a complete answer: {text}");
            }
        }

        private static bool IsComplete(string text, int headEnd)
        {
            string head = text[..headEnd], body = text[(headEnd + 4)..];
            return Header(head, "Content-Length") is { } length ? Encoding.UTF8.GetByteCount(body) >= int.Parse(length, System.Globalization.CultureInfo.InvariantCulture)
                : body.EndsWith("0\r\n\r\n", StringComparison.Ordinal);
        }

        private static string? Header(string head, string name) => head.Split("\r\n")
            .Where(l => l.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase)).Select(l => l[(name.Length + 1)..].Trim()).FirstOrDefault();
    }
}
