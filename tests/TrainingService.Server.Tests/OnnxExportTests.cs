using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>
/// <c>GET /api/jobs/{id}/model?format=onnx</c>: the exported graph, run in ONNX Runtime on rows the model never saw,
/// predicts what <c>/predict</c> does, preprocessing (imputation, standardization, one-hot, unseen categories) included.
/// </summary>
[Collection(ServiceTests.Name)]
public sealed class OnnxExportTests(ServiceFixture service)
{
    private const double Tolerance = 1e-5;
    private static string? _classifier;

    private readonly HttpClient _client = service.Client;

    /// <summary>A row of the classifier's data: null is a missing cell.</summary>
    private sealed record Row(double? X, string? Colour, bool? Member);

    private static readonly string[] Colours = ["red", "green", "blue"];

    private static Row RandomRow(Random random, double missing) => new(
        random.NextDouble() < missing ? null : random.NextDouble() * 4 - 2,
        random.NextDouble() < missing ? null : Colours[random.Next(3)],
        random.NextDouble() < missing ? null : random.Next(2) == 1);

    private async Task<string> TrainAsync(object spec)
    {
        var job = await _client.SubmitAsync(spec);
        var done = await _client.WaitForEndAsync(job.Id(), 120);
        Assert.True((string?)done["status"] == "succeeded", done.ToJsonString());
        return job.Id();
    }

    /// <summary>Three classes from a number, a colour and a flag, with a tenth of each feature's cells missing.</summary>
    private async Task<string> ClassifierAsync()
    {
        if (_classifier is not null)
        {
            return _classifier;
        }
        var random = new Random(131);
        var csv = new StringBuilder("x,colour,member,band\n");
        for (int i = 0; i < 300; i++)
        {
            var row = RandomRow(random, 0.1);
            double score = (row.X ?? 0) + (row.Colour switch { "red" => 1, "blue" => -1, _ => 0 }) + (row.Member == true ? 0.5 : 0);
            string band = score < -0.5 ? "low" : score < 0.8 ? "mid" : "high";
            csv.Append(CultureInfo.InvariantCulture, $"{row.X:R},{row.Colour},{(row.Member is { } m ? m ? "true" : "false" : "")},{band}\n");
        }
        var dataset = await _client.UploadAsync(csv.ToString());
        return _classifier = await TrainAsync(new
        {
            datasetId = dataset.Id(), target = "band", model = new { type = "mlp", hiddenLayers = new[] { 8 }, activation = "relu", dropout = 0.1 },
            loss = "cross_entropy", optimizer = new { name = "adam", learningRate = 0.02 }, epochs = 15, seed = 5, missing = "impute",
            validation = new { fraction = 0.2 },
        });
    }

    private async Task<byte[]> OnnxAsync(string jobId)
    {
        var response = await _client.GetAsync($"/api/jobs/{jobId}/model?format=onnx");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsByteArrayAsync();
    }

    private async Task<JsonArray> PredictAsync(string jobId, IEnumerable<Dictionary<string, object?>> rows)
    {
        var response = await _client.PostAsJsonAsync($"/api/jobs/{jobId}/predict", new { rows });
        return (await Api.ReadAsync(response, HttpStatusCode.OK))["predictions"]!.AsArray();
    }

    private static Dictionary<string, float[]> Floats(IDisposableReadOnlyCollection<DisposableNamedOnnxValue> results) =>
        results.Where(r => r.ElementType == TensorElementType.Float).ToDictionary(r => r.Name, r => r.AsTensor<float>().ToArray());

