using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using TrainingService.Server.Access;
using TrainingService.Server.Configuration;
using TrainingService.Compute.Devices;
using TrainingService.Compute.Losses;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Losses;

/// <summary>A catalogue entry as <c>GET /api/losses</c> shows it.</summary>
public sealed record LossInfo(string Name, IReadOnlyList<string> Aliases, IReadOnlyList<string> Tasks, string Targets, string InputSpace,
    IReadOnlyList<LossParameterInfo> Parameters, string Formula, string Mean, string DefaultReduction, string? Notes);

public sealed record LossParameterInfo(string Name, string Type, object? Default, string? Range, string Description);

/// <summary>The catalogue, plus the regularization conventions.</summary>
public sealed record LossCatalogResponse(IReadOnlyList<LossInfo> Losses, IReadOnlyList<string> Reductions, object Regularization);

/// <summary>
/// <c>POST /api/losses/evaluate</c>: <c>loss</c> is a name, {"name", params…} or {"terms": […]}; <c>predictions</c> a number
/// array or an array of rows; <c>targets</c> numbers (values, labels, class indices) or rows (probabilities). Each number
/// array holds at most <c>Losses:MaxElements</c> values; other fields are refused. The body is streamed by
/// <see cref="EvaluateRequestReader"/>; this record documents it.
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
/// The reduced loss and its gradient (shaped like the predictions: a number array, or rows); per-item losses for
/// reduction none; the reduction each term used (e.g. "mean", or "mean+batchmean" for cross_entropy + kl_div).
/// </summary>
public sealed record EvaluateLossResponse(double Loss, object Gradient, IReadOnlyList<float>? Losses, string Reduction);

public static class LossEndpoints
{
    public static IEndpointRouteBuilder MapLossEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/losses").WithTags("Losses");
        group.MapGet("/", Catalog).WithName("ListLosses").RequireRole(Role.Viewer).WithSummary("Every loss: tasks, targets, input space, parameters, formula, reductions");
        long maxBytes = app.ServiceProvider.GetRequiredService<IOptions<LossApiOptions>>().Value.MaxRequestBytes();
        group.MapPost("/evaluate", Evaluate).WithName("EvaluateLoss").RequireRole(Role.Viewer)
            .Accepts<EvaluateLossRequest>("application/json")
            .WithMetadata(new RequestSizeLimitAttribute(maxBytes)) // from Losses:MaxElements; Kestrel's 30 MB default is too small for 10⁶ predictions
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

    /// <summary>
    /// Takes one of the evaluation slots (429 when none is free), streams the body into pooled buffers (stopping at
    /// Losses:MaxElements), evaluates, and returns the buffers.
    /// </summary>
    private static async Task<Results<Ok<EvaluateLossResponse>, ProblemHttpResult>> Evaluate(HttpContext context, ComputeDevice device,
        LossEvaluationSlots slots, IOptions<LossApiOptions> options, CancellationToken cancellationToken)
    {
        if (!context.Request.HasJsonContentType())
        {
            return Problems.UnsupportedMediaType("request.unsupported_media_type", "The body must be application/json.");
        }
        var slot = slots.TryTake();
        if (slot is null)
        {
            context.Response.Headers.RetryAfter = "1";
            return ApiProblem.TooManyRequests("loss.too_many_evaluations",
                $"{slots.Capacity} loss evaluations are in progress, the most this service runs at once (Losses:MaxConcurrentEvaluations).").ToResult();
        }
        // Held until the response is written: the gradient is in memory until then.
        context.Response.RegisterForDispose(slot);
        RequireBriskClient(context);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var maxBodyTime = options.Value.MaxBodyTime;
        deadline.CancelAfter(maxBodyTime);
        EvaluateLossBody? body;
        ApiProblem? problem;
        try
        {
            (body, problem) = await EvaluateRequestReader.ReadAsync(context.Request.BodyReader, options.Value.MaxElements, deadline.Token);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return new ApiProblem(StatusCodes.Status408RequestTimeout, "loss.request_timeout",
                $"The body did not arrive within {maxBodyTime.TotalSeconds:N0} s (Losses:MaxBodyTime); an evaluation holds one of few slots while it reads.").ToResult();
        }
        if (body is null)
        {
            return problem!.ToResult();
        }
        using (body)
        {
            slot.Large = body.ValueCount >= LossEvaluationSlots.LargeRequestValues;
            return await EvaluateAsync(body, device, cancellationToken);
        }
    }

    /// <summary>
    /// An evaluation holds one of few slots from its first byte to its last, so a client must send and read at a brisk
    /// pace (64 KiB/s after 5 s), or Kestrel cuts it off and the slot returns.
    /// </summary>
    private static void RequireBriskClient(HttpContext context)
    {
        var rate = new Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate(64 * 1024, TimeSpan.FromSeconds(5));
        if (context.Features.Get<Microsoft.AspNetCore.Server.Kestrel.Core.Features.IHttpMinRequestBodyDataRateFeature>() is { } request)
        {
            request.MinDataRate = rate;
        }
        if (context.Features.Get<Microsoft.AspNetCore.Server.Kestrel.Core.Features.IHttpMinResponseDataRateFeature>() is { } response)
        {
            response.MinDataRate = rate;
        }
    }

