using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using TrainingService.Compute.Devices;
using TrainingService.Compute.Models;
using TrainingService.Compute.Training;
using TrainingService.Server.Access;
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
    private const string OnnxContentType = "application/onnx";

    public static IEndpointRouteBuilder MapModelEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/jobs").WithTags("Models");
        group.MapGet("/{id:guid}/model", Get).WithName("GetModel").RequireRole(Role.Viewer)
            .WithSummary("The trained model: architecture, weights, feature pipeline, label order (ETag); ?format=onnx for one ONNX graph with its preprocessing")
            .WithDescription("format=json (default) or onnx: application/onnx, one graph taking the raw feature columns (see README, Exported models).")
            .Produces<ModelDocument>().Produces(304).ProducesProblem(400).ProducesProblem(404).ProducesProblem(409);
        group.MapPost("/{id:guid}/predict", Predict).WithName("Predict").RequireRole(Role.Viewer)
            .WithSummary("Predict rows with the job's model, preprocessing them as in training")
            .WithJsonExample(new { rows = new[] { new Dictionary<string, object?> { ["sepal length (cm)"] = 5.9, ["sepal width (cm)"] = 3.0 } } });
        return app;
    }

    private static async Task<IResult> Get(Guid id, string? format, HttpRequest request, HttpResponse response, JobStore store, JobStates states,
        CancellationToken cancellationToken)
    {
        bool onnx = format == "onnx";
        if (format is not (null or "json" or "onnx"))
        {
            return Problems.BadRequest("model.unknown_format", $"Unknown model format '{format}'; use json (the default) or onnx.", "format");
        }
        string tenant = request.HttpContext.Caller().Tenant;
        var model = await store.LoadModelAsync(tenant, id, cancellationToken);
        if (model is null)
        {
            return await Missing(states, tenant, id, cancellationToken);
        }
        // The export is a function of the stored model and the exporter's version, so its ETag derives from both.
        string etag = onnx ? $"{model.Value.ETag[..^1]}-onnx{OnnxExport.Version}\"" : model.Value.ETag;
        if (ETags.Matches(request, etag))
        {
            return ETags.NotModified(response, etag);
        }
        response.Headers.ETag = etag;
        if (!onnx)
        {
            return TypedResults.Text(model.Value.Json, "application/json");
        }
        var document = JsonSerializer.Deserialize<ModelDocument>(model.Value.Json, ApiJson.Options)!;
        return TypedResults.File(OnnxExport.Write(document), OnnxContentType, $"job-{id}.onnx");
    }

    private static async Task<Results<Ok<PredictResponse>, ProblemHttpResult>> Predict(Guid id, PredictRequest request, HttpContext http,
        JobStore store, JobStates states, ComputeDevice device, CancellationToken cancellationToken)
    {
        string tenant = http.Caller().Tenant;
        var stored = await store.LoadModelAsync(tenant, id, cancellationToken);
        if (stored is null)
        {
            return await Missing(states, tenant, id, cancellationToken);
        }
        if (CheckRows(request.Rows) is { } refused)
        {
            return refused.ToResult();
        }
        var model = JsonSerializer.Deserialize<ModelDocument>(stored.Value.Json, ApiJson.Options)!;
        var rows = request.Rows!;
        var inputs = new float[rows.Count * model.Pipeline.Width];
        var notes = new List<string>[rows.Count];
        for (int r = 0; r < rows.Count; r++)
        {
            if (EncodeRow(model, rows[r], r, inputs.AsSpan(r * model.Pipeline.Width, model.Pipeline.Width), notes[r] = []) is { } problem)
            {
                return problem.ToResult();
            }
        }
        var (layout, parameters) = model.ToNetwork();
        var outputs = await Predictor.PredictAsync(device, layout, parameters, inputs, rows.Count, cancellationToken);
        var predictions = new List<Prediction>(rows.Count);
        int k = layout.Outputs;
        for (int r = 0; r < rows.Count; r++)
        {
            var raw = outputs.AsSpan(r * k, k).ToArray().Select(v => (double)v).ToArray();
            var values = (double[])raw.Clone();
            Metrics.Transform(model.Transform, values);
            predictions.Add(Describe(model, raw, values) with { Notes = notes[r].Count > 0 ? notes[r] : null });
        }
        return TypedResults.Ok(new PredictResponse(id, predictions));
    }

    private static ApiProblem? CheckRows(List<Dictionary<string, JsonElement>>? rows)
    {
        if (rows is not { Count: > 0 })
        {
            return ApiProblem.BadRequest("predict.empty", "Send at least one row: {\"rows\": [{\"column\": value, …}]}.", "rows");
        }
        if (rows.Count > MaxRows)
        {
            return ApiProblem.BadRequest("predict.too_many_rows", $"At most {MaxRows} rows per request.", "rows");
        }
        return rows.IndexOf(null!) is int blank and >= 0
            ? ApiProblem.BadRequest("predict.invalid_row", $"rows[{blank}] is null; each row is an object of column → value.", $"rows[{blank}]")
            : null;
    }

    /// <summary>Encodes one row with the training pipeline; unknown and missing columns are refused.</summary>
    private static ApiProblem? EncodeRow(ModelDocument model, Dictionary<string, JsonElement> row, int r, Span<float> destination, List<string> notes)
    {
        var known = model.Features.Select(f => f.Column).ToList();
        foreach (var column in row.Keys)
        {
            if (!known.Contains(column) && !model.TargetColumns.Contains(column))
            {
                return ApiProblem.BadRequest("predict.unknown_column",
                    $"Row {r} has column '{column}', which the model does not use. Features: {string.Join(", ", known)}.", $"rows[{r}].{column}");
            }
        }
        foreach (var column in known)
        {
            if (!row.ContainsKey(column))
            {
                return ApiProblem.BadRequest("predict.missing_column", $"Row {r} lacks feature '{column}' (send null for a missing value).", $"rows[{r}].{column}");
            }
        }
        try
        {
            model.Pipeline.Encode(row, destination, notes);
            return null;
        }
        catch (FormatException e)
        {
            return ApiProblem.BadRequest("predict.invalid_value", $"Row {r}: {e.Message}.", $"rows[{r}]");
        }
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

    private static async Task<ProblemHttpResult> Missing(JobStates states, string tenant, Guid id, CancellationToken cancellationToken)
    {
        string? status = (await states.GetAsync(tenant, id, cancellationToken))?.Status;
        return status is null
            ? Problems.NotFound("job.not_found", $"No job {id}.")
            : Problems.Conflict("job.no_model", $"Job {id} has no model yet (status {status}); models are stored when training ends.");
    }
}
