using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using TrainingService.ProcessHarness;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>
/// An upload whose size is declared is stored while it arrives (a streaming COPY beside the spool), but only while its
/// client sends briskly: one that stalls gives its connection back at once and is stored from the spool later, and one
/// that goes away leaves nothing behind, neither rows nor spool.
/// </summary>
[Collection(ServiceTests.Name)]
public sealed class UploadStreamingTests
{
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(90);

    // Connections of the API inside a transaction: the streaming COPY holds one, nothing else in the api role does.
    private const string InTransaction =
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL";
    private const string Copying =
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE 'COPY dataset_chunks%'";

    [Fact]
    public async Task A_client_that_stalls_after_streaming_began_releases_its_connection_and_its_upload_still_completes()
    {
        await using var database = await TestDatabase.CreateAsync();
        string spool = Directory.CreateTempSubdirectory("ts-spool-").FullName;
        await using var api = ServiceFixture.StartProcess("api", database.ConnectionString, new Dictionary<string, string>
        {
            ["Datasets:SpoolDirectory"] = spool,
        });
        await api.WaitReadyAsync(Startup);
        var (start, rest) = Body(30_000, sentRows: 10_000);
        await using var upload = await DeclaredUpload.StartAsync(api.Client.BaseAddress!, start.Length + rest.Length);

        await upload.SendAsync(start);
        await WaitUntilAsync(async () => await database.ScalarAsync<long>(Copying) == 1, TimeSpan.FromSeconds(20)); // streaming
        var stalled = DateTime.UtcNow;
        await WaitUntilAsync(async () => await database.ScalarAsync<long>(InTransaction) == 0, TimeSpan.FromSeconds(5));
        Assert.True(DateTime.UtcNow - stalled < TimeSpan.FromSeconds(3), $"released after {DateTime.UtcNow - stalled}");
        await Task.Delay(1000); // still stalled: nothing is taken again
        Assert.Equal(0L, await database.ScalarAsync<long>(InTransaction));
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM dataset_chunks"));
        await upload.SendAsync(rest);

        var (status, body) = await upload.ReadAnswerAsync();
        Assert.True(status == HttpStatusCode.Created, $"{(int)status}: {body}");
        var dataset = JsonNode.Parse(body)!;
        Assert.Equal(30_000, (long)dataset["rowCount"]!);
        Assert.Equal(30_000L, await database.ScalarAsync<long>("SELECT sum(row_count) FROM dataset_chunks WHERE column_index = 1"));
        Assert.Equal(29_999.0, (double)dataset["columns"]![1]!["stats"]!["max"]!);
        Assert.Equal(30L, await database.ScalarAsync<long>("SELECT count(DISTINCT chunk_index) FROM dataset_chunks WHERE column_index = 1"));
        await WaitUntilAsync(() => Task.FromResult(!Directory.Exists(spool)), TimeSpan.FromSeconds(10)); // the spool cleans up its folder
    }

