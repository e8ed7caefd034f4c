using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>Training specs through the API: models, losses against targets, bad specs, determinism, the model and predict.</summary>
[Collection(ServiceTests.Name)]
public sealed class TrainingTests(ServiceFixture service)
{
    private readonly HttpClient _client = service.Client;

    private static string? _linear, _blobs, _binary, _distribution;

    private async Task<string> LinearAsync() => _linear ??= (await _client.UploadAsync(TestData.Linear(400, seed: 41))).Id();

    private async Task<string> BlobsAsync() => _blobs ??= (await _client.UploadAsync(TestData.Blobs(300, seed: 42))).Id();

    /// <summary>A binary target written 'yes'/'no' with a feature that separates it, and a three-valued column 'tier'.</summary>
    private async Task<string> BinaryAsync()
    {
        if (_binary is not null)
        {
            return _binary;
        }
        var random = new Random(43);
        var csv = new StringBuilder("score,group,tier,churned\n");
        for (int i = 0; i < 300; i++)
        {
            double score = random.NextDouble() * 4 - 2;
            csv.Append(System.Globalization.CultureInfo.InvariantCulture, $"{score:R},{(i % 2 == 0 ? "a" : "b")},{i % 3},{(score > 0.3 ? "yes" : "no")}\n");
        }
        return _binary = (await _client.UploadAsync(csv.ToString())).Id();
    }

    /// <summary>Two features and three probability columns that sum to 1.</summary>
    private async Task<string> DistributionAsync()
    {
        if (_distribution is not null)
        {
            return _distribution;
        }
        var random = new Random(44);
        var csv = new StringBuilder("u,v,p_a,p_b,p_c\n");
        for (int i = 0; i < 200; i++)
        {
            double u = random.NextDouble(), v = random.NextDouble();
            double a = Math.Exp(2 * u), b = Math.Exp(2 * v), c = 1.0, sum = a + b + c;
            csv.Append(System.Globalization.CultureInfo.InvariantCulture, $"{u:R},{v:R},{a / sum:R},{b / sum:R},{c / sum:R}\n");
        }
        return _distribution = (await _client.UploadAsync(csv.ToString())).Id();
    }

    private async Task<JsonNode> TrainAsync(object spec)
    {
        var job = await _client.SubmitAsync(spec);
        var done = await _client.WaitForEndAsync(job.Id(), 120);
        Assert.True((string?)done["status"] == "succeeded", done.ToJsonString());
        return done;
    }

    private async Task<JsonNode> LastEpochAsync(string jobId) =>
        (await _client.GetJsonAsync($"/api/jobs/{jobId}/history"))["epochs"]!.AsArray()[^1]!;

    [Fact]
    public async Task An_mlp_with_validation_early_stopping_and_a_schedule_trains_and_reports_every_field()
    {
        var done = await TrainAsync(new
        {
            datasetId = await BlobsAsync(), target = "species",
            model = new { type = "mlp", hiddenLayers = new[] { 16, 8 }, activation = "gelu", dropout = 0.1 },
            loss = new { name = "cross_entropy", label_smoothing = 0.05 },
            optimizer = new { name = "adamw", learningRate = 0.02, gradientClipNorm = 5.0 },
            schedule = new { name = "cosine", warmupEpochs = 2 },
            epochs = 40, batchSize = 16, validation = new { fraction = 0.2 },
            earlyStopping = new { monitor = "valLoss", patience = 4, minDelta = 0.001 },
            regularization = new { l2 = 0.0001 },
        });
        var epoch = await LastEpochAsync(done.Id());

        Assert.Contains((string?)done["stopReason"], new[] { "completed", "early_stopped" });
        double regularization = (double)epoch["regularizationLoss"]!;
        Assert.True(regularization > 0);
        // Both losses are a (positive, label-smoothed) cross-entropy plus the penalty.
        Assert.True((double)epoch["trainLoss"]! > regularization, epoch.ToJsonString());
        Assert.True((double)epoch["valLoss"]! > regularization, epoch.ToJsonString());
        Assert.InRange((double)epoch["learningRate"]!, double.Epsilon, 0.02);
        Assert.True((double)epoch["gradientNorm"]! is > 0 and < double.PositiveInfinity, epoch.ToJsonString());
        // samplesPerSecond counts the training pass alone, durationMs the whole epoch (validation included): their product
        // is at least the training rows.
        double durationMs = (double)epoch["durationMs"]!, samplesPerSecond = (double)epoch["samplesPerSecond"]!;
        Assert.True(durationMs > 0 && samplesPerSecond > 0, epoch.ToJsonString());
        Assert.True(samplesPerSecond * durationMs / 1000 >= 240 * (1 - 1e-9), epoch.ToJsonString());
        double accuracy = (double)epoch["metrics"]!["accuracy"]!;
        Assert.True(accuracy >= 0.95);
        Assert.Equal(Math.Round(accuracy * 60), accuracy * 60, 9); // a count of the 60 validation rows
        Assert.InRange((double)epoch["metrics"]!["macroF1"]!, 0.9, 1.0);
        Assert.Equal(240, (int)done["data"]!["trainRows"]!);
        Assert.Equal(60, (int)done["data"]!["validationRows"]!);
    }

