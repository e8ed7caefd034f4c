using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TrainingService.Compute.Losses;
using TrainingService.Compute.Models;
using TrainingService.Compute.Training;
using TrainingService.Server.Infrastructure;
using TrainingService.Server.Preprocessing;

namespace TrainingService.Server.Jobs;

/// <summary>One dense layer's weights as nested arrays: weights[input][output], bias[output].</summary>
public sealed record LayerParameters(int Inputs, int Outputs, string Activation, float[][] Weights, float[] Bias);

/// <summary>
/// A trained model as served by <c>GET /api/jobs/{id}/model</c> and used by predict: architecture, weights, the
/// fitted input pipeline (feature order, encoders), the target and its label order.
/// </summary>
public sealed record ModelDocument
{
    public required Guid JobId { get; init; }
    public required string Task { get; init; }
    public required string OutputTransform { get; init; }
    public required IReadOnlyList<string> Loss { get; init; }
    public required IReadOnlyList<string> TargetColumns { get; init; }
    public IReadOnlyList<string>? Labels { get; init; }
    /// <summary>Input columns in feature order, with their fitted encoders.</summary>
    public required IReadOnlyList<FeatureEncoder> Features { get; init; }
    /// <summary>Model input names after encoding.</summary>
    public required IReadOnlyList<string> Inputs { get; init; }
    public required double Dropout { get; init; }
    public required IReadOnlyList<LayerParameters> Layers { get; init; }
    public required int EpochsTrained { get; init; }
    public int? BestEpoch { get; init; }
    /// <summary>The epoch these weights come from: the best one (keep: best) or the last (keep: last). Absent from models stored before it existed.</summary>
    public int? ModelEpoch { get; init; }

    public static ModelDocument Create(Guid jobId, JobPlan plan, FeaturePipeline pipeline, NetworkLayout layout, TrainingOutcome outcome) => new()
    {
        JobId = jobId,
        Task = plan.Target.Task.ToString().ToLowerInvariant(),
        OutputTransform = plan.OutputTransform.ToString().ToLowerInvariant(),
        Loss = plan.LossTerms.Select(t => t.Name).ToList(),
        TargetColumns = plan.Target.Columns,
        Labels = plan.Target.Labels,
        Features = pipeline.Encoders,
        Inputs = pipeline.InputNames,
        Dropout = layout.Dropout,
        Layers = layout.Layers.Select(l => new LayerParameters(l.Inputs, l.Outputs, l.Activation.ToString().ToLowerInvariant(),
            Enumerable.Range(0, l.Inputs).Select(i => outcome.Parameters.AsSpan(l.Offset + i * l.Outputs, l.Outputs).ToArray()).ToArray(),
            outcome.Parameters.AsSpan(l.Offset + l.WeightCount, l.Outputs).ToArray())).ToList(),
        EpochsTrained = outcome.EpochsCompleted,
        BestEpoch = outcome.BestEpoch,
        ModelEpoch = outcome.ModelEpoch,
    };

    /// <summary>The layout and flat parameter vector the device runs.</summary>
    public (NetworkLayout Layout, float[] Parameters) ToNetwork()
    {
        var hidden = Layers.Take(Layers.Count - 1).Select(l => l.Outputs).ToList();
        var activation = Layers.Count > 1 ? Enum.Parse<Activation>(Layers[0].Activation, ignoreCase: true) : Activation.Identity;
        var layout = new NetworkLayout(Layers[0].Inputs, hidden, Layers[^1].Outputs, activation, Dropout);
        var parameters = new float[layout.ParameterCount];
        for (int l = 0; l < Layers.Count; l++)
        {
            var offset = layout.Layers[l].Offset;
            for (int i = 0; i < Layers[l].Inputs; i++)
            {
                Layers[l].Weights[i].CopyTo(parameters, offset + i * Layers[l].Outputs);
            }
            Layers[l].Bias.CopyTo(parameters, offset + layout.Layers[l].WeightCount);
        }
        return (layout, parameters);
    }

    public FeaturePipeline Pipeline => new(Features);

    public OutputTransform Transform => Enum.Parse<OutputTransform>(OutputTransform, ignoreCase: true);

    /// <summary>The JSON stored and served, its strong ETag (a hash of exactly those bytes), and the epoch it comes from.</summary>
    public StoredModel Serialize()
    {
        string json = JsonSerializer.Serialize(this, ApiJson.Options);
        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(json)))[..32];
        return new StoredModel(json, $"\"m-{hash}\"", ModelEpoch ?? EpochsTrained);
    }
}
