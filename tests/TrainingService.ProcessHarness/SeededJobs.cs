using System.Globalization;
using Npgsql;
using NpgsqlTypes;

namespace TrainingService.ProcessHarness;

/// <summary>One epoch as <see cref="SeededJobs"/> writes it; the columns the charts do not draw get plausible constants.</summary>
public sealed record SeededEpoch(int Epoch, double TrainLoss, double? ValLoss, double LearningRate, DateTimeOffset RecordedAt);

/// <summary>
/// Jobs written straight into the service's database, for the dashboard bench and browser tests that need a long or
/// peculiar history without training it (10,000 epochs, a single spike). Live epochs are appended the way the service's
/// JobStore.RecordEpochAsync stores one: the row, the job's summary and version bump, and a NOTIFY on the service's event
/// channel, in one transaction, so the API's job cache, ETags and event streams see them as they would a worker's.
/// </summary>
public sealed class SeededJobs(string connectionString)
{
    // What JobEventHub listens on and how it reads an event (camelCase JSON).
    private const string EventChannel = "training_events";

    /// <summary>A smooth, slowly falling loss curve with a little noise, deterministic for a given seed.</summary>
    public static List<SeededEpoch> Curve(int epochs, int seed, DateTimeOffset start, double learningRate = 0.01)
    {
        var random = new Random(seed);
        return Enumerable.Range(1, epochs).Select(e =>
        {
            double train = 0.2 + 2.0 / Math.Sqrt(e) + 0.02 * random.NextDouble();
            return new SeededEpoch(e, train, train * 1.1 + 0.02 * random.NextDouble(), learningRate, start.AddMilliseconds(50.0 * e));
        }).ToList();
    }

    /// <summary>Writes a job of <paramref name="tenant"/> with <paramref name="epochs"/> (bulk copied) and returns its id.</summary>
    public async Task<Guid> CreateAsync(string tenant, string status, int totalEpochs, IReadOnlyList<SeededEpoch> epochs,
        string? stopReason = null, int? modelEpoch = null)
    {
        var id = Guid.CreateVersion7();
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using (var insert = new NpgsqlCommand("""
            INSERT INTO jobs (id, created_at, status, spec, seed, total_epochs, started_at, finished_at, transitions, stop_reason,
                              epochs_completed, last_train_loss, last_val_loss, model_epoch, diagnoses, version, updated_at, tenant)
            VALUES (@id, now(), @status, @spec, 1, @total, now(), CASE WHEN @running THEN NULL ELSE now() END, '[]', @stop,
                    @done, @train, @val, @model, '[]', 1, now(), @tenant)
            """, connection))
        {
            var last = epochs.Count > 0 ? epochs[^1] : null;
            insert.Parameters.AddWithValue("id", id);
            insert.Parameters.AddWithValue("status", status);
            insert.Parameters.AddWithValue("spec", NpgsqlDbType.Jsonb, Spec(totalEpochs));
            insert.Parameters.AddWithValue("total", totalEpochs);
            insert.Parameters.AddWithValue("running", status == "running");
            insert.Parameters.AddWithValue("stop", (object?)stopReason ?? DBNull.Value);
            insert.Parameters.AddWithValue("done", epochs.Count);
            insert.Parameters.AddWithValue("train", NpgsqlDbType.Double, (object?)last?.TrainLoss ?? DBNull.Value);
            insert.Parameters.AddWithValue("val", NpgsqlDbType.Double, (object?)last?.ValLoss ?? DBNull.Value);
            insert.Parameters.AddWithValue("model", NpgsqlDbType.Integer, (object?)modelEpoch ?? DBNull.Value);
            insert.Parameters.AddWithValue("tenant", tenant);
            await insert.ExecuteNonQueryAsync();
        }
        await using var copy = await connection.BeginBinaryImportAsync("""
            COPY job_epochs (job_id, epoch, train_loss, val_loss, regularization_loss, metrics, learning_rate, gradient_norm,
                             duration_ms, samples_per_second, recorded_at) FROM STDIN (FORMAT BINARY)
            """);
        foreach (var epoch in epochs)
        {
            await copy.StartRowAsync();
            await copy.WriteAsync(id, NpgsqlDbType.Uuid);
            await copy.WriteAsync(epoch.Epoch, NpgsqlDbType.Integer);
            await copy.WriteAsync(epoch.TrainLoss, NpgsqlDbType.Double);
            if (epoch.ValLoss is double val)
            {
                await copy.WriteAsync(val, NpgsqlDbType.Double);
            }
            else
            {
                await copy.WriteNullAsync();
            }
            await copy.WriteAsync(0.0, NpgsqlDbType.Double);
            await copy.WriteAsync(Metrics(epoch), NpgsqlDbType.Jsonb);
            await copy.WriteAsync(epoch.LearningRate, NpgsqlDbType.Double);
            await copy.WriteAsync(1.0, NpgsqlDbType.Double);
            await copy.WriteAsync(50.0, NpgsqlDbType.Double);
            await copy.WriteAsync(10_000.0, NpgsqlDbType.Double);
            await copy.WriteAsync(epoch.RecordedAt, NpgsqlDbType.TimestampTz);
        }
        await copy.CompleteAsync();
        return id;
    }