    [Fact]
    public async Task A_regression_mlp_exported_to_onnx_predicts_what_predict_does_in_onnx_runtime()
    {
        var random = new Random(132);
        var csv = new StringBuilder("x1,x2,y\n");
        for (int i = 0; i < 300; i++)
        {
            double a = random.NextDouble() * 4 - 2, b = random.NextDouble() * 4 - 2;
            csv.Append(CultureInfo.InvariantCulture, $"{a:R},{b:R},{3 * Math.Sin(a) + b * b + 10:R}\n");
        }
        string jobId = await TrainAsync(new
        {
            datasetId = (await _client.UploadAsync(csv.ToString())).Id(), target = "y",
            model = new { type = "mlp", hiddenLayers = new[] { 8, 4 }, activation = "gelu" }, loss = "mse",
            optimizer = new { name = "adam", learningRate = 0.02 }, epochs = 15, seed = 6, missing = "impute",
        });
        // Held-out rows, float-exact so both routes see the same numbers; the last has a missing x2.
        var rows = Enumerable.Range(0, 24).Select(_ => ((double?)(float)(random.NextDouble() * 4 - 2), (double?)(float)(random.NextDouble() * 4 - 2)))
            .Append((0.5, null)).ToList();

        var predicted = await PredictAsync(jobId, rows.Select(r => new Dictionary<string, object?> { ["x1"] = r.Item1, ["x2"] = r.Item2 }));
        using var session = new InferenceSession(await OnnxAsync(jobId));
        using var results = session.Run([
            NamedOnnxValue.CreateFromTensor("x1", new DenseTensor<float>(rows.Select(r => (float)r.Item1!).ToArray(), [rows.Count, 1])),
            NamedOnnxValue.CreateFromTensor("x2", new DenseTensor<float>(rows.Select(r => r.Item2 is { } v ? (float)v : float.NaN).ToArray(), [rows.Count, 1])),
        ]);

        var values = Floats(results)["values"];
        for (int r = 0; r < rows.Count; r++)
        {
            double expected = (double)predicted[r]!["values"]![0]!;
            Assert.True(Math.Abs(values[r] - expected) <= Tolerance, $"row {r}: onnx {values[r]:R}, /predict {expected:R}");
        }
    }

    [Fact]
    public async Task A_classifier_with_categorical_and_missing_inputs_exported_to_onnx_predicts_what_predict_does()
    {
        string jobId = await ClassifierAsync();
        var random = new Random(133);
        var rows = Enumerable.Range(0, 30).Select(_ => RandomRow(random, 0.15)).Select(r => r with { X = r.X is { } x ? (float)x : null })
            .Concat([new Row(0.25, "purple", true), new Row(-1, "", false), new Row(null, null, null), new Row(1.5, "NA", null)]).ToList();

        var predicted = await PredictAsync(jobId, rows.Select(r => new Dictionary<string, object?> { ["x"] = r.X, ["colour"] = r.Colour, ["member"] = r.Member }));
        using var session = new InferenceSession(await OnnxAsync(jobId));
        using var results = session.Run([
            NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(rows.Select(r => r.X is { } x ? (float)x : float.NaN).ToArray(), [rows.Count, 1])),
            NamedOnnxValue.CreateFromTensor("colour", new DenseTensor<string>(rows.Select(r => r.Colour ?? "").ToArray(), [rows.Count, 1])),
            NamedOnnxValue.CreateFromTensor("member", new DenseTensor<float>(rows.Select(r => r.Member is { } m ? m ? 1f : 0f : float.NaN).ToArray(), [rows.Count, 1])),
        ]);

