using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using TrainingService.Server.Configuration;
using TrainingService.Compute.Devices;
using TrainingService.Compute.Losses;
using TrainingService.Server.Infrastructure;
using TrainingService.Server.Jobs;

namespace TrainingService.Server.Losses;

/// <summary>A catalogue entry as <c>GET /api/losses</c> shows it.</summary>
public sealed record LossInfo(string Name, IReadOnlyList<string> Aliases, IReadOnlyList<string> Tasks, string Targets, string InputSpace,
    IReadOnlyList<LossParameterInfo> Parameters, string Formula, string Mean, string DefaultReduction, string? Notes);

public sealed record LossParameterInfo(string Name, string Type, object? Default, string? Range, string Description);

/// <summary>The catalogue, plus the regularization conventions.</summary>
public sealed record LossCatalogResponse(IReadOnlyList<LossInfo> Losses, IReadOnlyList<string> Reductions, object Regularization);

/// <summary>
/// <c>POST /api/losses/evaluate</c>: <c>loss</c> is a name, {"name", params…} or {"terms": […]}; <c>predictions</c> a number
/// array or an array of rows; <c>targets</c> numbers (values, labels, class indices) or rows (probabilities).
/// </summary>
public sealed record EvaluateLossRequest
{
    public JsonElement? Loss { get; init; }
    /// <summary>Parameters of a single loss given by name.</summary>
    public Dictionary<string, JsonElement>? Params { get; init; }
    /// <summary>mean (default; kl_div: batchmean), sum, none or batchmean.</summary>
    public string? Reduction { get; init; }
    public JsonElement? Predictions { get; init; }
    public JsonElement? Targets { get; init; }
    /// <summary>Per-element weights (elementwise losses).</summary>
    public JsonElement? Weights { get; init; }
    /// <summary>Per-class weights.</summary>
    public List<double>? ClassWeights { get; init; }
    /// <summary>Per-element variance for gaussian_nll.</summary>
    public JsonElement? Variance { get; init; }
    /// <summary>
    /// Predictions are raw model outputs, as in training: bce applies a sigmoid first, nll and kl_div a log-softmax.
    /// Default false: predictions are in each loss's own input space.
    /// </summary>
    public bool? FromLogits { get; init; }
}

/// <summary>
/// The reduced loss and its gradient (shaped like the predictions); per-item losses for reduction none; the reduction
/// each term used (e.g. "mean", or "mean+batchmean" for cross_entropy + kl_div).
/// </summary>
public sealed record EvaluateLossResponse(double Loss, JsonElement Gradient, IReadOnlyList<float>? Losses, string Reduction);

