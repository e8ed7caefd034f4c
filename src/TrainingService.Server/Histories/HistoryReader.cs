using System.Text.Json;
using Npgsql;
using TrainingService.Server.Infrastructure;
using TrainingService.Compute.Training;

namespace TrainingService.Server.Histories;

/// <summary>Reads epochs, exact or downsampled.</summary>
public sealed class HistoryReader(NpgsqlDataSource dataSource)
{
    public const string Columns = "epoch, train_loss, val_loss, regularization_loss, metrics, learning_rate, gradient_norm, duration_ms, samples_per_second, recorded_at";

    /// <summary>
    /// Epochs after <paramref name="afterEpoch"/> and up to <paramref name="toEpoch"/> (inclusive), at most
    /// <paramref name="limit"/>, in order.
    /// </summary>
    public async Task<List<EpochResponse>> ReadAsync(Guid jobId, int afterEpoch, int limit, CancellationToken cancellationToken,
        int toEpoch = int.MaxValue)
    {
        await using var command = dataSource.CreateCommand(
            $"SELECT {Columns} FROM job_epochs WHERE job_id = @id AND epoch > @after AND epoch <= @to ORDER BY epoch LIMIT @limit");
        command.Parameters.AddWithValue("id", jobId);
        command.Parameters.AddWithValue("after", afterEpoch);
        command.Parameters.AddWithValue("to", toEpoch);
        command.Parameters.AddWithValue("limit", limit);
        var epochs = new List<EpochResponse>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            epochs.Add(Read(reader));
        }
        return epochs;
    }

    public static EpochResponse Read(NpgsqlDataReader reader) => new()
    {
        Epoch = reader.GetInt32(0),
        TrainLoss = reader.GetDouble(1),
        ValLoss = reader.IsDBNull(2) ? null : reader.GetDouble(2),
        RegularizationLoss = reader.GetDouble(3),
        Metrics = JsonSerializer.Deserialize<Dictionary<string, double>>(reader.GetString(4), ApiJson.Options)!,
        LearningRate = reader.GetDouble(5),
        GradientNorm = reader.GetDouble(6),
        DurationMs = reader.GetDouble(7),
        SamplesPerSecond = reader.GetDouble(8),
        RecordedAt = reader.GetFieldValue<DateTimeOffset>(9),
    };

    /// <summary>The value of a named series in an epoch (losses, learning rate, timing, or a metric).</summary>
    public static double? Value(EpochResponse epoch, string metric) => metric switch
    {
        "trainLoss" => epoch.TrainLoss,
        "valLoss" => epoch.ValLoss,
        "regularizationLoss" => epoch.RegularizationLoss,
        "learningRate" => epoch.LearningRate,
        "gradientNorm" => epoch.GradientNorm,
        "durationMs" => epoch.DurationMs,
        "samplesPerSecond" => epoch.SamplesPerSecond,
        _ => epoch.Metrics.TryGetValue(metric, out var value) ? value : null,
    };

    public static readonly IReadOnlyList<string> BuiltInSeries =
        ["trainLoss", "valLoss", "regularizationLoss", "learningRate", "gradientNorm", "durationMs", "samplesPerSecond"];

    /// <summary>Every metric some kind of job reports (<see cref="Metrics.Names"/>).</summary>
    public static readonly IReadOnlyList<string> MetricSeries =
        Enum.GetValues<OutputKind>().SelectMany(kind => Metrics.Names(kind)).Distinct().ToList();

    /// <summary>
    /// Deterministic downsampling to at most <paramref name="maxPoints"/> epochs: the first and last epoch, then the
    /// rest split into equal buckets, each contributing the epochs with its minimum and maximum of
    /// <paramref name="metric"/> (so spikes survive, unlike random sampling); with room for one inner point only, the maximum.
    /// Each bucket's range of <paramref name="metric"/> comes back too (the first and last epoch as buckets of their own), so a
    /// chart can shade what the kept points stand for. Short enough histories come back whole, with no buckets.
    /// </summary>
    public static Downsampled Downsample(IReadOnlyList<EpochResponse> epochs, int maxPoints, string metric)
    {
        if (epochs.Count <= maxPoints)
        {
            return new Downsampled(epochs.ToList(), []);
        }
        var keep = new SortedDictionary<int, EpochResponse> { [epochs[0].Epoch] = epochs[0], [epochs[^1].Epoch] = epochs[^1] };
        var buckets = new List<HistoryBucket> { Bucket(epochs, 0, 1, metric).Range };
        bool onlyHighs = maxPoints - 2 < 2;
        int count = Math.Max(1, (maxPoints - 2) / 2);
        int inner = epochs.Count - 2;
        for (int b = 0; b < count; b++)
        {
            int start = 1 + (int)((long)b * inner / count), end = 1 + (int)((long)(b + 1) * inner / count);
            if (start >= end)
            {
                continue;
            }
            var (range, low, high) = Bucket(epochs, start, end, metric);
            if (!onlyHighs)
            {
                keep[epochs[low].Epoch] = epochs[low];
            }
            keep[epochs[high].Epoch] = epochs[high];
            buckets.Add(range);
        }
        buckets.Add(Bucket(epochs, epochs.Count - 1, epochs.Count, metric).Range);
        return new Downsampled(keep.Values.ToList(), buckets);
    }

    /// <summary>
    /// The range of <paramref name="metric"/> over epochs[start..end) and the indices of its lowest and highest epoch.
    /// NaN and ±Infinity (a diverging epoch) count as highs, exactly what a chart must not hide, but stay out of the
    /// bucket's finite min and max: the bucket counts them instead.
    /// </summary>
    private static (HistoryBucket Range, int Low, int High) Bucket(IReadOnlyList<EpochResponse> epochs, int start, int end, string metric)
    {
        int low = start, high = start, nonFinite = 0;
        double lowValue = double.NaN, highValue = double.NegativeInfinity;
        double? min = null, max = null;
        for (int i = start; i < end; i++)
        {
            double? value = Value(epochs[i], metric);
            double v = value ?? double.NaN;
            if (value is double finite && double.IsFinite(finite))
            {
                min = Math.Min(min ?? finite, finite);
                max = Math.Max(max ?? finite, finite);
            }
            else if (value is not null)
            {
                nonFinite++;
            }
            if (!double.IsNaN(v) && (double.IsNaN(lowValue) || v < lowValue))
            {
                (low, lowValue) = (i, v);
            }
            double asHigh = double.IsNaN(v) ? double.PositiveInfinity : v;
            if (asHigh > highValue)
            {
                (high, highValue) = (i, asHigh);
            }
        }
        return (new HistoryBucket(epochs[start].Epoch, epochs[end - 1].Epoch, min, max, nonFinite), low, high);
    }
}

/// <summary>What <see cref="HistoryReader.Downsample"/> keeps, and the buckets the kept epochs stand for (none when nothing was dropped).</summary>
public sealed record Downsampled(List<EpochResponse> Kept, List<HistoryBucket> Buckets);
