namespace TrainingService.Server.Histories;

/// <summary>One finished epoch. Non-finite values appear as the strings "NaN", "Infinity", "-Infinity".</summary>
public sealed record EpochResponse
{
    public required int Epoch { get; init; }
    public required double TrainLoss { get; init; }
    public double? ValLoss { get; init; }
    public required double RegularizationLoss { get; init; }
    public required IReadOnlyDictionary<string, double> Metrics { get; init; }
    public required double LearningRate { get; init; }
    public required double GradientNorm { get; init; }
    public required double DurationMs { get; init; }
    public required double SamplesPerSecond { get; init; }
    public required DateTimeOffset RecordedAt { get; init; }
}

/// <summary>
/// A job's history. Exact reads (<c>sampled: false</c>) return every epoch after <c>afterEpoch</c> (and up to <c>toEpoch</c>)
/// up to <c>limit</c>, with <c>nextAfterEpoch</c> to continue from; sampled reads (<c>?maxPoints=</c>) return at most that
/// many points of the range, with the <c>buckets</c> they stand for.
/// </summary>
public sealed record HistoryResponse
{
    public required Guid JobId { get; init; }
    public required string Status { get; init; }
    /// <summary>Why the job ended, once it has (completed, early_stopped, cancelled, timeout, diverged, error).</summary>
    public string? StopReason { get; init; }
    /// <summary>The failure, for a failed job.</summary>
    public Jobs.JobFailure? Failure { get; init; }
    public required bool Sampled { get; init; }
    public required int EpochsCompleted { get; init; }
    public required int TotalEpochs { get; init; }
    public required IReadOnlyList<EpochResponse> Epochs { get; init; }
    /// <summary>
    /// Pass as afterEpoch to read on: the last epoch returned, or the afterEpoch asked for when nothing new was returned.
    /// </summary>
    public required int NextAfterEpoch { get; init; }
    public required bool HasMore { get; init; }
    /// <summary>For a sampled read: the series whose extremes were kept in each bucket.</summary>
    public string? Metric { get; init; }
    /// <summary>
    /// For a sampled read: consecutive epoch ranges covering the whole read, each with the range of trainLoss, valLoss and
    /// <see cref="Metric"/> in it.
    /// </summary>
    public IReadOnlyList<HistoryBucket>? Buckets { get; init; }
    /// <summary>The trivial model's losses and metrics (training mean or class prior): the chart's reference line.</summary>
    public System.Text.Json.JsonElement? Baseline { get; init; }
    /// <summary>What the whole curve says so far (docs/diagnoses.md), each with the epochs it covers.</summary>
    public required System.Text.Json.JsonElement Diagnoses { get; init; }
}

/// <summary>
/// Epochs <paramref name="FromEpoch"/> to <paramref name="ToEpoch"/> of a sampled read, drawn as one stretch of a chart: for
/// each loss (and the sampled metric) the range of its values there, so a chart can shade what the kept epochs stand for.
/// </summary>
public sealed record HistoryBucket(int FromEpoch, int ToEpoch, IReadOnlyDictionary<string, SeriesRange> Ranges);

/// <summary>The lowest and highest finite value of a series in a bucket (null when none is finite), and how many were NaN or ±Infinity.</summary>
public sealed record SeriesRange(double? Min, double? Max, int NonFinite);

/// <summary>One metric of several jobs, for comparing runs.</summary>
public sealed record HistoryComparison(string Metric, bool Sampled, IReadOnlyList<HistorySeries> Series);

public sealed record HistorySeries(Guid JobId, string Status, IReadOnlyList<HistoryPoint> Points);

public sealed record HistoryPoint(int Epoch, double? Value);
