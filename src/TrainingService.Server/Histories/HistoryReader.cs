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
        return await ReadAllAsync(command, cancellationToken);
    }

    private static async Task<List<EpochResponse>> ReadAllAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
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

    public static readonly IReadOnlyList<string> BuiltInSeries =
        ["trainLoss", "valLoss", "regularizationLoss", "learningRate", "gradientNorm", "durationMs", "samplesPerSecond"];

    /// <summary>Every metric some kind of job reports (<see cref="Metrics.Names"/>).</summary>
    public static readonly IReadOnlyList<string> MetricSeries =
        Enum.GetValues<OutputKind>().SelectMany(kind => Metrics.Names(kind)).Distinct().ToList();

    /// <summary>
    /// The losses and one more series (<paramref name="series"/>: any of <see cref="BuiltInSeries"/> or
    /// <see cref="MetricSeries"/>, or null for none) of the epochs after <paramref name="afterEpoch"/> up to
    /// <paramref name="toEpoch"/>, at most <paramref name="limit"/>, in order: what downsampling and comparisons read. No
    /// epoch's metrics document is parsed, which is most of what reading whole epochs costs.
    /// </summary>
    public async Task<List<SeriesRow>> ReadSeriesAsync(Guid jobId, string? series, int afterEpoch, int toEpoch, int limit,
        CancellationToken cancellationToken)
    {
        // Metrics are JSON numbers, or the strings NaN/Infinity/-Infinity, which PostgreSQL casts to float8 as well.
        string value = series is null ? "NULL::double precision"
            : SeriesColumns.TryGetValue(series, out var column) ? column : "(metrics ->> @metric)::double precision";
        await using var command = dataSource.CreateCommand($"""
            SELECT epoch, train_loss, val_loss, {value} FROM job_epochs
            WHERE job_id = @id AND epoch > @after AND epoch <= @to ORDER BY epoch LIMIT @limit
            """);
        command.Parameters.AddWithValue("id", jobId);
        command.Parameters.AddWithValue("metric", series ?? "");
        command.Parameters.AddWithValue("after", afterEpoch);
        command.Parameters.AddWithValue("to", toEpoch);
        command.Parameters.AddWithValue("limit", limit);
        var rows = new List<SeriesRow>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(new SeriesRow(reader.GetInt32(0), reader.GetDouble(1), reader.IsDBNull(2) ? null : reader.GetDouble(2),
                reader.IsDBNull(3) ? null : reader.GetDouble(3), series));
        }
        return rows;
    }

    /// <summary>Whole epochs, by number, in order (the few a downsampled read keeps).</summary>
    public async Task<List<EpochResponse>> ReadEpochsAsync(Guid jobId, IReadOnlyList<int> epochNumbers, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            $"SELECT {Columns} FROM job_epochs WHERE job_id = @id AND epoch = ANY(@epochs) ORDER BY epoch");
        command.Parameters.AddWithValue("id", jobId);
        command.Parameters.AddWithValue("epochs", epochNumbers.ToArray());
        return await ReadAllAsync(command, cancellationToken);
    }

    private static readonly Dictionary<string, string> SeriesColumns = new()
    {
        ["trainLoss"] = "train_loss", ["valLoss"] = "val_loss", ["regularizationLoss"] = "regularization_loss",
        ["learningRate"] = "learning_rate", ["gradientNorm"] = "gradient_norm", ["durationMs"] = "duration_ms",
        ["samplesPerSecond"] = "samples_per_second",
    };

    /// <summary>
    /// Deterministic downsampling of a series to at most <paramref name="maxPoints"/> values: the first and the last, then
    /// the rest split into equal buckets, each contributing the index of its minimum and of its maximum (so spikes survive,
    /// unlike random sampling); with room for one inner point only, the maximum. NaN, ±Infinity and missing values (a
    /// diverging epoch) count as maxima: exactly what a chart must not hide. Null when every value fits.
    /// </summary>
    /// <returns>The indices kept, in order, and the index ranges of the buckets they stand for, the first and the last
    /// value being buckets of their own, so the buckets cover the whole series.</returns>
    public static Sampling? Sample(IReadOnlyList<double?> values, int maxPoints)
    {
        if (values.Count <= maxPoints)
        {
            return null;
        }
        var keep = new SortedSet<int> { 0, values.Count - 1 };
        var buckets = new List<IndexRange> { new(0, 1) };
        bool onlyHighs = maxPoints - 2 < 2;
        int count = Math.Max(1, (maxPoints - 2) / 2);
        int inner = values.Count - 2;
        for (int b = 0; b < count; b++)
        {
            int start = 1 + (int)((long)b * inner / count), end = 1 + (int)((long)(b + 1) * inner / count);
            if (start >= end)
            {
                continue;
            }
            var (low, high) = Extremes(values, start, end);
            if (!onlyHighs)
            {
                keep.Add(low);
            }
            keep.Add(high);
            buckets.Add(new IndexRange(start, end));
        }
        buckets.Add(new IndexRange(values.Count - 1, values.Count));
        return new Sampling(keep.ToList(), buckets);
    }

    private static (int Low, int High) Extremes(IReadOnlyList<double?> values, int start, int end)
    {
        int low = start, high = start;
        double lowValue = double.NaN, highValue = double.NegativeInfinity;
        for (int i = start; i < end; i++)
        {
            double v = values[i] ?? double.NaN;
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
        return (low, high);
    }

    /// <summary>The finite range of <paramref name="series"/> over one bucket of <paramref name="rows"/>, and its non-finite count.</summary>
    public static SeriesRange RangeOf(IReadOnlyList<SeriesRow> rows, IndexRange bucket, string series)
    {
        double? min = null, max = null;
        int nonFinite = 0;
        for (int i = bucket.Start; i < bucket.End; i++)
        {
            if (rows[i].Value(series) is not double v)
            {
                continue;
            }
            if (double.IsFinite(v))
            {
                min = Math.Min(min ?? v, v);
                max = Math.Max(max ?? v, v);
            }
            else
            {
                nonFinite++;
            }
        }
        return new SeriesRange(min, max, nonFinite);
    }
}

/// <summary>An epoch's losses and the value of the series <see cref="HistoryReader.ReadSeriesAsync"/> was asked for.</summary>
public sealed record SeriesRow(int Epoch, double TrainLoss, double? ValLoss, double? Extra, string? ExtraSeries)
{
    /// <summary>The value of <paramref name="series"/>: a loss, or the series read besides (null for any other).</summary>
    public double? Value(string series) => series switch
    {
        _ when series == ExtraSeries => Extra,
        "trainLoss" => TrainLoss,
        "valLoss" => ValLoss,
        _ => null,
    };
}

/// <summary>Items <see cref="Start"/> to <see cref="End"/> (exclusive) of a list.</summary>
public readonly record struct IndexRange(int Start, int End);

/// <summary>What <see cref="HistoryReader.Sample"/> keeps (indices, in order) and the buckets the kept values stand for.</summary>
public sealed record Sampling(List<int> Kept, List<IndexRange> Buckets);