    [Fact]
    public async Task A_client_that_goes_away_after_streaming_began_leaves_no_rows_and_its_dead_ones_are_vacuumed()
    {
        await using var database = await TestDatabase.CreateAsync();
        string spool = Directory.CreateTempSubdirectory("ts-spool-").FullName;
        await using var api = ServiceFixture.StartProcess("api", database.ConnectionString, new Dictionary<string, string>
        {
            ["Datasets:SpoolDirectory"] = spool,
        });
        await api.WaitReadyAsync(Startup);
        var (start, rest) = Body(30_000, sentRows: 10_000);
        var upload = await DeclaredUpload.StartAsync(api.Client.BaseAddress!, start.Length + rest.Length);

        await upload.SendAsync(start);
        await WaitUntilAsync(async () => await database.ScalarAsync<long>(Copying) == 1, TimeSpan.FromSeconds(20));
        await upload.DisposeAsync(); // the client goes away mid-body

        await WaitUntilAsync(async () => await database.ScalarAsync<long>(InTransaction) == 0, TimeSpan.FromSeconds(5));
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM datasets"));
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM dataset_chunks"));
        await WaitUntilAsync(async () => await database.ScalarAsync<long>(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'dataset_chunks'") > 0, TimeSpan.FromSeconds(15));
        await WaitUntilAsync(() => Task.FromResult(!Directory.Exists(spool)), TimeSpan.FromSeconds(10));
    }

    /// <summary>A two-column CSV of <paramref name="rows"/> rows (b = 0, 1, 2, …), split after <paramref name="sentRows"/>.</summary>
    private static (byte[] Start, byte[] End) Body(int rows, int sentRows)
    {
        var head = new StringBuilder("a,b\n");
        var rest = new StringBuilder();
        for (int i = 0; i < rows; i++)
        {
            (i < sentRows ? head : rest).Append(i % 10).Append(',').Append(i).Append('\n');
        }
        return (Encoding.ASCII.GetBytes(head.ToString()), Encoding.ASCII.GetBytes(rest.ToString()));
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not reached within {timeout}");
            await Task.Delay(50);
        }
    }

    /// <summary>An upload over a bare socket with a Content-Length, its body sent in parts when the test says.</summary>
    private sealed class DeclaredUpload : IAsyncDisposable
    {
        private readonly TcpClient _tcp = new();
        private NetworkStream _stream = null!;

        public static async Task<DeclaredUpload> StartAsync(Uri server, long length)
        {
            var upload = new DeclaredUpload();
            await upload._tcp.ConnectAsync(server.Host, server.Port);
            upload._stream = upload._tcp.GetStream();
            await upload.SendAsync(Encoding.ASCII.GetBytes($"POST /api/datasets?name=declared-{Guid.NewGuid():N} HTTP/1.1\r\n" +
                $"Host: {server.Authority}\r\nAuthorization: Bearer {ServiceFixture.OwnerKey}\r\nContent-Type: text/csv\r\nContent-Length: {length}\r\n\r\n"));
            return upload;
        }

        public async Task SendAsync(byte[] bytes)
        {
            await _stream.WriteAsync(bytes);
            await _stream.FlushAsync();
        }

        /// <summary>The status and body of the answer (Content-Length framed, as every problem and result here is).</summary>
        public async Task<(HttpStatusCode Status, string Body)> ReadAnswerAsync()
        {
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var received = new MemoryStream();
            var buffer = new byte[8192];
            while (true)
            {
                int read = await _stream.ReadAsync(buffer, stop.Token);
                Assert.True(read > 0, "the connection closed before the answer was complete");
                received.Write(buffer, 0, read);
                string text = Encoding.UTF8.GetString(received.GetBuffer(), 0, (int)received.Length);
                int headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                if (headEnd < 0)
                {
                    continue;
                }
                string head = text[..headEnd], body = text[(headEnd + 4)..];
                string? length = Header(head, "Content-Length");
                var status = (HttpStatusCode)int.Parse(head.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
                if (length is not null && Encoding.UTF8.GetByteCount(body) >= int.Parse(length, System.Globalization.CultureInfo.InvariantCulture))
                {
                    return (status, body);
                }
                if (length is null && body.EndsWith("0\r\n\r\n", StringComparison.Ordinal))
                {
                    return (status, Unchunk(body));
                }
            }
        }

        private static string? Header(string head, string name) => head.Split("\r\n")
            .Where(l => l.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase)).Select(l => l[(name.Length + 1)..].Trim()).FirstOrDefault();

        /// <summary>The body of a chunked answer (ASCII JSON here, so characters and bytes agree).</summary>
        private static string Unchunk(string chunked)
        {
            var body = new StringBuilder();
            int at = 0;
            while (true)
            {
                int lineEnd = chunked.IndexOf("\r\n", at, StringComparison.Ordinal);
                int size = int.Parse(chunked[at..lineEnd], System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
                if (size == 0)
                {
                    return body.ToString();
                }
                body.Append(chunked, lineEnd + 2, size);
                at = lineEnd + 2 + size + 2;
            }
        }

        public ValueTask DisposeAsync()
        {
            _tcp.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
