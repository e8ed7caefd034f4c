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
    private static readonly string[] Colours = ["red", "green", "blue"];
    private static string? _dataset, _classifier;

    private readonly HttpClient _client = service.Client;

    /// <summary>A row of features: null is a missing cell.</summary>
    private sealed record Row(double? X, string? Colour, bool? Member)
    {
        public Dictionary<string, object?> Json => new() { ["x"] = X, ["colour"] = Colour, ["member"] = Member };
    }

    /// <summary>A float-exact number (both routes then see the same value), a colour and a flag, each missing at this rate.</summary>
    private static Row RandomRow(Random random, double missing) => new(
        random.NextDouble() < missing ? null : (float)(random.NextDouble() * 4 - 2),
        random.NextDouble() < missing ? null : Colours[random.Next(3)],
        random.NextDouble() < missing ? null : random.Next(2) == 1);

    /// <summary>Rows no model saw, with the edge cases: an unseen category, "" and "NA" for a missing category, all missing.</summary>
    private static List<Row> HeldOut(int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, 30).Select(_ => RandomRow(random, 0.15))
            .Concat([new Row(0.25, "purple", true), new Row(-1, "", false), new Row(null, null, null), new Row(1.5, "NA", null)]).ToList();
    }

    /// <summary>
    /// Features x, colour and member, a tenth of their cells missing, and targets of every kind derived from them:
    /// y and y2 (real), count (non-negative integers), churned (yes/no), band (three classes), p_a, p_b, p_c (a distribution).
    /// </summary>
    private async Task<string> DatasetAsync()
    {
        if (_dataset is not null)
        {
            return _dataset;
        }
        var random = new Random(131);
        var csv = new StringBuilder("x,colour,member,y,y2,count,churned,band,p_a,p_b,p_c\n");
        for (int i = 0; i < 300; i++)
        {
            var row = RandomRow(random, 0.1);
            double x = row.X ?? 0, c = row.Colour switch { "red" => 1, "blue" => -1, _ => 0 }, m = row.Member == true ? 1 : 0;
            double score = x + c + m / 2;
            double a = Math.Exp(x), b = Math.Exp(c), sum = a + b + 1;
            csv.Append(CultureInfo.InvariantCulture, $"{row.X:R},{row.Colour},{(row.Member is { } f ? f ? "true" : "false" : "")},")
                .Append(CultureInfo.InvariantCulture, $"{3 * Math.Sin(x) + 2 * c + m + 10:R},{x * x - c:R},{Math.Round(Math.Exp(score / 2))},")
                .Append(CultureInfo.InvariantCulture, $"{(score > 0.3 ? "yes" : "no")},{(score < -0.5 ? "low" : score < 0.8 ? "mid" : "high")},")
                .Append(CultureInfo.InvariantCulture, $"{a / sum:R},{b / sum:R},{1 / sum:R}\n");
        }
        return _dataset = (await _client.UploadAsync(csv.ToString())).Id();
    }

    private async Task<string> TrainAsync(object target, string loss, string activation = "relu", int[]? hidden = null)
    {
        var job = await _client.SubmitAsync(new
        {
            datasetId = await DatasetAsync(), target, features = new[] { "x", "colour", "member" },
            model = hidden is [] ? (object)new { type = "linear" } : new { type = "mlp", hiddenLayers = hidden ?? [8], activation, dropout = 0.1 }, loss,
            optimizer = new { name = "adam", learningRate = 0.02 }, epochs = 15, seed = 5, missing = "impute", validation = new { fraction = 0.2 },
        });
        var done = await _client.WaitForEndAsync(job.Id(), 120);
        Assert.True((string?)done["status"] == "succeeded", done.ToJsonString());
        return job.Id();
    }

    private async Task<string> ClassifierAsync() => _classifier ??= await TrainAsync("band", "cross_entropy");

    private async Task<byte[]> OnnxAsync(string jobId)
    {
        var response = await _client.GetAsync($"/api/jobs/{jobId}/model?format=onnx");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsByteArrayAsync();
    }

    /// <summary>
    /// Runs <paramref name="rows"/> through /predict and through the exported graph in ONNX Runtime (numbers as float
    /// with NaN for missing, categories as strings with "" for missing) and asserts every field /predict returns equals
    /// the graph's output of that name: labels exactly, numbers within <see cref="Tolerance"/>. Returns /predict's answer.
    /// </summary>
    private async Task<JsonArray> AssertOnnxPredictsAsPredictAsync(string jobId, List<Row> rows)
    {
        var response = await _client.PostAsJsonAsync($"/api/jobs/{jobId}/predict", new { rows = rows.Select(r => r.Json) });
        var predicted = (await Api.ReadAsync(response, HttpStatusCode.OK))["predictions"]!.AsArray();
        using var session = new InferenceSession(await OnnxAsync(jobId));
        var inputs = session.InputMetadata.Select(input => input.Value.ElementType == typeof(string)
            ? NamedOnnxValue.CreateFromTensor(input.Key, new DenseTensor<string>(rows.Select(r => (string?)r.Json[input.Key] ?? "").ToArray(), [rows.Count, 1]))
            : NamedOnnxValue.CreateFromTensor(input.Key, new DenseTensor<float>(rows.Select(r => Number(r.Json[input.Key])).ToArray(), [rows.Count, 1])))
            .ToList();
        using var results = session.Run(inputs);
        var outputs = results.ToDictionary(r => r.Name);
        for (int r = 0; r < rows.Count; r++)
        {
            var fields = predicted[r]!.AsObject().Where(f => f.Key != "notes").ToList();
            Assert.Equal(fields.Select(f => f.Key).Order(), outputs.Keys.Order());
            foreach (var (field, value) in fields)
            {
                if (value is JsonValue label && label.TryGetValue(out string? text))
                {
                    Assert.Equal(text, outputs[field].AsTensor<string>().GetValue(r));
                    continue;
                }
                List<double> expected = value switch
                {
                    JsonArray array => array.Select(v => (double)v!).ToList(),
                    JsonObject map => map.Select(p => (double)p.Value!).ToList(),
                    _ => [(double)value!],
                };
                var actual = outputs[field].AsTensor<float>().ToArray().AsSpan(r * expected.Count, expected.Count).ToArray();
                for (int i = 0; i < expected.Count; i++)
                {
                    Assert.True(Math.Abs(actual[i] - expected[i]) <= Tolerance, $"row {r}, {field}[{i}]: onnx {actual[i]:R}, /predict {expected[i]:R}");
                }
            }
        }
        return predicted;
    }

    private static float Number(object? value) => value switch
    {
        null => float.NaN,
        bool flag => flag ? 1 : 0,
        _ => (float)Convert.ToDouble(value, CultureInfo.InvariantCulture),
    };

    [Fact]
    public async Task A_regression_mlp_exported_to_onnx_predicts_what_predict_does_in_onnx_runtime()
    {
        string jobId = await TrainAsync("y", "mse", "gelu", [8, 4]);

        var predicted = await AssertOnnxPredictsAsPredictAsync(jobId, HeldOut(132));

        Assert.NotNull(predicted[0]!["values"]);
    }

    [Fact]
    public async Task A_classifier_with_categorical_and_missing_inputs_exported_to_onnx_predicts_what_predict_does()
    {
        string jobId = await ClassifierAsync();

        var predicted = await AssertOnnxPredictsAsPredictAsync(jobId, HeldOut(133));

        Assert.Equal(["high", "low", "mid"], predicted[0]!["probabilities"]!.AsObject().Select(p => p.Key));
        var notes = predicted.SelectMany(p => p!["notes"]?.AsArray().Select(n => (string)n!) ?? []).ToList();
        Assert.Contains(notes, n => n.Contains("'purple' was not in the training data"));
        Assert.Contains(notes, n => n.StartsWith("colour: missing"));
        Assert.Contains(notes, n => n.StartsWith("x: missing"));
        Assert.Contains(notes, n => n.StartsWith("member: missing"));
    }

    [Theory]
    [InlineData("churned", "bce_with_logits", "tanh")]
    [InlineData("churned", "hinge", "sigmoid")]
    [InlineData("band", "multi_margin", "relu")]
    [InlineData("count", "poisson_nll", "relu")]
    [InlineData("p_a,p_b,p_c", "kl_div", "tanh")]
    [InlineData("y,y2", "mse", "relu")]
    [InlineData("band", "cross_entropy", "linear")]
    public async Task Every_kind_of_output_exported_to_onnx_predicts_what_predict_does(string target, string loss, string activation)
    {
        string jobId = await TrainAsync(target.Contains(',') ? target.Split(',') : target, loss, activation, activation == "linear" ? [] : null);

        await AssertOnnxPredictsAsPredictAsync(jobId, HeldOut(134));
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
    public async Task An_output_whose_name_a_feature_column_takes_is_suffixed_and_any_column_name_is_an_input_name()
    {
        var csv = new StringBuilder("label,\"höhe (cm)\",kind\n");
        for (int i = 0; i < 60; i++)
        {
            csv.Append(CultureInfo.InvariantCulture, $"{i % 10},{i % 7},{(i % 10 > 4 ? "big" : "small")}\n");
        }
        var job = await _client.SubmitAsync(new
        {
            datasetId = (await _client.UploadAsync(csv.ToString())).Id(), target = "kind", loss = "bce_with_logits", epochs = 5, seed = 7,
        });
        Assert.Equal("succeeded", (string?)(await _client.WaitForEndAsync(job.Id(), 120))["status"]);
        var rows = new[] { new Dictionary<string, double> { ["label"] = 1, ["höhe (cm)"] = 3 }, new() { ["label"] = 9, ["höhe (cm)"] = 3 } };
        var predicted = (await Api.ReadAsync(await _client.PostAsJsonAsync($"/api/jobs/{job.Id()}/predict", new { rows }), HttpStatusCode.OK))["predictions"]!;

        using var session = new InferenceSession(await OnnxAsync(job.Id()));
        using var results = session.Run([
            NamedOnnxValue.CreateFromTensor("label", new DenseTensor<float>(new float[] { 1, 9 }, [2, 1])),
            NamedOnnxValue.CreateFromTensor("höhe (cm)", new DenseTensor<float>(new float[] { 3, 3 }, [2, 1])),
        ]);

        Assert.Equal(["label_output", "probability"], results.Select(r => r.Name).Order());
        Assert.Equal(predicted.AsArray().Select(p => (string?)p!["label"]), results.Single(r => r.Name == "label_output").AsTensor<string>().ToArray());
    }

    [Fact]
    public void A_binary_label_is_decided_in_double_as_predict_does_when_the_float_probability_rounds_to_one_half()
    {
        // One input, logit = 1e-8 · x: σ(1e-8) is 0.5 in float but above 0.5 in double, where /predict compares it.
        var model = new TrainingService.Server.Jobs.ModelDocument
        {
            JobId = Guid.NewGuid(), Task = "binary", OutputTransform = "sigmoid", Loss = ["bce_with_logits"], TargetColumns = ["churned"],
            Labels = ["no", "yes"], Features = [new TrainingService.Server.Preprocessing.FeatureEncoder { Column = "x", Type = "numeric" }],
            Inputs = ["x"], Dropout = 0, EpochsTrained = 1,
            Layers = [new TrainingService.Server.Jobs.LayerParameters(1, 1, "identity", [[1e-8f]], [0f])],
        };

        using var session = new InferenceSession(TrainingService.Server.Jobs.OnnxExport.Write(model));
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(new float[] { 1, -1 }, [2, 1]))]);

        Assert.Equal(0.5f, results.Single(r => r.Name == "probability").AsTensor<float>().GetValue(0));
        Assert.Equal(["yes", "no"], results.Single(r => r.Name == "label").AsTensor<string>().ToArray());
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
    public async Task The_onnx_export_of_an_unknown_job_or_one_without_a_model_answers_as_the_json_model_does()
    {
        var job = await LongJobs.StartAsync(_client);
        try
        {
            await (await _client.GetAsync($"/api/jobs/{job.Id()}/model?format=onnx")).AssertProblemAsync(HttpStatusCode.Conflict, "job.no_model");
            await (await _client.GetAsync($"/api/jobs/{Guid.NewGuid()}/model?format=onnx")).AssertProblemAsync(HttpStatusCode.NotFound, "job.not_found");
        }
        finally
        {
            await LongJobs.EndAsync(_client, job.Id());
        }
    }
}
