using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using TrainingService.Server.Configuration;
using TrainingService.Server.Infrastructure;
using TrainingService.Server.Jobs;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>
/// The store's rules that recovery and cancels rely on, driven step by step through <see cref="JobStore"/> (so each race
/// is played in a fixed order), and readiness that keeps its error text for the log.
/// </summary>
[Collection(ServiceTests.Name)]
public sealed class RecoveryTests(ServiceFixture service)
{
    private readonly HttpClient _client = service.Client;
    private JobStore Store => service.Factory.Services.GetRequiredService<JobStore>();
    private NpgsqlDataSource DataSource => service.Factory.Services.GetRequiredService<NpgsqlDataSource>();

    /// <summary>The Hangfire job of the attempts these tests begin by hand (no Hangfire job carries them).</summary>
    private const string Attempt = "test-attempt";

    [Fact]
    public async Task A_job_cancelled_while_its_training_ends_finishes_cancelled_with_its_model()
    {
        var (id, lease) = await NewRunningJobAsync();
        await using var _ = lease;

        // The cancel is answered 202 (cancelling) just before the worker, whose training completed, writes the outcome.
        var (cancelling, problem) = await Store.CancelAsync("default", id, CancellationToken.None);
        bool finished = await Store.FinishAsync(id, Attempt, JobStatus.Succeeded, StopReasons.Completed, null, 2, new StoredModel("{\"layers\":[]}", "\"m1\"", 2), CancellationToken.None);

        Assert.Null(problem);
        Assert.Equal(JobStatus.Cancelling, cancelling!.Status);
        Assert.True(finished);
        var job = await _client.GetJsonAsync($"/api/jobs/{id}");
        Assert.Equal("cancelled", (string?)job["status"]);
        Assert.Equal("cancelled", (string?)job["stopReason"]);
        Assert.Equal("cancelled", (string?)job["transitions"]!.AsArray()[^1]!["status"]);
        Assert.NotNull(await Store.LoadModelAsync("default", id, CancellationToken.None));
    }

    [Fact]
    public async Task A_second_finish_of_an_ended_job_changes_nothing()
    {
        var (id, lease) = await NewRunningJobAsync();
        await using var _ = lease;
        await Store.FinishAsync(id, Attempt, JobStatus.Succeeded, StopReasons.Completed, null, null, null, CancellationToken.None);
        long version = await service.Database.ScalarAsync<long>($"SELECT version FROM jobs WHERE id = '{id}'");

        bool again = await Store.FinishAsync(id, Attempt, JobStatus.Failed, StopReasons.Error, new FailureInfo("x", "y"), null, null, CancellationToken.None);

        Assert.False(again);
        Assert.Equal(version, await service.Database.ScalarAsync<long>($"SELECT version FROM jobs WHERE id = '{id}'"));
        Assert.Equal("succeeded", await service.Database.ScalarAsync<string>($"SELECT status FROM jobs WHERE id = '{id}'"));
    }

    [Fact]
    public async Task A_lost_attempt_is_recorded_once_naming_its_worker_and_last_epoch()
    {
        var (id, lease) = await NewRunningJobAsync();
        await using var _ = lease;
        await service.Database.ScalarAsync<int>($"UPDATE jobs SET epochs_completed = 7, hangfire_job_id = 'h1' WHERE id = '{id}' RETURNING 1");

        bool first = await Store.RecordLostAttemptAsync(id, "h1", CancellationToken.None);
        await service.Database.ScalarAsync<int>($"UPDATE jobs SET hangfire_job_id = 'h2' WHERE id = '{id}' RETURNING 1");
        bool second = await Store.RecordLostAttemptAsync(id, "h1", CancellationToken.None); // a second pass that saw the old Hangfire job

        Assert.True(first);
        Assert.False(second);
        var transitions = (await _client.GetJsonAsync($"/api/jobs/{id}"))["transitions"]!.AsArray();
        Assert.Equal("started by worker test-host:1", (string?)transitions[1]!["note"]);
        Assert.Equal("worker test-host:1 lost after epoch 7; resumed", (string?)transitions[^1]!["note"]);
        Assert.Equal("running", (string?)transitions[^1]!["status"]);
        Assert.Single(transitions, t => ((string?)t!["note"])?.Contains("lost") == true);
        await Store.FinishAsync(id, "h2", JobStatus.Cancelled, StopReasons.Cancelled, null, null, null, CancellationToken.None);
    }

