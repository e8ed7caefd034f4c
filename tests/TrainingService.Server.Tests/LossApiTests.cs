using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>The loss catalogue and evaluate endpoint: same numbers as the kernels' reference tests, through HTTP.</summary>
[Collection(ServiceTests.Name)]
public sealed class LossApiTests(ServiceFixture service)
{
    private readonly HttpClient _client = service.Client;

    private async Task<JsonNode> EvaluateAsync(object body) =>
        await Api.ReadAsync(await _client.PostAsJsonAsync("/api/losses/evaluate", body, Api.Json), HttpStatusCode.OK);

    private static double[] Gradient(JsonNode result) => result["gradient"]!.AsArray().Select(g => (double)g!).ToArray();

    /// <summary>Gradients come back as float32: equal to 1e−6 relative.</summary>
    private static void AssertClose(double[] expected, double[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-6 * Math.Max(1, Math.Abs(expected[i])), $"[{i}] {expected[i]} vs {actual[i]}");
        }
    }

    [Fact]
    public async Task The_catalogue_lists_every_loss_with_tasks_input_space_parameters_and_formula()
    {
        var catalog = await _client.GetJsonAsync("/api/losses");
        var losses = catalog["losses"]!.AsArray();

        Assert.Equal(16, losses.Count);
        var huber = losses.Single(l => (string?)l!["name"] == "huber")!;
        Assert.Equal(["regression"], huber["tasks"]!.AsArray().Select(t => (string)t!));
        Assert.Equal("values", (string?)huber["inputSpace"]);
        Assert.Equal("delta", (string?)huber["parameters"]![0]!["name"]);
        Assert.Equal(1.0, (double)huber["parameters"]![0]!["default"]!);
        Assert.Equal("(0, ∞)", (string?)huber["parameters"]![0]!["range"]);
        Assert.Contains("δ", (string?)huber["formula"]);
        Assert.Equal(["mae", "mean_absolute_error"], losses.Single(l => (string?)l!["name"] == "l1")!["aliases"]!.AsArray().Select(a => (string)a!));
        Assert.Equal("batchmean", (string?)losses.Single(l => (string?)l!["name"] == "kl_div")!["defaultReduction"]);
        Assert.Equal("log_probabilities", (string?)losses.Single(l => (string?)l!["name"] == "nll")!["inputSpace"]);
    }

    [Fact]
    public async Task Evaluate_reproduces_the_reference_values_and_gradients()
    {
        var mse = await EvaluateAsync(new { loss = "mse", predictions = new[] { 0.2, -1.5, 3.0 }, targets = new[] { 0.0, 1, 1 } });
        var huber = await EvaluateAsync(new { loss = "huber", @params = new { delta = 2.0 }, predictions = new[] { 0.2, -1.5, 3.0 }, targets = new[] { 0.0, 1, 1 } });
        var ce = await EvaluateAsync(new
        {
            loss = "cross_entropy", predictions = new[] { new[] { 2.0, 1.0, 0.1 }, new[] { 0.5, 2.5, -1.0 }, new[] { 0.0, 0.0, 3.0 } },
            targets = new[] { 0, 2, 1 }, classWeights = new[] { 1.0, 2.0, 0.5 },
        });

        Assert.Equal(3.43, (double)mse["loss"]!, 6);
        AssertClose([0.1333333333, -1.6666666667, 1.3333333333], Gradient(mse));
        Assert.Equal("mean", (string?)mse["reduction"]);
        Assert.Equal(1.6733333333, (double)huber["loss"]!, 6);
        Assert.Equal(2.4095614379, (double)ce["loss"]!, 6);
        var rows = ce["gradient"]!.AsArray();
        Assert.Equal(3, rows.Count);
        Assert.Equal(-0.0974282460, (double)rows[0]![0]!, 6);
    }

    [Fact]
    public async Task A_combined_loss_is_the_weighted_sum_of_its_terms()
    {
        var result = await EvaluateAsync(new
        {
            loss = new { terms = new object[] { new { name = "huber", weight = 1.0 }, new { name = "l1", weight = 0.5 } } },
            predictions = new[] { 0.2, -1.5, 3.0 }, targets = new[] { 0.0, 1, 1 },
        });

        Assert.Equal(1.9566666667, (double)result["loss"]!, 6);
        AssertClose([0.2333333333, -0.5, 0.5], Gradient(result));
    }

    [Fact]
    public async Task From_logits_applies_the_training_transforms_and_each_term_keeps_its_default_reduction()
    {
        double[][] logits = [[2.0, 1.0, 0.1], [0.5, 2.5, -1.0], [0.0, 0.0, 3.0]];
        double[][] q = [[.7, .2, .1], [.1, .1, .8], [0, .5, .5]];

        var kl = await EvaluateAsync(new { loss = "kl_div", fromLogits = true, predictions = logits, targets = q });
        var bce = await EvaluateAsync(new { loss = "bce", fromLogits = true, predictions = new[] { 0.2, -1.5, 3.0 }, targets = new[] { 0.0, 1, 1 } });
        var combined = await EvaluateAsync(new
        {
            loss = new { terms = new object[] { new { name = "cross_entropy" }, new { name = "kl_div", weight = 2.0 } } },
            fromLogits = true, predictions = logits, targets = q,
        });

        Assert.Equal(1.1403778624, (double)kl["loss"]!, 6);
        Assert.Equal(0.8493798330, (double)bce["loss"]!, 6);
        Assert.Equal(1.8517103933 + 2 * 1.1403778624, (double)combined["loss"]!, 5);
        Assert.Equal("mean+batchmean", (string?)combined["reduction"]);
    }

    [Fact]
    public async Task Reduction_none_returns_one_loss_per_element()
    {
        var result = await EvaluateAsync(new { loss = "mse", reduction = "none", predictions = new[] { 1.0, 2, 3 }, targets = new[] { 0.0, 0, 0 } });

        Assert.Equal([1.0, 4, 9], result["losses"]!.AsArray().Select(l => (double)l!));
        Assert.Equal([2.0, 4, 6], Gradient(result));
    }

    public static TheoryData<string, HttpStatusCode, string, string> BadRequests => new()
    {
        { """{"loss": "hubber", "predictions": [1], "targets": [0]}""", HttpStatusCode.BadRequest, "loss.unknown", "loss.name" },
        { """{"loss": {"name": "huber", "dleta": 1}, "predictions": [1], "targets": [0]}""", HttpStatusCode.BadRequest, "loss.unknown_parameter", "loss.dleta" },
        { """{"loss": {"name": "huber", "delta": 0}, "predictions": [1], "targets": [0]}""", HttpStatusCode.BadRequest, "loss.parameter_out_of_range", "loss.delta" },
        { """{"loss": {"name": "cross_entropy", "label_smoothing": 1}, "predictions": [[1, 2]], "targets": [0]}""", HttpStatusCode.BadRequest, "loss.parameter_out_of_range", "loss.label_smoothing" },
        { """{"loss": {"name": "focal", "gamma": -1}, "predictions": [1], "targets": [0]}""", HttpStatusCode.BadRequest, "loss.parameter_out_of_range", "loss.gamma" },
        { """{"loss": "mse", "predictions": [1, 2], "targets": [0]}""", HttpStatusCode.BadRequest, "loss.shape_mismatch", "targets" },
        { """{"loss": "mse", "predictions": [], "targets": []}""", HttpStatusCode.BadRequest, "loss.empty_input", "predictions" },
        { """{"loss": "mse", "predictions": [1, "NaN"], "targets": [0, 0]}""", HttpStatusCode.BadRequest, "loss.non_finite_input", "predictions[1]" },
        { """{"loss": "mse", "predictions": [1, 1e300], "targets": [0, 0]}""", HttpStatusCode.BadRequest, "loss.non_finite_input", "predictions[1]" },
        { """{"loss": "bce_with_logits", "predictions": [0.1, 0.2], "targets": [1, 2]}""", HttpStatusCode.BadRequest, "loss.target_out_of_domain", "targets[1]" },
        { """{"loss": "cross_entropy", "predictions": [[1, 2, 3], [1, 2, 3]], "targets": [0, 3]}""", HttpStatusCode.BadRequest, "loss.target_out_of_domain", "targets[1]" },
        { """{"loss": "cross_entropy", "predictions": [[1, 2], [3, 4]], "targets": [[0.5, 0.5], [0.6, 0.5]]}""", HttpStatusCode.BadRequest, "loss.target_out_of_domain", "targets[1]" },
        { """{"loss": "hinge", "predictions": [0.1, 0.2], "targets": [1, 0.5]}""", HttpStatusCode.BadRequest, "loss.target_out_of_domain", "targets[1]" },
        { """{"loss": "mse", "reduction": "median", "predictions": [1], "targets": [0]}""", HttpStatusCode.BadRequest, "loss.invalid_reduction", "reduction" },
        { """{"loss": "mse", "reduction": "batchmean", "predictions": [1], "targets": [0]}""", HttpStatusCode.BadRequest, "loss.invalid_reduction", "reduction" },
        { """{"loss": {"terms": [{"name": "mse"}, {"name": "hinge"}]}, "predictions": [1], "targets": [0]}""", HttpStatusCode.BadRequest, "loss.incompatible_terms", "loss.terms" },
        { """{"loss": {"terms": [{"name": "cross_entropy", "weight": [1, 2]}]}, "predictions": [[1, 2]], "targets": [0]}""", HttpStatusCode.BadRequest, "loss.invalid_parameter", "loss.terms[0].weight" },
        { """{"loss": "mse", "predictions": [1, "a"], "targets": [0, 0]}""", HttpStatusCode.BadRequest, "loss.invalid_input", "predictions[1]" },
        { """{"loss": "mse", "targets": [0]}""", HttpStatusCode.BadRequest, "loss.missing_input", "predictions" },
        { """{"loss": "mse", "predictions": [1], "targets": 0}""", HttpStatusCode.BadRequest, "loss.missing_input", "targets" },
        { """{"predictions": [1], "targets": [0]}""", HttpStatusCode.BadRequest, "loss.missing_name", "loss" },
        { """{"loss": {"delta": 1}, "predictions": [1], "targets": [0]}""", HttpStatusCode.BadRequest, "loss.missing_name", "loss.name" },
        { """{"loss": {"terms": []}, "predictions": [1], "targets": [0]}""", HttpStatusCode.BadRequest, "loss.empty", "loss.terms" },
        { """{"loss": "cross_entropy", "predictions": [[1, 2], [2, 1]], "targets": [0, 1], "weights": [1, 1, 1, 1]}""", HttpStatusCode.BadRequest, "loss.weights_not_supported", "weights" },
        { """{"loss": "mse", "predictions": [1, 2], "targets": [0, 1], "classWeights": [1, 2]}""", HttpStatusCode.BadRequest, "loss.class_weights_not_supported", "classWeights" },
        { """{"loss": {"name": "cross_entropy", "weight": [1, 2]}, "predictions": [[1, 2], [2, 1]], "targets": [0, 1], "classWeights": [1, 2]}""", HttpStatusCode.BadRequest, "loss.conflicting_class_weights", "classWeights" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task Bad_input_is_a_400_problem_with_its_code_and_the_offending_field(string body, HttpStatusCode status, string code, string field)
    {
        var response = await _client.PostAsync("/api/losses/evaluate", new StringContent(body, Encoding.UTF8, "application/json"));

        await response.AssertProblemAsync(status, code, field);
    }
}