    [Fact]
    public async Task Logistic_regression_on_words_yes_and_no_reports_binary_metrics_and_predicts_a_probability()
    {
        var done = await TrainAsync(new
        {
            datasetId = await BinaryAsync(), target = "churned", features = new[] { "score", "group" },
            loss = new { name = "bce_with_logits" }, classWeights = "balanced",
            optimizer = new { name = "adam", learningRate = 0.05 }, epochs = 30, batchSize = 16, validation = new { fraction = 0.2 },
        });
        var metrics = (await LastEpochAsync(done.Id()))["metrics"]!;
        var prediction = await Api.ReadAsync(await _client.PostAsJsonAsync($"/api/jobs/{done.Id()}/predict",
            new { rows = new object[] { new { score = 1.8, group = "a" }, new { score = -1.5, group = "b" } } }), HttpStatusCode.OK);

        Assert.Equal(["no", "yes"], done["data"]!["labels"]!.AsArray().Select(l => (string)l!));
        Assert.Equal(2, done["data"]!["classWeights"]!.AsArray().Count);
        double accuracy = (double)metrics["accuracy"]!, precision = (double)metrics["precision"]!, recall = (double)metrics["recall"]!;
        int validationRows = (int)done["data"]!["validationRows"]!;
        Assert.Equal(60, validationRows);
        Assert.True(accuracy >= 0.9, metrics.ToJsonString());
        Assert.Equal(Math.Round(accuracy * validationRows), accuracy * validationRows, 9); // a count of validation rows
        Assert.InRange(precision, 0.8, 1.0);
        Assert.InRange(recall, 0.8, 1.0);
        Assert.Equal(2 * precision * recall / (precision + recall), (double)metrics["f1"]!, 12);
        Assert.True((double)metrics["auc"]! > 0.95);
        var predictions = prediction["predictions"]!.AsArray();
        Assert.Equal("yes", (string?)predictions[0]!["label"]);
        Assert.True((double)predictions[0]!["probability"]! > 0.5);
        Assert.Equal("no", (string?)predictions[1]!["label"]);
    }

    [Fact]
    public async Task Kl_div_trains_on_probability_columns_and_predicts_a_distribution()
    {
        var done = await TrainAsync(new
        {
            datasetId = await DistributionAsync(), target = new[] { "p_a", "p_b", "p_c" }, loss = "kl_div",
            optimizer = new { name = "adam", learningRate = 0.05 }, epochs = 20, batchSize = 16,
        });
        var prediction = await Api.ReadAsync(await _client.PostAsJsonAsync($"/api/jobs/{done.Id()}/predict",
            new { rows = new[] { new { u = 0.9, v = 0.1 } } }), HttpStatusCode.OK);

        var probabilities = prediction["predictions"]![0]!["probabilities"]!.AsObject();
        Assert.Equal(["p_a", "p_b", "p_c"], probabilities.Select(p => p.Key));
        Assert.Equal(1.0, probabilities.Sum(p => (double)p.Value!), 5);
        Assert.True((double)probabilities["p_a"]! > (double)probabilities["p_b"]!);
        Assert.True((double)done["summary"]!["lastTrainLoss"]! < 0.05);
    }