    private static async Task<Results<Ok<EvaluateLossResponse>, ProblemHttpResult>> EvaluateAsync(EvaluateLossBody request, ComputeDevice device,
        CancellationToken cancellationToken)
    {
        if (request.Loss is not { } lossJson || lossJson.ValueKind is not (JsonValueKind.String or JsonValueKind.Object))
        {
            return Problems.BadRequest("loss.missing_name", "loss is required: a name, {\"name\": …} or {\"terms\": […]}.", "loss");
        }
        if (!TryReadTerms(lossJson, request.Params, out var terms, out var problem)
            || !TryReadInput(request, out var input, out problem)
            || !TryReadReduction(request.Reduction, out var requested, out problem))
        {
            return problem.ToResult();
        }
        bool classIndices = input.Classes > 1 && request.Targets.IsFlat;
        var binding = new LossBinding(classIndices ? TargetLayout.ClassIndex : TargetLayout.Elementwise, input.Classes,
            OnLogits: request.FromLogits ?? false, request.ClassWeights?.ToArray());
        try
        {
            var loss = CombinedLoss.Bind(terms, binding, "loss");
            loss.ResolveReduction(requested);
            var result = await LossEvaluator.EvaluateAsync(device, loss, input, requested, cancellationToken);
            // Written as the response streams out: the gradient is never a document in memory.
            object gradient = request.Predictions.IsFlat ? result.Gradient : Rows(result.Gradient, input.Rows, input.Classes);
            // Without an explicit reduction each term uses its own default (kl_div: batchmean, the rest: mean).
            var applied = loss.Terms.Select(t => ReductionNames[CombinedLoss.TermReduction(t, requested)]).Distinct().ToList();
            return TypedResults.Ok(new EvaluateLossResponse(result.Loss, gradient, result.PerItem, string.Join("+", applied)));
        }
        catch (LossSpecException e)
        {
            return LossSpecs.Problem(e).ToResult();
        }
    }

    private static IEnumerable<ArraySegment<float>> Rows(float[] values, int rows, int width)
    {
        for (int r = 0; r < rows; r++)
        {
            yield return new ArraySegment<float>(values, r * width, width);
        }
    }

    /// <summary>The loss's terms, with <c>params</c> merged into a single named loss.</summary>
    private static bool TryReadTerms(JsonElement lossJson, Dictionary<string, JsonElement>? extra, [NotNullWhen(true)] out List<LossTermSpec>? terms,
        [NotNullWhen(false)] out ApiProblem? problem)
    {
        terms = null;
        if (!LossSpecs.TryParse(lossJson, "loss", out var parsed, out problem))
        {
            return false;
        }
        terms = parsed.ToList();
        if (extra is not { Count: > 0 })
        {
            return true;
        }
        if (terms.Count != 1)
        {
            problem = ApiProblem.BadRequest("loss.invalid_parameter", "params applies to a single loss; give each term its own parameters.", "params");
            return false;
        }
        var merged = new Dictionary<string, object?>(terms[0].Parameters ?? new Dictionary<string, object?>());
        foreach (var (name, value) in extra)
        {
            if (!LossSpecs.TryParameterValue(value, $"params.{name}", out var parameter, out problem))
            {
                return false;
            }
            merged[name] = parameter;
        }
        terms[0] = terms[0] with { Parameters = merged };
        return true;
    }

    /// <summary>Predictions, targets, weights and variance as matrices of matching rows.</summary>
    private static bool TryReadInput(EvaluateLossBody request, [NotNullWhen(true)] out LossInput? input, [NotNullWhen(false)] out ApiProblem? problem)
    {
        input = null;
        if (!TryMatrix(request.Predictions, out var predictions, out problem)
            || !TryMatrix(request.Targets, out var targets, out problem))
        {
            return false;
        }
        if (targets.Rows != predictions.Rows)
        {
            problem = ApiProblem.BadRequest("loss.shape_mismatch", $"targets has {targets.Rows} rows; predictions have {predictions.Rows}.", "targets");
            return false;
        }
        Matrix? weights = null, variance = null;
        if ((request.Weights.Present && !TryMatrix(request.Weights, out weights, out problem))
            || (request.Variance.Present && !TryMatrix(request.Variance, out variance, out problem)))
        {
            return false;
        }
        input = new LossInput(predictions.Values, targets.Values, predictions.Rows, predictions.Width, weights?.Values, variance?.Values);
        return true;
    }

    private static bool TryReadReduction(string? name, out Reduction? reduction, [NotNullWhen(false)] out ApiProblem? problem)
    {
        problem = null;
        reduction = null;
        if (name is null)
        {
            return true;
        }
        foreach (var (value, text) in ReductionNames)
        {
            if (text == name)
            {
                reduction = value;
                return true;
            }
        }
        problem = ApiProblem.BadRequest("loss.invalid_reduction", "reduction must be mean, sum, none or batchmean.", "reduction");
        return false;
    }

    private sealed record Matrix(float[] Values, int Rows, int Width);

    /// <summary>A streamed array's values in one array (its pooled chunks go back at once), or the first problem found in it.</summary>
    private static bool TryMatrix(StreamedMatrix streamed, [NotNullWhen(true)] out Matrix? matrix, [NotNullWhen(false)] out ApiProblem? problem)
    {
        matrix = null;
        problem = streamed.Present
            ? streamed.Problem
            : ApiProblem.BadRequest("loss.missing_input", $"{streamed.Field} must be an array of numbers or of rows.", streamed.Field);
        if (problem is not null)
        {
            return false;
        }
        matrix = new Matrix(streamed.Values.ToArray(), streamed.Rows, streamed.Width);
        streamed.Values.Clear();
        return true;
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
