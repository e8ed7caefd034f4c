using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using TrainingService.ProcessHarness;
using TrainingService.Server.Tests.Infrastructure;
using Xunit.Abstractions;

namespace TrainingService.Server.Tests;

/// <summary>
/// Keys across real processes: a revocation reaching a second API process, the first start's printed owner key,
/// <c>--create-owner-key</c>, and the no-auth mode's loopback rule.
/// </summary>
[Collection(ServiceTests.Name)]
public sealed partial class KeyProcessTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(90);

    [GeneratedRegex("ts_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")]
    private static partial Regex KeyShape();

    private static HttpClient ClientOf(ServiceProcess process, string? key)
    {
        var client = new HttpClient { BaseAddress = process.Client.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        if (key is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
        return client;
    }

    [Fact]
    public async Task A_key_revoked_through_one_api_process_is_refused_by_another_within_a_second()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var one = ServiceFixture.StartProcess("api", database.ConnectionString);
        await using var two = ServiceFixture.StartProcess("api", database.ConnectionString);
        await Task.WhenAll(one.WaitReadyAsync(Startup), two.WaitReadyAsync(Startup));
        var key = await Tenants.CreateKeyAsync(one.Client, "revocation", "viewer");
        using var onOne = ClientOf(one, key.Key);
        using var onTwo = ClientOf(two, key.Key);
        for (int i = 0; i < 3; i++) // both processes have read (and cached) the key
        {
            Assert.Equal(HttpStatusCode.OK, (await onOne.GetAsync("/api/me")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await onTwo.GetAsync("/api/me")).StatusCode);
        }

        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var refusedAt = PollUntilRefusedAsync(onTwo, clock, stop.Token);
        await Task.Delay(200);
        var sentAt = clock.Elapsed;
        using var revoke = await one.Client.DeleteAsync($"/api/keys/{key.Id}");
        var returnedAt = clock.Elapsed;
        var (refused, lastAccepted, polls) = await refusedAt;

        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        output.WriteLine($"Revocation on a second API process: DELETE took {(returnedAt - sentAt).TotalMilliseconds:F1} ms; " +
            $"the other process answered 401 {(refused - returnedAt).TotalMilliseconds:F1} ms after it returned " +
            $"({(refused - sentAt).TotalMilliseconds:F1} ms after it was sent); last 200 at {(lastAccepted - sentAt).TotalMilliseconds:F1} ms " +
            $"after sending; {polls} polls");
        Assert.True(refused - returnedAt < TimeSpan.FromSeconds(1), $"The second process accepted the revoked key for {refused - returnedAt}.");
        Assert.Equal(HttpStatusCode.Unauthorized, (await onOne.GetAsync("/api/me")).StatusCode);
    }

    /// <summary>Polls GET /api/me until it answers 401: when it did, when the last 200 came, and how many polls it took.</summary>
    private static async Task<(TimeSpan Refused, TimeSpan LastAccepted, int Polls)> PollUntilRefusedAsync(HttpClient client, Stopwatch clock,
        CancellationToken cancellationToken)
    {
        var lastAccepted = TimeSpan.Zero;
        for (int polls = 1; ; polls++)
        {
            using var response = await client.GetAsync("/api/me", cancellationToken);
            var at = clock.Elapsed;
            if (response.StatusCode == HttpStatusCode.Unauthorized)
            {
                return (at, lastAccepted, polls);
            }
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            lastAccepted = at;
        }
    }

    [Fact]
    public async Task The_first_start_migrates_without_an_error_prints_a_working_owner_key_and_dashboard_link_once_and_a_restart_prints_none()
    {
        await using var database = await TestDatabase.CreateAsync();
        string key;
        await using (var first = ServiceFixture.StartProcess("api", database.ConnectionString, configuredOwnerKey: false))
        {
            await first.WaitReadyAsync(Startup);
            key = await PrintedKeyAsync(first);
            using var client = ClientOf(first, key);
            var me = await client.GetJsonAsync("/api/me");

            Assert.Equal(("owner", "default"), ((string)me["role"]!, (string)me["tenant"]!));
            Assert.Contains($"http://127.0.0.1:{first.Port}/#key={key}", first.Output);
            Assert.Single(KeyShape().Matches(first.Output).Select(m => m.Value).Distinct());
            Assert.Single(Regex.Matches(first.Output, "created the first owner key"));
            Assert.Contains("Applying", first.Output); // it migrated a fresh database ...
            Assert.DoesNotContain("fail:", first.Output + first.ErrorOutput); // ... and logged no error doing so
        }

        await using var second = ServiceFixture.StartProcess("api", database.ConnectionString, configuredOwnerKey: false);
        await second.WaitReadyAsync(Startup);
        using var again = ClientOf(second, key);
        Assert.Equal("owner", (string?)(await again.GetJsonAsync("/api/me"))["role"]);
        await Task.Delay(500);
        Assert.DoesNotMatch(KeyShape(), second.Output);
        Assert.DoesNotContain("#key=", second.Output);
    }

    /// <summary>The key a process printed on standard output (it prints once the server has started, so it may lag readiness).</summary>
    private static async Task<string> PrintedKeyAsync(ServiceProcess process)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            if (KeyShape().Match(process.Output) is { Success: true } match && process.Output.Contains("#key=", StringComparison.Ordinal))
            {
                return match.Value;
            }
            await Task.Delay(50);
        }
        Assert.Fail($"No key printed:\n{process.Output}");
        return "";
    }

    [Fact]
    public async Task Create_owner_key_prints_a_working_key_and_exits_0()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var create = ServiceFixture.StartProcess("api", database.ConnectionString, arguments: ["--create-owner-key"], configuredOwnerKey: false);

        int exit = await create.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.True(exit == 0, $"Exit code {exit}:\n{create.Output}");
        var printed = KeyShape().Matches(create.Output).Select(m => m.Value).Distinct().ToList();
        Assert.Single(printed);
        await using var api = ServiceFixture.StartProcess("api", database.ConnectionString, configuredOwnerKey: false);
        await api.WaitReadyAsync(Startup);
        using var client = ClientOf(api, printed[0]);
        var me = await client.GetJsonAsync("/api/me");
        Assert.Equal(("owner", "default"), ((string)me["role"]!, (string)me["tenant"]!));
        await Task.Delay(500);
        Assert.DoesNotContain("#key=", api.Output); // a live key existed: no first-start key
    }

    [Fact]
    public async Task No_auth_mode_refuses_to_start_on_an_address_that_is_not_loopback()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var open = ServiceFixture.StartProcess("api", database.ConnectionString, new Dictionary<string, string> { ["Auth:Mode"] = "none" },
            arguments: ["--urls", "http://0.0.0.0:0"]);

        int exit = await open.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.True(exit == 2, $"Exit code {exit}:\n{open.Output}");
        Assert.Contains("Auth:Mode is none", open.ErrorOutput);
        Assert.Contains("http://0.0.0.0:0", open.ErrorOutput);
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM information_schema.tables WHERE table_name = 'api_keys'"));
    }

    [Fact]
    public async Task No_auth_mode_on_loopback_makes_every_caller_the_owner()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var local = ServiceFixture.StartProcess("api", database.ConnectionString, new Dictionary<string, string> { ["Auth:Mode"] = "none" },
            configuredOwnerKey: false);
        await local.WaitReadyAsync(Startup);
        using var anonymous = ClientOf(local, null);

        var me = await anonymous.GetJsonAsync("/api/me");

        Assert.Equal("owner", (string?)me["role"]);
        Assert.Equal("default", (string?)me["tenant"]);
        Assert.Null(me["keyId"]);
        Assert.Contains("Auth:Mode is none", local.Output); // logged as a warning
        Assert.DoesNotMatch(KeyShape(), local.Output);
    }
}
