using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using TrainingService.Server.Access;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Sweeps;

/// <summary>Submit, list, read and cancel sweeps; list their trials; and the loss report ("which loss fits this data?").</summary>
public static class SweepEndpoints
{
    public static IEndpointRouteBuilder MapSweepEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/sweeps").WithTags("Sweeps");
        group.MapPost("/", Submit).WithName("SubmitSweep").RequireRole(Role.Member)
            .WithSummary("Start a sweep: trials (ordinary jobs) over the parameters, chosen by grid, random or TPE (202)")
            .WithJsonExample(new
            {
                @base = new
                {
                    datasetId = "00000000-0000-0000-0000-000000000000", target = "y", model = new { type = "mlp", hiddenLayers = new[] { 32 } },
                    epochs = 30, validation = new { fraction = 0.2 },
                },
                parameters = new Dictionary<string, object>
                {
                    ["loss"] = new { values = new object[] { new { name = "mse" }, new { name = "huber", delta = 1.0 }, new { name = "l1" } } },
                    ["optimizer.learningRate"] = new { distribution = "log_uniform", min = 1e-4, max = 1e-1 },
                    ["model.hiddenLayers"] = new { values = new[] { new[] { 16 }, new[] { 64, 32 } } },
                },
                method = "tpe",
                maxTrials = 40,
                maxParallel = 4,
                objective = new { metric = "val.rmse", goal = "minimize" },
                earlyTermination = new { type = "asha", minEpochs = 3, reductionFactor = 3 },
                seed = 7,
            });
        group.MapGet("/", List).WithName("ListSweeps").RequireRole(Role.Viewer).WithSummary("Sweeps, newest first");
        group.MapGet("/{id:guid}", Get).WithName("GetSweep").RequireRole(Role.Viewer)
            .WithSummary("A sweep: status, trial counts by state, the best trial, and the objective's best-so-far over trials");
        group.MapGet("/{id:guid}/trials", Trials).WithName("ListSweepTrials").RequireRole(Role.Viewer)
            .WithSummary("The trials with their parameters, state, objective and epochs (sort=objective or trial)");
        group.MapGet("/{id:guid}/losses", Losses).WithName("SweepLosses").RequireRole(Role.Viewer)
            .WithSummary("Trials grouped by loss, the best loss and a verdict on which loss fits the data, on the sweep's objective");
        group.MapPost("/{id:guid}/cancel", Cancel).WithName("CancelSweep").RequireRole(Role.Member)
            .WithSummary("Cancel: no further trials; queued and running trials are cancelled");
        return app;
    }

    private static async Task<Results<Accepted<SweepResponse>, ProblemHttpResult>> Submit(SubmitSweepRequest request, HttpContext http,
        SweepValidator validator, SweepStore store, SweepDriver driver, ILogger<SweepDriver> logger, CancellationToken cancellationToken)
    {
        string tenant = http.Caller().Tenant;
        var (sweep, problem) = await validator.ValidateAsync(tenant, request, cancellationToken);
        if (sweep is null)
        {
            return problem!.ToResult();
        }
        var id = Guid.CreateVersion7();
        await store.CreateAsync(id, tenant, JsonSerializer.Serialize(sweep.Normalized, ApiJson.Options),
            DateTimeOffset.UtcNow + sweep.Normalized.MaxRuntime, cancellationToken);
        try
        {
            await driver.AdvanceAsync(id, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The sweep is stored: a worker's reconciler starts its trials.
            logger.LogWarning(e, "Starting the first trials of sweep {SweepId} failed; the reconciler will", id);
        }
        return TypedResults.Accepted($"/api/sweeps/{id}", await SweepReports.DescribeAsync(store, (await store.FindAsync(tenant, id, cancellationToken))!,
            cancellationToken));
    }

    /// <summary>Most sweeps one listing describes (each reads its trials).</summary>
    private const int MaxListLimit = 100;

    private static async Task<Results<Ok<SweepPage>, ProblemHttpResult>> List(HttpContext http, SweepStore store, int? limit,
        CancellationToken cancellationToken)
    {
        if (limit is < 1 or > MaxListLimit)
        {
            return Problems.BadRequest("sweep.invalid_limit", $"limit must be between 1 and {MaxListLimit}.", "limit");
        }
        var sweeps = await store.ListAsync(http.Caller().Tenant, limit ?? 20, cancellationToken);
        var items = new List<SweepResponse>(sweeps.Count);
        foreach (var sweep in sweeps)
        {
            items.Add(await SweepReports.DescribeAsync(store, sweep, cancellationToken));
        }
        return TypedResults.Ok(new SweepPage(items));
    }

    private static async Task<Results<Ok<SweepResponse>, ProblemHttpResult>> Get(Guid id, HttpContext http, SweepStore store, CancellationToken cancellationToken) =>
        await store.FindAsync(http.Caller().Tenant, id, cancellationToken) is { } sweep
            ? TypedResults.Ok(await SweepReports.DescribeAsync(store, sweep, cancellationToken))
            : NotFound(id);

    private static async Task<Results<Ok<SweepTrialPage>, ProblemHttpResult>> Trials(Guid id, HttpContext http, SweepStore store, string? sort,
        CancellationToken cancellationToken)
    {
        if (sort is not (null or "objective" or "trial"))
        {
            return Problems.BadRequest("sweep.invalid_sort", "sort must be objective or trial.", "sort");
        }
        if (await store.FindAsync(http.Caller().Tenant, id, cancellationToken) is not { } sweep)
        {
            return NotFound(id);
        }
        var definition = SweepDefinition.FromStored(sweep.Spec);
        var trials = (await store.TrialsAsync(id, definition.Objective, cancellationToken)).Select(SweepReports.Trial).ToList();
        if (sort == "objective")
        {
            trials = SweepReports.ByObjective(trials, definition.Objective).ToList();
        }
        return TypedResults.Ok(new SweepTrialPage(trials));
    }

    private static async Task<Results<Ok<LossReport>, ProblemHttpResult>> Losses(Guid id, HttpContext http, SweepStore store, CancellationToken cancellationToken)
    {
        if (await store.FindAsync(http.Caller().Tenant, id, cancellationToken) is not { } sweep)
        {
            return NotFound(id);
        }
        var definition = SweepDefinition.FromStored(sweep.Spec);
        if (!definition.VariesLoss)
        {
            return Problems.Conflict("sweep.loss_not_varied", "This sweep does not vary the loss; add \"loss\" to its parameters to compare losses.");
        }
        return TypedResults.Ok(await SweepReports.LossesAsync(store, id, definition, cancellationToken));
    }

    private static async Task<Results<Accepted<SweepResponse>, ProblemHttpResult>> Cancel(Guid id, HttpContext http, SweepStore store, SweepDriver driver,
        CancellationToken cancellationToken)
    {
        string tenant = http.Caller().Tenant;
        var cancelled = await driver.CancelAsync(tenant, id, cancellationToken);
        if (cancelled is null)
        {
            return NotFound(id);
        }
        var sweep = (await store.FindAsync(tenant, id, cancellationToken))!;
        if (cancelled == false)
        {
            return Problems.Conflict("sweep.not_cancellable", $"Sweep {id} has already ended ({sweep.Status}, {sweep.StopReason}).");
        }
        return TypedResults.Accepted($"/api/sweeps/{id}", await SweepReports.DescribeAsync(store, sweep, cancellationToken));
    }

    private static ProblemHttpResult NotFound(Guid id) => Problems.NotFound("sweep.not_found", $"No sweep {id}.");
}