public static class LossEndpoints
{
    public static IEndpointRouteBuilder MapLossEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/losses").WithTags("Losses");
        group.MapGet("/", Catalog).WithName("ListLosses").WithSummary("Every loss: tasks, targets, input space, parameters, formula, reductions");
        long maxBytes = app.ServiceProvider.GetRequiredService<IOptions<LossApiOptions>>().Value.MaxRequestBytes;
        group.MapPost("/evaluate", Evaluate).WithName("EvaluateLoss")
            .WithMetadata(new RequestSizeLimitAttribute(maxBytes)) // Kestrel's 30 MB default is too small for 10⁶ predictions
            .WithSummary("A loss and its gradient, computed by the kernels the trainer uses")
            .WithJsonExample(new
            {
                loss = new { terms = new object[] { new { name = "huber", weight = 1.0 }, new { name = "l1", weight = 0.5 } } },
                predictions = new[] { 0.2, -1.5, 3.0 },
                targets = new[] { 0.0, 1.0, 1.0 },
            });
        return app;
    }

    private static Ok<LossCatalogResponse> Catalog() => TypedResults.Ok(new LossCatalogResponse(
        LossCatalog.All.Select(d => new LossInfo(d.Name, d.Aliases, d.Tasks.Select(t => t.ToString().ToLowerInvariant()).ToList(), d.Targets,
            Snake(d.InputSpace.ToString()), d.Parameters.Select(p => new LossParameterInfo(p.Name, Snake(p.Type.ToString()), p.Default, p.Range, p.Description)).ToList(),
            d.Formula, d.MeanDenominatorText, ReductionNames[d.DefaultReduction], d.Notes)).ToList(),
        ["mean", "sum", "none", "batchmean"],
        new
        {
            keras = "penalty l1·Σ|w| + l2·Σw², gradient l1·sgn(w) + 2·l2·w (default)",
            pytorch = "weight-decay reading: penalty l1·Σ|w| + (l2/2)·Σw², gradient l1·sgn(w) + l2·w",
            includeBias = "biases are excluded unless includeBias is true",
        }));

    private static async Task<Results<Ok<EvaluateLossResponse>, ProblemHttpResult>> Evaluate(EvaluateLossRequest request, ComputeDevice device,
        CancellationToken cancellationToken)
    {
        if (request.Loss is not { } lossJson || lossJson.ValueKind is not (JsonValueKind.String or JsonValueKind.Object))
        {
            return Problems.BadRequest("loss.missing_name", "loss is required: a name, {\"name\": …} or {\"terms\": […]}.", "loss");
        }
        var terms = JobPlanner.ParseLoss(lossJson).ToList();
        if (request.Params is { Count: > 0 } extra)
        {
            if (terms.Count != 1)
            {
                return Problems.BadRequest("loss.invalid_parameter", "params applies to a single loss; give each term its own parameters.", "params");
            }
            var merged = new Dictionary<string, object?>(terms[0].Parameters ?? new Dictionary<string, object?>());
            foreach (var (name, value) in extra)
            {
                merged[name] = JobPlanner.ParameterValue(value, $"params.{name}");
            }
            terms[0] = terms[0] with { Parameters = merged };
        }
        var (predictions, rows, classes) = Matrix(request.Predictions, "predictions");
        var (targets, targetRows, targetWidth) = Matrix(request.Targets, "targets");
        if (targetRows != rows)
        {
            return Problems.BadRequest("loss.shape_mismatch", $"targets has {targetRows} rows; predictions have {rows}.", "targets");
        }
        bool classIndices = classes > 1 && targetWidth == 1 && IsFlat(request.Targets!.Value);
        var binding = new LossBinding(classIndices ? TargetLayout.ClassIndex : TargetLayout.Elementwise, classes,
            OnLogits: request.FromLogits ?? false, request.ClassWeights?.ToArray());
        var loss = CombinedLoss.Bind(terms, binding, "loss");
        Reduction? requested = request.Reduction switch
        {
            null => null,
            _ when ReductionNames.FirstOrDefault(p => p.Value == request.Reduction).Value is not null =>
                ReductionNames.First(p => p.Value == request.Reduction).Key,
            _ => throw new ApiProblemException(400, "loss.invalid_reduction", "reduction must be mean, sum, none or batchmean.", "reduction"),
        };
        loss.ResolveReduction(requested);
        var input = new LossInput(predictions, targets, rows, classes,
            request.Weights is { } w ? Matrix(w, "weights").Values : null,
            request.Variance is { } v ? Matrix(v, "variance").Values : null);
        var result = await LossEvaluator.EvaluateAsync(device, loss, input, requested, cancellationToken);
        var gradient = IsFlat(request.Predictions!.Value)
            ? JsonSerializer.SerializeToElement(result.Gradient, ApiJson.Options)
            : JsonSerializer.SerializeToElement(Enumerable.Range(0, rows).Select(r => result.Gradient.AsSpan(r * classes, classes).ToArray()), ApiJson.Options);
        // Without an explicit reduction each term uses its own default (kl_div: batchmean, the rest: mean).
        var applied = loss.Terms.Select(t => ReductionNames[CombinedLoss.TermReduction(t, requested)]).Distinct().ToList();
        return TypedResults.Ok(new EvaluateLossResponse(result.Loss, gradient, result.PerItem, string.Join("+", applied)));
    }

    /// <summary>A number array (rows of one) or an array of equal-length number rows, flattened row-major.</summary>
    private static (float[] Values, int Rows, int Width) Matrix(JsonElement? element, string field)
    {
        if (element is not { ValueKind: JsonValueKind.Array } array)
        {
            throw new ApiProblemException(400, "loss.missing_input", $"{field} must be an array of numbers or of rows.", field);
        }
        int rows = array.GetArrayLength();
        if (rows == 0)
        {
            throw new ApiProblemException(400, "loss.empty_input", $"{field} is empty.", field);
        }
        if (IsFlat(array))
        {
            var values = new float[rows];
            int i = 0;
            foreach (var item in array.EnumerateArray())
            {
                values[i] = Number(item, $"{field}[{i}]");
                i++;
            }
            return (values, rows, 1);
        }
        int width = -1, r = 0;
        var flat = new List<float>();
        foreach (var row in array.EnumerateArray())
        {
            if (row.ValueKind != JsonValueKind.Array || (width >= 0 && row.GetArrayLength() != width) || row.GetArrayLength() == 0)
            {
                throw new ApiProblemException(400, "loss.shape_mismatch", $"{field}[{r}] must be a row as long as the first.", $"{field}[{r}]");
            }
            width = row.GetArrayLength();
            int c = 0;
            foreach (var item in row.EnumerateArray())
            {
                flat.Add(Number(item, $"{field}[{r}][{c++}]"));
            }
            r++;
        }
        return (flat.ToArray(), rows, width);
    }

    private static bool IsFlat(JsonElement array) => array.GetArrayLength() == 0 || array[0].ValueKind != JsonValueKind.Array;

    private static float Number(JsonElement item, string field)
    {
        if (item.ValueKind == JsonValueKind.Number && item.TryGetDouble(out double value))
        {
            return (float)value;
        }
        if (item.ValueKind == JsonValueKind.String && item.GetString() is "NaN" or "Infinity" or "-Infinity")
        {
            throw new ApiProblemException(400, "loss.non_finite_input", $"{field} is not a finite number.", field);
        }
        throw new ApiProblemException(400, "loss.invalid_input", $"{field} must be a number.", field);
    }

    private static readonly Dictionary<Reduction, string> ReductionNames = new()
    {
        [Reduction.Mean] = "mean",
        [Reduction.Sum] = "sum",
        [Reduction.None] = "none",
        [Reduction.BatchMean] = "batchmean",
    };

    private static string Snake(string pascal) => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(pascal);
}