    /// <summary>Stores one more epoch of a running job and notifies, as a worker's RecordEpochAsync does.</summary>
    public async Task AppendAsync(Guid id, SeededEpoch epoch)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var batch = new NpgsqlBatch(connection)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("""
                    INSERT INTO job_epochs (job_id, epoch, train_loss, val_loss, regularization_loss, metrics, learning_rate, gradient_norm,
                                            duration_ms, samples_per_second, recorded_at)
                    VALUES ($1, $2, $3, $4, 0, $5, $6, 1, 50, 10000, $7)
                    """),
                new NpgsqlBatchCommand("""
                    UPDATE jobs SET epochs_completed = $2, last_train_loss = $3, last_val_loss = $4, version = version + 1, updated_at = now()
                    WHERE id = $1
                    """),
                new NpgsqlBatchCommand($"SELECT pg_notify('{EventChannel}', $1)"),
            },
        };
        var insert = batch.BatchCommands[0].Parameters;
        insert.AddWithValue(id);
        insert.AddWithValue(epoch.Epoch);
        insert.AddWithValue(epoch.TrainLoss);
        insert.AddWithValue(NpgsqlDbType.Double, (object?)epoch.ValLoss ?? DBNull.Value);
        insert.AddWithValue(NpgsqlDbType.Jsonb, Metrics(epoch));
        insert.AddWithValue(epoch.LearningRate);
        insert.AddWithValue(epoch.RecordedAt);
        var update = batch.BatchCommands[1].Parameters;
        update.AddWithValue(id);
        update.AddWithValue(epoch.Epoch);
        update.AddWithValue(epoch.TrainLoss);
        update.AddWithValue(NpgsqlDbType.Double, (object?)epoch.ValLoss ?? DBNull.Value);
        batch.BatchCommands[2].Parameters.AddWithValue(
            $$"""{"jobId":"{{id}}","kind":"epoch","epoch":{{epoch.Epoch.ToString(CultureInfo.InvariantCulture)}}}""");
        // A batch runs in one implicit transaction: the NOTIFY is delivered on its commit, with the epoch visible.
        await batch.ExecuteNonQueryAsync();
    }

    private static string Metrics(SeededEpoch epoch) =>
        double.IsFinite(epoch.TrainLoss) && epoch.TrainLoss >= 0
            ? $$"""{"rmse":{{Math.Sqrt(epoch.TrainLoss).ToString("R", CultureInfo.InvariantCulture)}}}"""
            : "{}";

    private static string Spec(int epochs) =>
        $$"""{"target":"y","features":["x"],"model":{"type":"mlp","hiddenLayers":[16]},"loss":{"name":"mse"},"optimizer":{"name":"adam","learningRate":0.01},"epochs":{{epochs}}}""";
}
