using System.Text.Json;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Losses;

/// <summary>
/// The body of <c>POST /api/losses/evaluate</c> as <see cref="EvaluateRequestReader"/> read it: the small fields as the
/// JSON binder would have bound them (<see cref="EvaluateLossRequest"/>), the number arrays in pooled buffers, which go
/// back to the pool when this is disposed.
/// </summary>
internal sealed class EvaluateLossBody : IDisposable
{
    public JsonElement? Loss { get; set; }
    public Dictionary<string, JsonElement>? Params { get; set; }
    public string? Reduction { get; set; }
    public List<double>? ClassWeights { get; set; }
    public bool? FromLogits { get; set; }
    public StreamedMatrix Predictions { get; } = new("predictions");
    public StreamedMatrix Targets { get; } = new("targets");
    public StreamedMatrix Weights { get; } = new("weights");
    public StreamedMatrix Variance { get; } = new("variance");

    /// <summary>Values held in all four arrays.</summary>
    public long ValueCount => (long)Predictions.Values.Count + Targets.Values.Count + Weights.Values.Count + Variance.Values.Count;

    public void Dispose()
    {
        Predictions.Dispose();
        Targets.Dispose();
        Weights.Dispose();
        Variance.Dispose();
    }
}

/// <summary>
/// One number array of the request (a number per row, or rows of equal length), flattened row-major as it streamed in,
/// with the first thing found wrong with it. Its problems are reported in the order the handler checks the fields, not
/// the order they arrive in, so they stay what they were when the body was bound as a whole.
/// </summary>
internal sealed class StreamedMatrix(string field) : IDisposable
{
    public string Field { get; } = field;

    /// <summary>False while the field is absent or null.</summary>
    public bool Present { get; private set; }

    public ApiProblem? Problem { get; set; }
    public PooledFloats Values { get; } = new();

    /// <summary>A number array (rows of one), as opposed to an array of rows.</summary>
    public bool IsFlat { get; set; } = true;

    public int Rows { get; set; }

    /// <summary>Values per row; -1 until the first row has ended.</summary>
    public int Width { get; set; } = -1;

    /// <summary>Starts over; a field given twice keeps its last value, as the JSON binder did.</summary>
    public void Reset(bool present, ApiProblem? problem = null)
    {
        Values.Clear();
        Present = present;
        Problem = problem;
        IsFlat = true;
        Rows = 0;
        Width = -1;
    }

    public void Dispose() => Values.Dispose();
}