/// <summary>The read side of a sweep: its description, its trials as the API shows them, and the loss report.</summary>
public static class SweepReports
{
    public static async Task<SweepResponse> DescribeAsync(SweepStore store, Data.Entities.Sweep sweep, CancellationToken cancellationToken)
    {
        var definition = SweepDefinition.FromStored(sweep.Spec);
        var rows = await store.TrialsAsync(sweep.Id, definition.Objective, cancellationToken);
        var trials = rows.Select(Trial).ToList();
        var best = ByObjective(trials, definition.Objective).FirstOrDefault(t => t.Objective is not null);
        var bestSoFar = new List<BestSoFarPoint>();
        foreach (var row in rows.Where(r => r.Objective is not null && Jobs.JobStatus.IsTerminal(r.Status)))
        {
            double value = row.Objective!.Value;
            double previous = bestSoFar.Count == 0 ? value : bestSoFar[^1].Best;
            bestSoFar.Add(new BestSoFarPoint(row.Index, value, definition.Objective.Minimize ? Math.Min(previous, value) : Math.Max(previous, value)));
        }
        return new SweepResponse
        {
            Id = sweep.Id, Status = sweep.Status, StopReason = sweep.StopReason, CreatedAt = sweep.CreatedAt, FinishedAt = sweep.FinishedAt,
            Trials = new SweepCounts(definition.MaxTrials, trials.Count, trials.GroupBy(t => t.State).ToDictionary(g => g.Key, g => g.Count())),
            Best = best, BestSoFar = bestSoFar, Spec = JsonSerializer.Deserialize<JsonElement>(sweep.Spec),
        };
    }

    public static SweepTrialResponse Trial(TrialRow row) => new()
    {
        JobId = row.JobId, Trial = row.Index, Parameters = JsonSerializer.Deserialize<JsonElement>(row.Parameters),
        State = row.StopReason == Jobs.StopReasons.Pruned ? "pruned" : row.Status, StopReason = row.StopReason, Objective = row.Objective,
        ObjectiveEpoch = row.ObjectiveEpoch, EpochsCompleted = row.EpochsCompleted,
    };

    /// <summary>Best first; trials without a value last, in index order.</summary>
    public static IEnumerable<SweepTrialResponse> ByObjective(IEnumerable<SweepTrialResponse> trials, Objective objective) => trials
        .OrderBy(t => t.Objective is null)
        .ThenBy(t => t.Objective is { } v ? SweepDriver.Normalise(objective, v) : 0)
        .ThenBy(t => t.Trial);

    /// <summary>The trials that ended, each with its loss (the base spec's loss with the trial's parameters set) and its objective curve.</summary>
    public static async Task<LossReport> LossesAsync(SweepStore store, Guid id, SweepDefinition definition, CancellationToken cancellationToken)
    {
        var trials = await store.TrialsAsync(id, definition.Objective, cancellationToken);
        var curves = await store.CurvesAsync(id, definition.Objective, cancellationToken);
        var ended = trials.Where(t => Jobs.JobStatus.IsTerminal(t.Status)).Select(t =>
        {
            var spec = SweepDriver.AssignmentOf(definition, t.Parameters).AppliedTo(definition.Base);
            return new LossTrial(t.JobId, spec["loss"]!.DeepClone(), t.Objective, t.StopReason == Jobs.StopReasons.Pruned,
                curves.GetValueOrDefault(t.JobId) ?? []);
        }).ToList();
        return LossVerdict.Compute(ended, definition.Objective);
    }
}