    [Fact]
    public async Task Several_target_columns_train_a_multi_output_regression()
    {
        var random = new Random(45);
        var csv = new StringBuilder("a,b,sum,difference\n");
        var rows = new List<(double A, double B)>();
        for (int i = 0; i < 300; i++)
        {
            double a = random.NextDouble(), b = random.NextDouble();
            rows.Add((a, b));
            csv.Append(System.Globalization.CultureInfo.InvariantCulture, $"{a:R},{b:R},{a + b:R},{a - b:R}\n");
        }
        var dataset = await _client.UploadAsync(csv.ToString());

        var done = await TrainAsync(new
        {
            datasetId = dataset.Id(), target = new[] { "sum", "difference" }, loss = "mse",
            optimizer = new { name = "adam", learningRate = 0.05 }, epochs = 40, batchSize = 16,
        });
        var prediction = await Api.ReadAsync(await _client.PostAsJsonAsync($"/api/jobs/{done.Id()}/predict",
            new { rows = new[] { new { a = 0.25, b = 0.5 } } }), HttpStatusCode.OK);

        var values = prediction["predictions"]![0]!["values"]!.AsArray().Select(v => (double)v!).ToList();
        Assert.Equal(2, values.Count);
        // Within 0.05, not "equal to one decimal place": rounding puts 0.75 and 0.74999994 on different sides of 0.75.
        Assert.Equal(0.75, values[0], 0.05);
        Assert.Equal(-0.25, values[1], 0.05);
        // Without validation each epoch's metrics are its model's on all 300 training rows. /predict uses the kept model (keep:
        // best, here by training loss): recompute that epoch's metrics from /predict.
        int kept = (int)done["modelEpoch"]!;
        var history = await _client.GetJsonAsync($"/api/jobs/{done.Id()}/history");
        var metrics = history["epochs"]!.AsArray().Single(e => (int)e!["epoch"]! == kept)!["metrics"]!;
        var all = await Api.ReadAsync(await _client.PostAsJsonAsync($"/api/jobs/{done.Id()}/predict",
            new { rows = rows.Select(r => new { a = r.A, b = r.B }) }), HttpStatusCode.OK);
        var predicted = all["predictions"]!.AsArray().Select(p => p!["values"]!.AsArray().Select(v => (double)v!).ToArray()).ToList();
        var expected = RegressionMetrics(rows.Select(r => new[] { r.A + r.B, r.A - r.B }).ToList(), predicted);
        foreach (var name in new[] { "rmse", "mae", "r2" })
        {
            Assert.Equal(expected[name], (double)metrics[name]!, 1e-3 * Math.Max(Math.Abs(expected[name]), 1e-3));
        }
        Assert.True((double)metrics["r2"]! > 0.99);
    }

    /// <summary>rmse and mae over every value, r2 averaged over the target columns (scikit-learn's uniform average).</summary>
    private static Dictionary<string, double> RegressionMetrics(List<double[]> targets, List<double[]> predictions)
    {
        int width = targets[0].Length, n = targets.Count * width;
        double squared = 0, absolute = 0, r2 = 0;
        for (int c = 0; c < width; c++)
        {
            double mean = targets.Average(t => t[c]), residual = 0, total = 0;
            for (int r = 0; r < targets.Count; r++)
            {
                double e = predictions[r][c] - targets[r][c];
                residual += e * e;
                absolute += Math.Abs(e);
                total += (targets[r][c] - mean) * (targets[r][c] - mean);
            }
            squared += residual;
            r2 += 1 - residual / total;
        }
        return new() { ["rmse"] = Math.Sqrt(squared / n), ["mae"] = absolute / n, ["r2"] = r2 / width };
    }

    [Fact]
    public async Task A_combined_loss_trains_a_regression()
    {
        var done = await TrainAsync(new
        {
            datasetId = await LinearAsync(), target = "y",
            loss = new { terms = new object[] { new { name = "huber", weight = 1.0, delta = 0.5 }, new { name = "l1", weight = 0.5 } } },
            optimizer = new { name = "rmsprop", learningRate = 0.01 }, epochs = 10, batchSize = 16, validation = new { fraction = 0.25 },
        });
        var epoch = await LastEpochAsync(done.Id());
        var metrics = epoch["metrics"]!;

        Assert.True((double)metrics["r2"]! > 0.9);
        // valLoss = mean huber_δ(e) + 0.5 · mean |e| on the validation rows, with δ = 0.5, and δ|e| − δ²/2 ≤ huber_δ(e) ≤ min(e²/2, δ|e|):
        // so the mean huber recovered from valLoss and mae lies between bounds set by mae and rmse.
        double rmse = (double)metrics["rmse"]!, mae = (double)metrics["mae"]!, huber = (double)epoch["valLoss"]! - 0.5 * mae;
        const double delta = 0.5, tolerance = 1e-5;
        Assert.InRange(mae, 1e-6, rmse);
        Assert.InRange(huber, delta * mae - delta * delta / 2 - tolerance, Math.Min(rmse * rmse / 2, delta * mae) + tolerance);
    }

