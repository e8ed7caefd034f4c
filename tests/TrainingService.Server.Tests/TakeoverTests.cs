using System.Globalization;
using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using TrainingService.Compute.Training;
using TrainingService.Server.Configuration;
using TrainingService.Server.Jobs;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>
/// A job handed to a new attempt while its old worker still lives (cut off by a network blip): the old attempt writes
/// nothing over the new one, and recovery never enqueues the same job twice.
/// </summary>
[Collection(ServiceTests.Name)]
public sealed class TakeoverTests(ServiceFixture service)
{
    private readonly HttpClient _client = service.Client;
    private JobStore Store => service.Factory.Services.GetRequiredService<JobStore>();
    private NpgsqlDataSource DataSource => service.Factory.Services.GetRequiredService<NpgsqlDataSource>();

    [Fact]
    public async Task An_attempt_whose_job_was_handed_to_a_new_attempt_writes_no_epoch_checkpoint_summary_model_or_status()
    {
        var (id, lease) = await NewRunningJobAsync("a1");
        await using var _ = lease;
        Assert.True(await Store.RecordEpochAsync(id, "a1", Epoch(1), null, "[]", CancellationToken.None));

        // What recovery does to a job whose worker it judged lost: records the loss and hands the job to a new Hangfire job.
        Assert.True(await Store.RecordLostAttemptAsync(id, "a1", CancellationToken.None));
        Assert.True(await Store.ReplaceDeliveryAsync(id, [JobStatus.Running], "a1", () => "a2", CancellationToken.None));
        long version = await service.Database.ScalarAsync<long>($"SELECT version FROM jobs WHERE id = '{id}'");

        Assert.False(await Store.RecordEpochAsync(id, "a1", Epoch(2), Checkpoint(2), "[]", CancellationToken.None));
        Assert.False(await Store.SetDataSummaryAsync(id, "a1", "{\"rows\":1}", CancellationToken.None));
        Assert.False(await Store.SetBaselineAsync(id, "a1", "{\"trainLoss\":1}", CancellationToken.None));
        Assert.False(await Store.TruncateHistoryAsync(id, "a1", 0, CancellationToken.None));
        Assert.False(await Store.FinishAsync(id, "a1", JobStatus.Succeeded, StopReasons.Completed, null, 2, new StoredModel("{\"layers\":[]}", "\"m\"", 2),
            CancellationToken.None));
        Assert.False(await Store.BeginAttemptAsync(id, "a1", "test device", "test-host:1", CancellationToken.None));

        Assert.Equal(version, await service.Database.ScalarAsync<long>($"SELECT version FROM jobs WHERE id = '{id}'"));
        Assert.Equal(1L, await service.Database.ScalarAsync<long>($"SELECT count(*) FROM job_epochs WHERE job_id = '{id}'"));
        Assert.Equal(0L, await service.Database.ScalarAsync<long>($"SELECT count(*) FROM job_checkpoints WHERE job_id = '{id}'"));
        Assert.Null(await Store.LoadModelAsync("default", id, CancellationToken.None));
        var job = (await Store.FindAsync("default", id, CancellationToken.None))!;
        Assert.Equal((JobStatus.Running, 1, null, null), (job.Status, job.EpochsCompleted, job.FailureCode, job.DataSummary));
        // The new attempt writes as usual.
        Assert.True(await Store.BeginAttemptAsync(id, "a2", "test device", "test-host:2", CancellationToken.None));
        Assert.True(await Store.RecordEpochAsync(id, "a2", Epoch(2), Checkpoint(2), "[]", CancellationToken.None));
        Assert.True(await Store.FinishAsync(id, "a2", JobStatus.Cancelled, StopReasons.Cancelled, null, null, null, CancellationToken.None));
    }