    [Fact]
    public async Task A_job_through_two_database_outages_carries_on_in_the_same_attempt_and_succeeds()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(1000, seed: 62));
        var job = (await _client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 40, batchSize: 8, learningRate: 0.001))).Id();
        await WaitForAsync(job, j => (int)j["epochsCompleted"]! >= 2);
        string delivery = await service.Database.ScalarAsync<string>($"SELECT hangfire_job_id FROM jobs WHERE id = '{job}'");

        for (int outage = 0; outage < 2; outage++)
        {
            await WaitForAsync(job, j => (int)j["epochsCompleted"]! >= 3 + outage * 8);
            await OutageAsync(TimeSpan.FromSeconds(1.5));
        }
        var done = await WaitForAsync(job, j => (string?)j["status"] is "succeeded" or "failed" or "cancelled");

        Assert.Equal("succeeded", (string?)done["status"]);
        // Not failed and recovered: the worker rode out both outages (the same Hangfire delivery, no lost attempt).
        Assert.Equal(delivery, await service.Database.ScalarAsync<string>($"SELECT hangfire_job_id FROM jobs WHERE id = '{job}'"));
        Assert.DoesNotContain(done["transitions"]!.AsArray(), t => ((string?)t!["note"])?.Contains("lost") == true);
        var epochs = (await _client.GetJsonAsync($"/api/jobs/{job}/history"))["epochs"]!.AsArray().Select(e => (int)e!["epoch"]!);
        Assert.Equal(Enumerable.Range(1, 40), epochs);
    }

    /// <summary>
    /// What a database restart does to this process, on the test's database alone: every session ends (the lease's, the
    /// pool's, the listener's), and new ones are refused for <paramref name="length"/>.
    /// </summary>
    private async Task OutageAsync(TimeSpan length)
    {
        string admin = new NpgsqlConnectionStringBuilder(service.Database.ConnectionString) { Database = "postgres", Pooling = false }.ConnectionString;
        await using var connection = new NpgsqlConnection(admin);
        await connection.OpenAsync();
        await using (var block = new NpgsqlCommand($"""
            ALTER DATABASE "{service.Database.Name}" ALLOW_CONNECTIONS false;
            SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{service.Database.Name}';
            """, connection))
        {
            await block.ExecuteNonQueryAsync();
        }
        await Task.Delay(length);
        await using (var unblock = new NpgsqlCommand($"ALTER DATABASE \"{service.Database.Name}\" ALLOW_CONNECTIONS true", connection))
        {
            await unblock.ExecuteNonQueryAsync();
        }
        NpgsqlConnection.ClearAllPools();
    }

    [Fact]
    public async Task Readiness_keeps_the_database_error_text_for_the_log()
    {
        await using var unreachable = NpgsqlDataSource.Create("Host=127.0.0.1;Port=1;Username=nobody;Timeout=2");
        var postgres = new PostgresHealthCheck(unreachable, NullLogger<PostgresHealthCheck>.Instance);
        var workers = new WorkerHealthCheck(unreachable, Options.Create(new WorkerOptions()), NullLogger<WorkerHealthCheck>.Instance);

        var results = new[]
        {
            await postgres.CheckHealthAsync(new HealthCheckContext()),
            await workers.CheckHealthAsync(new HealthCheckContext()),
        };

        Assert.All(results, r =>
        {
            Assert.Equal(HealthStatus.Unhealthy, r.Status);
            Assert.DoesNotContain("127.0.0.1", r.Description);
            Assert.DoesNotContain(":1", r.Description);
            Assert.Null(r.Exception);
        });
    }

    [Fact]
    public async Task Readiness_counts_the_live_worker()
    {
        var health = await _client.GetJsonAsync("/health/ready");

        Assert.Equal(1, (int)health["checks"]!["hangfire"]!["data"]!["liveWorkers"]!);
    }

    /// <summary>Polls the job until <paramref name="done"/>; an answer other than 200 (a request that met a cut connection) is polled again.</summary>
    private async Task<JsonNode> WaitForAsync(string jobId, Func<JsonNode, bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            Assert.True(DateTime.UtcNow < deadline, $"job {jobId} did not get there in time");
            var response = await _client.GetAsync($"/api/jobs/{jobId}");
            if (response.IsSuccessStatusCode && JsonNode.Parse(await response.Content.ReadAsStringAsync()) is { } job && done(job))
            {
                return job;
            }
            await Task.Delay(20);
        }
    }

    /// <summary>
    /// A job begun by a worker named test-host:1 that holds its lease, without Hangfire: only what the test does happens
    /// to it (no worker runs it, no recovery pass takes it).
    /// </summary>
    private async Task<(Guid Id, JobLease Lease)> NewRunningJobAsync()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(20, seed: 60));
        var (created, _) = await Store.CreateAsync(new NewJob("default", Guid.Parse(dataset.Id()), "{}", 1, 3, null, null, ""), TimeSpan.FromHours(1),
            CancellationToken.None);
        var lease = await JobLease.TryAcquireAsync(DataSource, created!.JobId, CancellationToken.None);
        Assert.NotNull(lease);
        Assert.True(await Store.BeginAttemptAsync(created.JobId, Attempt, "test device", "test-host:1", CancellationToken.None));
        return (created.JobId, lease);
    }
}