        var floats = Floats(results);
        var labels = results.Single(r => r.Name == "label").AsTensor<string>().ToArray();
        string[] order = ["high", "low", "mid"];
        Assert.Contains(predicted, p => p!["notes"]?.AsArray().Any(n => ((string)n!).Contains("'purple' was not in the training data")) == true);
        for (int r = 0; r < rows.Count; r++)
        {
            var expected = predicted[r]!;
            Assert.Equal((string?)expected["label"], labels[r]);
            Assert.True(Math.Abs(floats["probability"][r] - (double)expected["probability"]!) <= Tolerance, $"row {r}: probability");
            for (int c = 0; c < order.Length; c++)
            {
                double p = (double)expected["probabilities"]![order[c]]!;
                Assert.True(Math.Abs(floats["probabilities"][r * order.Length + c] - p) <= Tolerance, $"row {r}, {order[c]}: onnx {floats["probabilities"][r * 3 + c]:R}, /predict {p:R}");
            }
        }
    }

    [Fact]
    public async Task The_onnx_graph_takes_one_input_per_column_and_names_its_outputs_as_predict_does()
    {
        string jobId = await ClassifierAsync();
        var response = await _client.GetAsync($"/api/jobs/{jobId}/model?format=onnx");
        var model = ModelProto.Parser.ParseFrom(await response.Content.ReadAsByteArrayAsync());

        Assert.Equal("application/onnx", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal($"job-{jobId}.onnx", response.Content.Headers.ContentDisposition?.FileName);
        Assert.Equal(17, model.OpsetImport.Single(o => o.Domain == "").Version);
        Assert.Contains(model.OpsetImport, o => o.Domain == "ai.onnx.ml");
        Assert.Equal(["x", "colour", "member"], model.Graph.Input.Select(i => i.Name));
        Assert.Equal([(int)TensorProto.Types.DataType.Float, (int)TensorProto.Types.DataType.String, (int)TensorProto.Types.DataType.Float],
            model.Graph.Input.Select(i => i.Type.TensorType.ElemType));
        Assert.All(model.Graph.Input, i => Assert.Equal(["N", "1"], i.Type.TensorType.Shape.Dim.Select(d => d.HasDimParam ? d.DimParam : d.DimValue.ToString(CultureInfo.InvariantCulture))));
        Assert.Equal(["label", "probabilities", "probability"], model.Graph.Output.Select(o => o.Name).Order());
        Assert.DoesNotContain(model.Graph.Node, n => n.OpType == "Dropout");
        Assert.All(model.Graph.Node, n => Assert.Contains(n.Domain, new[] { "", "ai.onnx.ml" }));
    }

    [Fact]
    public async Task The_onnx_export_has_its_own_etag_and_answers_304_to_it()
    {
        string jobId = await ClassifierAsync();
        var json = await _client.GetAsync($"/api/jobs/{jobId}/model");
        var onnx = await _client.GetAsync($"/api/jobs/{jobId}/model?format=onnx");
        var conditional = new HttpRequestMessage(HttpMethod.Get, $"/api/jobs/{jobId}/model?format=onnx");
        conditional.Headers.IfNoneMatch.Add(onnx.Headers.ETag!);
        var stale = new HttpRequestMessage(HttpMethod.Get, $"/api/jobs/{jobId}/model?format=onnx");
        stale.Headers.IfNoneMatch.Add(json.Headers.ETag!);

        Assert.NotNull(onnx.Headers.ETag);
        Assert.NotEqual(json.Headers.ETag, onnx.Headers.ETag);
        Assert.StartsWith(json.Headers.ETag!.Tag.TrimEnd('"'), onnx.Headers.ETag!.Tag);
        Assert.Equal(HttpStatusCode.NotModified, (await _client.SendAsync(conditional)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _client.SendAsync(stale)).StatusCode);
        Assert.Equal("application/json", (await _client.GetAsync($"/api/jobs/{jobId}/model?format=json")).Content.Headers.ContentType?.MediaType);
    }

    [Theory]
    [InlineData("pmml")]
    [InlineData("ONNX")]
    [InlineData("")]
    public async Task An_unknown_model_format_is_refused_with_its_code(string format)
    {
        var response = await _client.GetAsync($"/api/jobs/{Guid.NewGuid()}/model?format={Uri.EscapeDataString(format)}");

        await response.AssertProblemAsync(HttpStatusCode.BadRequest, "model.unknown_format", "format");
    }

    [Fact]
    public async Task The_onnx_export_of_an_unknown_job_is_404_as_for_the_json_model()
    {
        var response = await _client.GetAsync($"/api/jobs/{Guid.NewGuid()}/model?format=onnx");

        await response.AssertProblemAsync(HttpStatusCode.NotFound, "job.not_found");
    }
}