    [Fact]
    public async Task A_worker_whose_job_was_handed_to_a_new_attempt_stops_quietly_without_writing()
    {
        string job = (await LongJobs.StartAsync(_client, epochs: 500)).Id();
        var id = Guid.Parse(job);
        var started = DateTime.UtcNow;
        while ((int)(await _client.GetJsonAsync($"/api/jobs/{job}"))["epochsCompleted"]! < 2)
        {
            Assert.True(DateTime.UtcNow < started.AddSeconds(120), "the job did not reach epoch 2");
            await Task.Delay(50);
        }

        // Recovery handed the job to another Hangfire job (no such job exists: nothing else runs it meanwhile).
        int handedOverAt = await service.Database.ScalarAsync<int>(
            $"UPDATE jobs SET hangfire_job_id = '987654321' WHERE id = '{id}' RETURNING epochs_completed");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        JobLease? lease;
        while ((lease = await JobLease.TryAcquireAsync(DataSource, id, CancellationToken.None)) is null)
        {
            Assert.True(DateTime.UtcNow < deadline, "the worker kept training a job handed to another attempt");
            await Task.Delay(50);
        }
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(3)); // time for any late write to land
            var row = (await Store.FindAsync("default", id, CancellationToken.None))!;
            Assert.Equal((JobStatus.Running, handedOverAt, null), (row.Status, row.EpochsCompleted, row.FailureCode));
            Assert.Equal(handedOverAt, await service.Database.ScalarAsync<int>($"SELECT max(epoch) FROM job_epochs WHERE job_id = '{id}'"));
        }
        finally
        {
            await lease.DisposeAsync();
            await LongJobs.EndAsync(_client, job); // recovery hands the cancelling job to a new attempt, which confirms it
        }
    }

    [Fact]
    public async Task Two_recovery_passes_that_saw_the_same_queued_job_enqueue_it_once()
    {
        var client = new CountingClient();
        var (one, two) = (NewRecovery(client), NewRecovery(client));
        var dataset = await _client.UploadAsync(TestData.Linear(20, seed: 63));
        var (created, _) = await Store.CreateAsync(new NewJob("default", Guid.Parse(dataset.Id()), "{}", 1, 3, null, null, ""), TimeSpan.FromHours(1),
            CancellationToken.None);
        var id = created!.JobId;
        try
        {
            // Both passes read the job queued with no Hangfire job; the second takes the lease after the first let it go.
            var seen = new JobRecovery.Candidate(id, JobStatus.Queued, null, RecentlyRestarted: false);
            await one.RequeueAsync(seen, lost: false, CancellationToken.None);
            await two.RequeueAsync(seen, lost: false, CancellationToken.None);

            Assert.Equal(1, client.Created);
            Assert.Equal("900000001", await service.Database.ScalarAsync<string>($"SELECT hangfire_job_id FROM jobs WHERE id = '{id}'"));
        }
        finally
        {
            await Store.CancelAsync("default", id, CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_job_whose_spec_no_longer_plans_when_it_runs_fails_with_the_planners_problem_code_and_detail()
    {
        // The spec was checked at submit; here it names a column the dataset lacks (as if stored before a rule changed).
        var dataset = await _client.UploadAsync(TestData.Linear(40, seed: 65));
        string spec = $$"""
            {"datasetId":"{{dataset.Id()}}","target":"missing","model":{"type":"linear"},"loss":"mse",
             "optimizer":{"name":"sgd","learningRate":0.05},"epochs":3,"batchSize":8}
            """;
        var (created, _) = await Store.CreateAsync(new NewJob("default", Guid.Parse(dataset.Id()), spec, 1, 3, null, null, ""), TimeSpan.FromHours(1),
            CancellationToken.None);
        await service.Factory.Services.GetRequiredService<IBackgroundJobClient>().EnqueueAsync(Store, created!.JobId, CancellationToken.None);

        var done = await _client.WaitForEndAsync(created.JobId.ToString(), 60);

        Assert.Equal("failed", (string?)done["status"]);
        Assert.Equal("job.unknown_column", (string?)done["failure"]!["code"]);
        Assert.Contains("missing", (string?)done["failure"]!["message"]);
        Assert.Equal(0, (int)done["epochsCompleted"]!);
    }

    private JobRecovery NewRecovery(IBackgroundJobClient client) => new(DataSource, client,
        service.Factory.Services.GetRequiredService<JobStorage>(), Store, Options.Create(new WorkerOptions()), NullLogger<JobRecovery>.Instance);

    /// <summary>Counts the jobs it is asked to enqueue, and enqueues none (so no worker runs them).</summary>
    private sealed class CountingClient : IBackgroundJobClient
    {
        private int _created;

        public int Created => _created;

        public string Create(Job job, IState state) =>
            (900_000_000 + Interlocked.Increment(ref _created)).ToString(CultureInfo.InvariantCulture);

        public bool ChangeState(string jobId, IState state, string expectedState) => true;
    }

    private static EpochRecord Epoch(int epoch) =>
        new(epoch, 1.0 / epoch, null, 0, new Dictionary<string, double>(), 0.01, 1, 10, 100);

    private static TrainingCheckpoint Checkpoint(int epoch) => new()
    {
        Epoch = epoch, Seed = 1, Steps = epoch, Parameters = [1f], OptimizerState = [], LearningRate = 0.01,
        PlateauBest = double.NaN, PlateauBadEpochs = 0, BestValue = double.NaN, BestEpoch = 0, Wait = 0,
    };

    /// <summary>A job begun by hand under <paramref name="attempt"/>, holding its lease: no worker and no recovery pass touches it.</summary>
    private async Task<(Guid Id, JobLease Lease)> NewRunningJobAsync(string attempt)
    {
        var dataset = await _client.UploadAsync(TestData.Linear(20, seed: 64));
        var (created, _) = await Store.CreateAsync(new NewJob("default", Guid.Parse(dataset.Id()), "{}", 1, 3, null, null, ""), TimeSpan.FromHours(1),
            CancellationToken.None);
        var lease = await JobLease.TryAcquireAsync(DataSource, created!.JobId, CancellationToken.None);
        Assert.NotNull(lease);
        Assert.True(await Store.BeginAttemptAsync(created.JobId, attempt, "test device", "test-host:1", CancellationToken.None));
        return (created.JobId, lease);
    }
}
