using System.Text.Json;
using Npgsql;
using TrainingService.Server.Infrastructure;
using TrainingService.Compute.Training;

namespace TrainingService.Server.Histories;

/// <summary>Reads epochs, exact or downsampled.</summary>
public sealed class HistoryReader(NpgsqlDataSource dataSource)
{
    public const string Columns = "epoch, train_loss, val_loss, regularization_loss, metrics, learning_rate, gradient_norm, duration_ms, samples_per_second, recorded_at";

    /// <summary>Epochs after <paramref name="afterEpoch"/>, at most <paramref name="limit"/>, in order.</summary>
    public async Task<List<EpochResponse>> ReadAsync(Guid jobId, int afterEpoch, int limit, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            $"SELECT {Columns} FROM job_epochs WHERE job_id = @id AND epoch > @after ORDER BY epoch LIMIT @limit");
        command.Parameters.AddWithValue("id", jobId);
        command.Parameters.AddWithValue("after", afterEpoch);
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
    /// </summary>
    public static List<EpochResponse> Downsample(IReadOnlyList<EpochResponse> epochs, int maxPoints, string metric)
    {
        if (epochs.Count <= maxPoints)
        {
            return epochs.ToList();
        }
        var keep = new SortedDictionary<int, EpochResponse> { [epochs[0].Epoch] = epochs[0], [epochs[^1].Epoch] = epochs[^1] };
        bool onlyHighs = maxPoints - 2 < 2;
        int buckets = Math.Max(1, (maxPoints - 2) / 2);
        int inner = epochs.Count - 2;
        for (int b = 0; b < buckets; b++)
        {
            int start = 1 + (int)((long)b * inner / buckets), end = 1 + (int)((long)(b + 1) * inner / buckets);
            if (start >= end)
            {
                continue;
            }
            // NaN (a diverging epoch) counts as a maximum: it is exactly what a chart must not hide.
            int low = start, high = start;
            double lowValue = double.NaN, highValue = double.NegativeInfinity;
            for (int i = start; i < end; i++)
            {
                double v = Value(epochs[i], metric) ?? double.NaN;
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
            if (!onlyHighs)
            {
                keep[epochs[low].Epoch] = epochs[low];
            }
            keep[epochs[high].Epoch] = epochs[high];
        }
        return keep.Values.ToList();
    }
}
