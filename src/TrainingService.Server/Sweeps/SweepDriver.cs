using System.Text.Json.Nodes;
using Npgsql;
using TrainingService.Compute.Training;
using TrainingService.Server.Jobs;

namespace TrainingService.Server.Sweeps;

/// <summary>Sweep states: running → completed | cancelled.</summary>
public static class SweepStatus
{
    public const string Running = "running";
    public const string Completed = "completed";
    public const string Cancelled = "cancelled";
}

/// <summary>
/// Schedules a sweep's trials. <see cref="AdvanceAsync"/> is the whole scheduler and is safe to call any time from any
/// process: under the sweep row's lock it reads the trials (jobs), submits new ones while fewer than maxParallel are
/// unfinished and trials remain, and ends the sweep when all are done or its deadline passed. Because a trial is created
/// with its index under a unique key, a crash at any point loses nothing and repeats nothing: the next call sees the jobs
/// that were committed and continues after them. It runs when a sweep is created, when a trial ends (in the worker) and
/// every few seconds in each worker (<see cref="SweepReconciler"/>).
/// </summary>
public sealed class SweepDriver(NpgsqlDataSource dataSource, SweepStore sweeps, JobStore jobs, IServiceScopeFactory scopes, ILogger<SweepDriver> logger)
    : ISweepTrials
{
    public async Task AdvanceAsync(Guid sweepId, CancellationToken cancellationToken)
    {
        List<Guid> toCancel = [];
        string tenant;
        await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            var sweep = await SweepStore.LockAsync(connection, transaction, sweepId, cancellationToken);
            if (sweep is null || sweep.Status != SweepStatus.Running)
            {
                return;
            }
            tenant = sweep.Tenant;
            var definition = SweepDefinition.FromStored(sweep.Spec);
            // Only TPE learns from the trials' values; counting them needs their states alone, not a read of every epoch.
            var learnsFrom = definition.Method == SweepMethod.Tpe ? definition.Objective : null;
            var trials = await sweeps.TrialsAsync(sweepId, learnsFrom, cancellationToken, connection, transaction);
            if (sweep.Deadline is { } deadline && deadline <= DateTimeOffset.UtcNow)
            {
                toCancel = trials.Where(t => !JobStatus.IsTerminal(t.Status)).Select(t => t.JobId).ToList();
                await SweepStore.UpdateAsync(connection, transaction, sweepId, sweep.NextTrial, sweep.Exhausted, SweepStatus.Completed, "max_runtime",
                    cancellationToken);
                logger.LogInformation("Sweep {SweepId} reached its maxRuntime; cancelling {Count} unfinished trials", sweepId, toCancel.Count);
            }
            else
            {
                // One past the largest stored index, whatever the row says: a crash may have committed trials after its last update.
                int first = Math.Max(sweep.NextTrial, trials.Count == 0 ? 0 : trials.Max(t => t.Index) + 1);
                var (next, exhausted) = await CreateTrialsAsync(sweep.Tenant, sweepId, definition, trials, first, sweep.Exhausted, cancellationToken);
                bool done = (exhausted || next >= definition.MaxTrials) && trials.All(t => JobStatus.IsTerminal(t.Status));
                string? reason = done ? (next >= definition.MaxTrials ? "max_trials" : "grid_exhausted") : null;
                await SweepStore.UpdateAsync(connection, transaction, sweepId, next, exhausted, done ? SweepStatus.Completed : null, reason, cancellationToken);
                if (done)
                {
                    logger.LogInformation("Sweep {SweepId} completed ({Reason}) after {Trials} trials", sweepId, reason, trials.Count);
                }
            }
            await transaction.CommitAsync(cancellationToken);
        }
        await CancelTrialsAsync(tenant, toCancel, cancellationToken);
    }

    /// <summary>
    /// Submits trials from index <paramref name="next"/> while fewer than maxParallel are unfinished; each new trial is added
    /// to <paramref name="trials"/>. A trial whose spec the job API refuses (a combination of valid values that does not
    /// plan) keeps its index and is skipped; a full queue leaves the rest for the next call.
    /// </summary>
    private async Task<(int Next, bool Exhausted)> CreateTrialsAsync(string tenant, Guid sweepId, SweepDefinition definition, List<TrialRow> trials,
        int next, bool exhausted, CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var submitter = scope.ServiceProvider.GetRequiredService<JobSubmitter>();
        while (!exhausted && next < definition.MaxTrials && trials.Count(t => !JobStatus.IsTerminal(t.Status)) < definition.MaxParallel)
        {
            var assignment = SweepSampler.Propose(definition.Method, definition.Spaces, definition.Seed, next, Observed(definition, trials));
            if (assignment is null)
            {
                exhausted = true;
                break;
            }
            string parameters = assignment.ToJson().ToJsonString();
            var (job, problem) = await submitter.SubmitAsync(tenant, definition.TrialRequest(assignment), null, null, cancellationToken,
                new SweepTrialRef(sweepId, next, parameters));
            if (job is null && problem?.Code == JobStore.QueueFull)
            {
                logger.LogInformation("Sweep {SweepId}: the tenant's queue is full; trial {Trial} waits", sweepId, next);
                break;
            }
            if (job is null)
            {
                logger.LogWarning("Sweep {SweepId}: trial {Trial} ({Parameters}) was refused: {Code}: {Detail}", sweepId, next, parameters, problem?.Code, problem?.Detail);
            }
            else
            {
                trials.Add(new TrialRow(job.Id, next, parameters, job.Status, null, 0, null, null));
            }
            next++;
        }
        return (next, exhausted);
    }

    /// <summary>The trials a model-based sampler learns from: their assignments and objectives, normalised so lower is better.</summary>
    private static List<ObservedTrial> Observed(SweepDefinition definition, List<TrialRow> trials) => trials
        .Where(t => JobStatus.IsTerminal(t.Status))
        .Select(t => new ObservedTrial(t.Index, AssignmentOf(definition, t.Parameters), t.Objective is { } v ? Normalise(definition.Objective, v) : null))
        .ToList();

    /// <summary>A stored parameter object read back in the order of the sweep's spaces.</summary>
    public static Assignment AssignmentOf(SweepDefinition definition, string parameters)
    {
        var json = JsonNode.Parse(parameters)!.AsObject();
        return new Assignment(definition.Spaces.Select(s => new KeyValuePair<string, JsonNode?>(s.Path, json[s.Path]?.DeepClone())).ToList());
    }

    /// <summary>The objective with lower always better (a maximised metric negated).</summary>
    public static double Normalise(Objective objective, double value) => objective.Minimize ? value : -value;

    /// <summary>
    /// Cancels a running sweep: no trial is created after this, and its queued and running trials are cancelled. Null when
    /// the tenant has no such sweep; false when it had already ended.
    /// </summary>
    public async Task<bool?> CancelAsync(string tenant, Guid sweepId, CancellationToken cancellationToken)
    {
        List<Guid> unfinished;
        await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            var sweep = await SweepStore.LockAsync(connection, transaction, sweepId, cancellationToken);
            if (sweep is null || sweep.Tenant != tenant)
            {
                return null;
            }
            if (sweep.Status != SweepStatus.Running)
            {
                return false;
            }
            var trials = await sweeps.TrialsAsync(sweepId, null, cancellationToken, connection, transaction);
            unfinished = trials.Where(t => !JobStatus.IsTerminal(t.Status)).Select(t => t.JobId).ToList();
            await SweepStore.UpdateAsync(connection, transaction, sweepId, sweep.NextTrial, sweep.Exhausted, SweepStatus.Cancelled, "cancelled", cancellationToken);
            await transaction.CommitAsync(cancellationToken);
        }
        await CancelTrialsAsync(tenant, unfinished, cancellationToken);
        return true;
    }

    private async Task CancelTrialsAsync(string tenant, List<Guid> jobIds, CancellationToken cancellationToken)
    {
        foreach (var id in jobIds)
        {
            // A trial that ended meanwhile answers 409; the sweep is over either way.
            await jobs.CancelAsync(tenant, id, cancellationToken);
        }
    }

    public async Task<ITrialPruner?> PrunerAsync(Guid sweepId, Guid jobId, int totalEpochs, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT spec FROM sweeps WHERE id = @id");
        command.Parameters.AddWithValue("id", sweepId);
        if (await command.ExecuteScalarAsync(cancellationToken) is not string spec)
        {
            return null;
        }
        var definition = SweepDefinition.FromStored(spec);
        return definition.EarlyTermination is { } rule ? new TrialPruner(sweeps, sweepId, jobId, totalEpochs, rule, definition.Objective) : null;
    }

    public async Task TrialEndedAsync(Guid sweepId, CancellationToken cancellationToken) => await AdvanceAsync(sweepId, cancellationToken);

    /// <summary>One trial's pruning: its best value so far, and at each decision epoch a comparison with the other trials there.</summary>
    private sealed class TrialPruner(SweepStore sweeps, Guid sweepId, Guid jobId, int totalEpochs, EarlyTermination rule, Objective objective) : ITrialPruner
    {
        private double _best = double.PositiveInfinity;

        public async ValueTask<bool> ShouldStopAsync(EpochRecord record, CancellationToken cancellationToken)
        {
            double raw = objective.Metric switch
            {
                "valLoss" => record.ValLoss ?? double.NaN,
                "trainLoss" => record.TrainLoss,
                var m => record.Metrics.TryGetValue(m[4..], out var v) ? v : double.NaN,
            };
            // A non-finite value is the worst value there is: a diverging trial is the first to go.
            double value = double.IsFinite(raw) ? Normalise(objective, raw) : double.PositiveInfinity;
            _best = Math.Min(_best, value);
            if (!SweepPruning.IsDecisionEpoch(rule, record.Epoch, totalEpochs))
            {
                return false;
            }
            var peers = (await sweeps.PeerValuesAsync(sweepId, jobId, record.Epoch, objective, cancellationToken))
                .Select(v => double.IsFinite(v) ? Normalise(objective, v) : double.PositiveInfinity).ToList();
            return SweepPruning.ShouldPrune(rule, record.Epoch, value, _best, peers);
        }
    }
}
