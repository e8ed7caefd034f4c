using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Npgsql;
using TrainingService.ProcessHarness;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>
/// Faults below the JSON: a request body Kestrel cannot frame, and a database that cannot be reached. Both run against
/// the real executable, since only Kestrel parses chunked framing and only a separate process can lose its database
/// without taking the shared test server with it.
/// </summary>
public sealed class HostileConnectionTests
{
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task A_chunk_size_that_overflows_is_a_400_problem_on_every_route_with_a_body_and_nothing_is_stored()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var api = ServiceFixture.StartProcess("api", database.ConnectionString);
        await api.WaitReadyAsync(Startup);

        foreach (var (path, type) in new[]
        {
            ("/api/jobs", "application/json"), ("/api/datasets", "text/csv"), ("/api/losses/evaluate", "application/json"),
            ($"/api/jobs/{Guid.NewGuid()}/predict", "application/json"),
        })
        {
            string request = $"POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {ServiceFixture.OwnerKey}\r\nContent-Type: {type}\r\nTransfer-Encoding: chunked\r\n" +
                "Connection: close\r\n\r\nFFFFFFFFFFFFFFFF\r\n{\"a\": 1}\r\n0\r\n\r\n";

            string response = await RawAsync(api.Port, request);

            Assert.StartsWith("HTTP/1.1 400", response);
            Assert.Contains("\"code\":", response);
        }
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM datasets)"));
        Assert.DoesNotContain("Unhandled error", api.Output);
    }

    [Fact]
    public async Task While_the_database_cannot_be_reached_requests_get_503_with_retry_after_and_no_address()
    {
        await using var database = await TestDatabase.CreateAsync();
        var (proxy, viaProxy) = TcpProxy.ToPostgres(database.ConnectionString);
        await using var _ = proxy;
        await using var api = ServiceFixture.StartProcess("api", viaProxy);
        await api.WaitReadyAsync(Startup);
        var dataset = await api.Client.UploadAsync(TestData.Linear(20, seed: 81));

        proxy.Stop();

        foreach (var (method, url, body) in new[]
        {
            ("GET", $"/api/jobs/{Guid.NewGuid()}", null), ("GET", "/api/jobs", null), ("GET", $"/api/datasets/{dataset.Id()}", null),
            ("POST", "/api/jobs", $$"""{"datasetId": "{{dataset.Id()}}", "target": "y", "loss": "mse", "epochs": 1}"""),
        })
        {
            var request = new HttpRequestMessage(new HttpMethod(method), url);
            if (body is not null)
            {
                request.Content = new StringContent(body, Encoding.UTF8, "application/json");
            }
            var response = await api.Client.SendAsync(request);

            var problem = await response.AssertProblemAsync(HttpStatusCode.ServiceUnavailable, "service.unavailable");
            Assert.Equal(TimeSpan.FromSeconds(5), response.Headers.RetryAfter?.Delta);
            string text = problem.ToJsonString();
            Assert.DoesNotContain(proxy.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), text);
            Assert.DoesNotContain("127.0.0.1", text);
        }
    }

    /// <summary>Sends <paramref name="request"/> as raw bytes and reads until the server closes the connection.</summary>
    private static async Task<string> RawAsync(int port, string request)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var buffer = new MemoryStream();
        try
        {
            await stream.CopyToAsync(buffer, timeout.Token);
        }
        catch (IOException)
        {
            // A reset after the response was written.
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}