    [Fact]
    public async Task With_the_mse_loss_the_validation_rmse_is_the_square_root_of_the_validation_loss()
    {
        var done = await TrainAsync(new
        {
            datasetId = await LinearAsync(), target = "y", loss = "mse",
            optimizer = new { name = "adam", learningRate = 0.05 }, epochs = 5, batchSize = 16, validation = new { fraction = 0.25 },
        });
        var epochs = (await _client.GetJsonAsync($"/api/jobs/{done.Id()}/history"))["epochs"]!.AsArray();

        Assert.Equal(5, epochs.Count);
        Assert.All(epochs, e =>
        {
            double valLoss = (double)e!["valLoss"]!, rmse = (double)e["metrics"]!["rmse"]!;
            Assert.Equal(Math.Sqrt(valLoss), rmse, 1e-5 * Math.Sqrt(valLoss));
            Assert.InRange((double)e["metrics"]!["mae"]!, 1e-6, rmse);
        });
    }

    [Fact]
    public async Task The_same_spec_and_seed_give_identical_histories_and_a_missing_seed_is_generated_and_reported()
    {
        object Spec(int? seed) => new
        {
            datasetId = _blobs ?? "", target = "species", model = new { type = "mlp", hiddenLayers = new[] { 8 }, dropout = 0.2 },
            loss = "cross_entropy", optimizer = new { name = "sgd", learningRate = 0.05, momentum = 0.9, nesterov = true },
            epochs = 4, batchSize = 16, validation = new { fraction = 0.2 }, seed,
        };
        await BlobsAsync();
        var first = await TrainAsync(Spec(7));
        var second = await TrainAsync(Spec(7));
        var generated = await _client.SubmitAsync(Spec(null));

        static string Losses(JsonNode history) => string.Join(";", history["epochs"]!.AsArray()
            .Select(e => $"{e!["trainLoss"]}|{e["valLoss"]}|{e["metrics"]!.ToJsonString()}|{e["learningRate"]}|{e["gradientNorm"]}"));
        Assert.Equal(Losses(await _client.GetJsonAsync($"/api/jobs/{first.Id()}/history")),
            Losses(await _client.GetJsonAsync($"/api/jobs/{second.Id()}/history")));
        Assert.NotNull(generated["seed"]);
        Assert.Equal((int)generated["seed"]!, (int)generated["spec"]!["seed"]!);
        await _client.WaitForEndAsync(generated.Id());
    }

    [Fact]
    public async Task The_model_document_has_weights_and_order_and_an_etag()
    {
        var done = await TrainAsync(new
        {
            datasetId = await BlobsAsync(), target = "species", model = new { type = "mlp", hiddenLayers = new[] { 5 } },
            loss = "cross_entropy", epochs = 2,
        });

        var response = await _client.GetAsync($"/api/jobs/{done.Id()}/model");
        var model = await Api.ReadAsync(response, HttpStatusCode.OK);
        var conditional = new HttpRequestMessage(HttpMethod.Get, $"/api/jobs/{done.Id()}/model");
        conditional.Headers.IfNoneMatch.Add(response.Headers.ETag!);

        Assert.Equal(["width (cm)", "höhe"], model["features"]!.AsArray().Select(f => (string)f!["column"]!));
        Assert.Equal(["setosa", "versicolor", "virginica"], model["labels"]!.AsArray().Select(l => (string)l!));
        var layers = model["layers"]!.AsArray();
        Assert.Equal(2, layers.Count);
        Assert.Equal(2, layers[0]!["weights"]!.AsArray().Count);
        Assert.Equal(5, layers[0]!["weights"]![0]!.AsArray().Count);
        Assert.Equal(3, layers[1]!["bias"]!.AsArray().Count);
        Assert.Equal(HttpStatusCode.NotModified, (await _client.SendAsync(conditional)).StatusCode);
    }

