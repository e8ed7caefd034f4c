using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Npgsql;
using TrainingService.Compute.Devices;
using TrainingService.Compute.Models;
using TrainingService.Compute.Training;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Jobs;

/// <summary>Rows to predict: each an object of column name → value (number, string, boolean or null).</summary>
public sealed record PredictRequest(List<Dictionary<string, JsonElement>>? Rows);

/// <summary>One prediction: values (regression), or a label with its probability / class probabilities.</summary>
public sealed record Prediction
{
    public IReadOnlyList<double>? Values { get; init; }
    public string? Label { get; init; }
    public double? Probability { get; init; }
    public double? Score { get; init; }
    public IReadOnlyDictionary<string, double>? Probabilities { get; init; }
    /// <summary>Per-class margin scores, for models trained with multi_margin only (they are not probabilities).</summary>
    public IReadOnlyDictionary<string, double>? Scores { get; init; }
    /// <summary>Imputed values and unseen categories in this row.</summary>
    public IReadOnlyList<string>? Notes { get; init; }
}

public sealed record PredictResponse(Guid JobId, IReadOnlyList<Prediction> Predictions);

public static class ModelEndpoints
{
    private const int MaxRows = 10_000;

    public static IEndpointRouteBuilder MapModelEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/jobs").WithTags("Models");
        group.MapGet("/{id:guid}/model", Get).WithName("GetModel")
            .WithSummary("The trained model: architecture, weights, feature pipeline, label order (ETag)")
            .Produces<ModelDocument>().Produces(304).ProducesProblem(404).ProducesProblem(409);
        group.MapPost("/{id:guid}/predict", Predict).WithName("Predict")
            .WithSummary("Predict rows with the job's model, preprocessing them as in training")
            .WithJsonExample(new { rows = new[] { new Dictionary<string, object?> { ["sepal length (cm)"] = 5.9, ["sepal width (cm)"] = 3.0 } } });
        return app;
    }

    private static async Task<(string Json, string ETag)?> LoadAsync(NpgsqlDataSource dataSource, Guid id, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT model, e_tag FROM job_models WHERE job_id = @id");
        command.Parameters.AddWithValue("id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? (reader.GetString(0), reader.GetString(1)) : null;
    }

    private static async Task<IResult> Get(Guid id, HttpRequest request, HttpResponse response, NpgsqlDataSource dataSource, JobStore store,
        CancellationToken cancellationToken)
    {
        var model = await LoadAsync(dataSource, id, cancellationToken);
        if (model is null)
        {
            return await Missing(store, id, cancellationToken);
        }
        if (ETags.Matches(request, model.Value.ETag))
        {
            return ETags.NotModified(response, model.Value.ETag);
        }
        response.Headers.ETag = model.Value.ETag;
        return TypedResults.Text(model.Value.Json, "application/json");
    }

    private static async Task<Results<Ok<PredictResponse>, ProblemHttpResult>> Predict(Guid id, PredictRequest request,
        NpgsqlDataSource dataSource, JobStore store, ComputeDevice device, CancellationToken cancellationToken)
    {
        var stored = await LoadAsync(dataSource, id, cancellationToken);
        if (stored is null)
        {
            return await Missing(store, id, cancellationToken);
        }
        if (request.Rows is not { Count: > 0 })
        {
            return Problems.BadRequest("predict.empty", "Send at least one row: {\"rows\": [{\"column\": value, …}]}.", "rows");
        }
        if (request.Rows.Count > MaxRows)
        {
            return Problems.BadRequest("predict.too_many_rows", $"At most {MaxRows} rows per request.", "rows");
        }
        if (request.Rows.IndexOf(null!) is int blank and >= 0)
        {
            return Problems.BadRequest("predict.invalid_row", $"rows[{blank}] is null; each row is an object of column → value.", $"rows[{blank}]");
        }
        var model = JsonSerializer.Deserialize<ModelDocument>(stored.Value.Json, ApiJson.Options)!;
        var pipeline = model.Pipeline;
        var known = model.Features.Select(f => f.Column).ToHashSet(StringComparer.Ordinal);
        int width = pipeline.Width;
        var inputs = new float[request.Rows.Count * width];
        var notes = new List<string>[request.Rows.Count];
        for (int r = 0; r < request.Rows.Count; r++)
        {
            var row = request.Rows[r];
            foreach (var column in row.Keys)
            {
                if (!known.Contains(column) && !model.TargetColumns.Contains(column))
                {
                    return Problems.BadRequest("predict.unknown_column",
                        $"Row {r} has column '{column}', which the model does not use. Features: {string.Join(", ", known)}.", $"rows[{r}].{column}");
                }
            }
            foreach (var column in known)
            {
                if (!row.ContainsKey(column))
                {
                    return Problems.BadRequest("predict.missing_column",
                        $"Row {r} lacks feature '{column}' (send null for a missing value).", $"rows[{r}].{column}");
                }
            }
            notes[r] = [];
            try
            {
                pipeline.Encode(row, inputs.AsSpan(r * width, width), notes[r]);
            }
            catch (FormatException e)
            {
                return Problems.BadRequest("predict.invalid_value", $"Row {r}: {e.Message}.", $"rows[{r}]");
            }
        }
        var (layout, parameters) = model.ToNetwork();
        var outputs = await Predictor.PredictAsync(device, layout, parameters, inputs, request.Rows.Count, cancellationToken);
        var predictions = new List<Prediction>(request.Rows.Count);
        int k = layout.Outputs;
        for (int r = 0; r < request.Rows.Count; r++)
        {
            var raw = outputs.AsSpan(r * k, k).ToArray().Select(v => (double)v).ToArray();
            var values = (double[])raw.Clone();
            Metrics.Transform(model.Transform, values);
            predictions.Add(Describe(model, raw, values) with { Notes = notes[r].Count > 0 ? notes[r] : null });
        }
        return TypedResults.Ok(new PredictResponse(id, predictions));
    }

    private static Prediction Describe(ModelDocument model, double[] raw, double[] values)
    {
        var labels = model.Labels;
        switch (model.Task)
        {
            case "binary" when model.Transform == OutputTransform.Identity:
                return new Prediction { Label = labels![raw[0] > 0 ? 1 : 0], Score = raw[0] };
            case "binary":
                return new Prediction { Label = labels![values[0] > 0.5 ? 1 : 0], Probability = values[0] };
            case "multiclass" when model.Transform == OutputTransform.Identity:
                int top = Array.IndexOf(raw, raw.Max());
                return new Prediction { Label = labels![top], Scores = labels.Select((l, i) => (l, raw[i])).ToDictionary(p => p.l, p => p.Item2) };
            case "multiclass":
                int best = Array.IndexOf(values, values.Max());
                return new Prediction
                {
                    Label = labels![best],
                    Probability = values[best],
                    Probabilities = labels.Select((l, i) => (l, values[i])).ToDictionary(p => p.l, p => p.Item2),
                };
            case "distribution":
                return new Prediction { Probabilities = model.TargetColumns.Select((c, i) => (c, values[i])).ToDictionary(p => p.c, p => p.Item2) };
            default:
                return new Prediction { Values = values };
        }
    }

    private static async Task<ProblemHttpResult> Missing(JobStore store, Guid id, CancellationToken cancellationToken)
    {
        string? status = await store.StatusAsync(id, cancellationToken);
        return status is null
            ? Problems.NotFound("job.not_found", $"No job {id}.")
            : Problems.Conflict("job.no_model", $"Job {id} has no model yet (status {status}); models are stored when training ends.");
    }
}