    [Fact]
    public async Task Predict_reports_missing_and_extra_columns_and_notes_imputations_and_unseen_categories()
    {
        var done = await TrainAsync(new
        {
            datasetId = await BinaryAsync(), target = "churned", features = new[] { "score", "group" }, loss = "bce_with_logits", epochs = 2,
        });
        string url = $"/api/jobs/{done.Id()}/predict";

        await (await _client.PostAsJsonAsync(url, new { rows = new[] { new { score = 1.0 } } }))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "predict.missing_column", "rows[0].group");
        await (await _client.PostAsJsonAsync(url, new { rows = new[] { new { score = 1.0, group = "a", colour = "red" } } }))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "predict.unknown_column", "rows[0].colour");
        await (await _client.PostAsJsonAsync(url, new { rows = new[] { new { score = "high", group = "a" } } }))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "predict.invalid_value", "rows[0]");
        await (await _client.PostAsJsonAsync(url, new { rows = Array.Empty<object>() })).AssertProblemAsync(HttpStatusCode.BadRequest, "predict.empty", "rows");
        await (await _client.PostAsync(url, new StringContent("""{"rows": [{"score": 1, "group": "a"}, null]}""", Encoding.UTF8, "application/json")))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "predict.invalid_row", "rows[1]");
        var noted = await Api.ReadAsync(await _client.PostAsJsonAsync(url, new { rows = new object?[] { new { score = (double?)null, group = "zebra" } } }),
            HttpStatusCode.OK);
        var notes = noted["predictions"]![0]!["notes"]!.AsArray().Select(n => (string)n!).ToList();
        Assert.Contains(notes, n => n.StartsWith("score: missing, imputed"));
        Assert.Contains(notes, n => n.Contains("'zebra' was not in the training data"));
    }

    [Fact]
    public async Task A_job_without_a_model_yet_answers_409_for_model_and_predict()
    {
        var job = await LongJobs.StartAsync(_client);
        try
        {
            await (await _client.GetAsync($"/api/jobs/{job.Id()}/model")).AssertProblemAsync(HttpStatusCode.Conflict, "job.no_model");
            await (await _client.GetAsync($"/api/jobs/{Guid.NewGuid()}/model")).AssertProblemAsync(HttpStatusCode.NotFound, "job.not_found");
        }
        finally
        {
            await LongJobs.EndAsync(_client, job.Id());
        }
    }

    public static TheoryData<string, string, string> BadSpecs => new()
    {
        { """{"epochs": 0}""", "job.epochs_out_of_range", "epochs" },
        { """{"epochs": 2001}""", "job.epochs_out_of_range", "epochs" },
        { """{"batchSize": 0}""", "job.batch_size_out_of_range", "batchSize" },
        { """{"batchSize": 65537}""", "job.batch_size_out_of_range", "batchSize" },
        { """{"target": 5}""", "job.invalid_target", "target" },
        { """{"features": ["x1", null]}""", "job.invalid_features", "features[1]" },
        { """{"schedule": {"name": "reduce_on_plateau", "threshold": "NaN"}}""", "job.invalid_schedule", "schedule.threshold" },
        { """{"schedule": {"name": "cosine", "minLearningRate": -1}}""", "job.invalid_schedule", "schedule.minLearningRate" },
        { """{"optimizer": {"name": "adam", "learningRate": 0}}""", "job.invalid_learning_rate", "optimizer.learningRate" },
        { """{"optimizer": {"name": "adam", "learningRate": -0.1}}""", "job.invalid_learning_rate", "optimizer.learningRate" },
        { """{"optimizer": {"name": "adagrad"}}""", "job.unknown_optimizer", "optimizer.name" },
        { """{"schedule": {"name": "triangular"}}""", "job.unknown_schedule", "schedule.name" },
        { """{"model": {"type": "mlp", "hiddenLayers": [8], "activation": "swish"}}""", "job.unknown_activation", "model.activation" },
        { """{"model": {"type": "mlp", "hiddenLayers": []}}""", "job.invalid_hidden_layers", "model.hiddenLayers" },
        { """{"model": {"type": "mlp", "hiddenLayers": [8, 513]}}""", "job.invalid_hidden_layers", "model.hiddenLayers[1]" },
        { """{"model": {"type": "forest"}}""", "job.unknown_model", "model.type" },
        { """{"validation": {"fraction": 0}}""", "job.invalid_validation_fraction", "validation.fraction" },
        { """{"validation": {"fraction": 0.95}}""", "job.invalid_validation_fraction", "validation.fraction" },
        { """{"earlyStopping": {"patience": 3}}""", "job.early_stopping_needs_validation", "earlyStopping" },
        { """{"missing": "guess"}""", "job.invalid_missing_policy", "missing" },
        { """{"maxRuntime": "40.00:00:00"}""", "job.invalid_max_runtime", "maxRuntime" },
        { """{"loss": {"name": "huber", "delta": 0}}""", "loss.parameter_out_of_range", "loss.delta" },
        { """{"loss": {"name": "huber", "dleta": 1}}""", "loss.unknown_parameter", "loss.dleta" },
        { """{"loss": {"name": "hubber"}}""", "loss.unknown", "loss.name" },
        { """{"loss": {"terms": []}}""", "loss.empty", "loss.terms" },
        { """{"loss": {"delta": 1}}""", "loss.missing_name", "loss.name" },
        { """{"loss": {"terms": [{"name": "mse"}, {"weight": 1}]}}""", "loss.missing_name", "loss.terms[1].name" },
        { """{"datasetId": null}""", "job.missing_field", "datasetId" },
        { """{"target": null}""", "job.missing_field", "target" },
        { """{"loss": null}""", "job.missing_field", "loss" },
        { """{"epochs": null}""", "job.missing_field", "epochs" },
        { """{"target": []}""", "job.invalid_target", "target" },
        { """{"target": ["y", "y"]}""", "job.invalid_target", "target" },
        { """{"target": ["y", 1]}""", "job.invalid_target", "target" },
        { """{"features": ["x1", "x2", "x1"]}""", "job.duplicate_feature", "features" },
        { """{"model": {"type": "mlp", "hiddenLayers": [8], "dropout": 0.95}}""", "job.invalid_dropout", "model.dropout" },
        { """{"optimizer": {"name": "sgd", "momentum": 1.5}}""", "job.invalid_optimizer", "optimizer.momentum" },
        { """{"optimizer": {"name": "adam", "beta1": 1}}""", "job.invalid_optimizer", "optimizer.beta1" },
        { """{"optimizer": {"name": "adam", "beta2": -0.1}}""", "job.invalid_optimizer", "optimizer.beta2" },
        { """{"optimizer": {"name": "rmsprop", "alpha": 1}}""", "job.invalid_optimizer", "optimizer.alpha" },
        { """{"optimizer": {"name": "adam", "epsilon": 0}}""", "job.invalid_optimizer", "optimizer.epsilon" },
        { """{"optimizer": {"name": "adamw", "weightDecay": -0.01}}""", "job.invalid_optimizer", "optimizer.weightDecay" },
        { """{"optimizer": {"name": "adam", "gradientClipNorm": 0}}""", "job.invalid_optimizer", "optimizer.gradientClipNorm" },
        { """{"optimizer": {"name": "sgd", "nesterov": true}}""", "job.invalid_optimizer", "optimizer.nesterov" },
        { """{"schedule": {"name": "step", "stepSize": 0}}""", "job.invalid_schedule", "schedule.stepSize" },
        { """{"schedule": {"name": "step", "stepSize": 2, "gamma": 1.5}}""", "job.invalid_schedule", "schedule.gamma" },
        { """{"schedule": {"name": "reduce_on_plateau", "factor": 1}}""", "job.invalid_schedule", "schedule.factor" },
        { """{"schedule": {"name": "cosine", "warmupEpochs": -1}}""", "job.invalid_schedule", "schedule" },
        { """{"schedule": {"name": "reduce_on_plateau", "mode": "sideways"}}""", "job.invalid_mode", "schedule.mode" },
        { """{"schedule": {"name": "reduce_on_plateau", "monitor": "valLoss"}}""", "job.unknown_monitor", "schedule.monitor" },
        { """{"schedule": {"name": "reduce_on_plateau", "monitor": "accuracy"}, "validation": {"fraction": 0.2}}""", "job.unknown_monitor", "schedule.monitor" },
        { """{"earlyStopping": {"monitor": "accuracy"}, "validation": {"fraction": 0.2}}""", "job.unknown_monitor", "earlyStopping.monitor" },
        { """{"earlyStopping": {"mode": "up"}, "validation": {"fraction": 0.2}}""", "job.invalid_mode", "earlyStopping.mode" },
        { """{"earlyStopping": {"patience": 0}, "validation": {"fraction": 0.2}}""", "job.invalid_early_stopping", "earlyStopping.patience" },
        { """{"earlyStopping": {"minDelta": -1}, "validation": {"fraction": 0.2}}""", "job.invalid_early_stopping", "earlyStopping.minDelta" },
        { """{"regularization": {"l2": -0.001}}""", "job.invalid_regularization", "regularization" },
        { """{"regularization": {"l2": 0.001, "convention": "tensorflow"}}""", "job.invalid_regularization", "regularization.convention" },
    };

    [Theory]
    [MemberData(nameof(BadSpecs))]
    public async Task A_bad_spec_is_refused_at_submit_naming_the_field(string overrides, string code, string field)
    {
        var spec = JsonNode.Parse($$"""{"datasetId": "{{await LinearAsync()}}", "target": "y", "loss": "mse", "epochs": 1}""")!.AsObject();
        foreach (var (key, value) in JsonNode.Parse(overrides)!.AsObject())
        {
            spec[key] = value?.DeepClone();
        }

        var response = await _client.PostAsync("/api/jobs", new StringContent(spec.ToJsonString(), Encoding.UTF8, "application/json"));

        await response.AssertProblemAsync(HttpStatusCode.BadRequest, code, field);
    }

    [Theory]
    [InlineData("cross_entropy", "y", "job.loss_target_mismatch")]      // a continuous target
    [InlineData("bce_with_logits", "species", "job.loss_target_mismatch")] // three classes
    [InlineData("kl_div", "species", "job.loss_target_mismatch")]       // no probability columns
    [InlineData("mse", "species", "job.loss_target_mismatch")]          // words
    public async Task A_loss_that_does_not_fit_the_target_is_refused_naming_both(string loss, string target, string code)
    {
        string dataset = target == "y" ? await LinearAsync() : await BlobsAsync();

        var response = await _client.PostAsJsonAsync("/api/jobs", new { datasetId = dataset, target, loss, epochs = 1 });

        var problem = await response.AssertProblemAsync(HttpStatusCode.UnprocessableEntity, code, "loss");
        Assert.Equal(loss, (string?)problem["loss"]);
        Assert.Contains(target, problem["target"]!.AsArray().Select(t => (string)t!));
    }

    [Fact]
    public async Task A_target_with_a_single_class_is_refused()
    {
        var dataset = await _client.UploadAsync("x,label\n1,cat\n2,cat\n3,cat\n");

        var response = await _client.PostAsJsonAsync("/api/jobs", new { datasetId = dataset.Id(), target = "label", loss = "cross_entropy", epochs = 1 });

        await response.AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "job.single_class_target", "target");
    }

    [Fact]
    public async Task Feature_columns_must_exist_be_usable_and_not_be_the_target()
    {
        var dataset = await _client.UploadAsync(
            "x,note,y\n" + string.Join("\n", Enumerable.Range(0, 30).Select(i => $"{i},word{i},{i * 2}")) + "\n");
        async Task Refused(object features, string code, string field)
        {
            var response = await _client.PostAsJsonAsync("/api/jobs", new { datasetId = dataset.Id(), target = "y", features, loss = "mse", epochs = 1 });
            await response.AssertProblemAsync(HttpStatusCode.UnprocessableEntity, code, field);
        }

        await Refused(new[] { "x", "z" }, "job.unknown_column", "features[1]");
        await Refused(new[] { "note" }, "job.unusable_column", "features[0]");
        await Refused(new[] { "x", "y" }, "job.target_in_features", "features[1]");
    }

    [Fact]
    public async Task Class_weights_must_name_real_classes()
    {
        var response = await _client.PostAsJsonAsync("/api/jobs", new
        {
            datasetId = await BlobsAsync(), target = "species", loss = "cross_entropy", epochs = 1,
            classWeights = new Dictionary<string, double> { ["setosa"] = 2, ["daisy"] = 1 },
        });

        await response.AssertProblemAsync(HttpStatusCode.BadRequest, "job.invalid_class_weights", "classWeights.daisy");
    }
}
