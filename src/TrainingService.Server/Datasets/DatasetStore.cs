using System.Text.Json;
using Npgsql;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Datasets;

/// <summary>A dataset's stored description.</summary>
public sealed record DatasetInfo(Guid Id, string Name, DateTimeOffset CreatedAt, long SizeBytes, long RowCount, string Sha256,
    string Delimiter, IReadOnlyList<ColumnSchema> Columns);

/// <summary>One column read back for training or prediction: numbers (NaN missing) or category codes (−1 missing).</summary>
public sealed class LoadedColumn
{
    public required ColumnSchema Schema { get; init; }
    public double[]? Numbers { get; init; }
    public int[]? Codes { get; init; }
    /// <summary>Category of each code, sorted ordinally (the one-hot and label order).</summary>
    public IReadOnlyList<string>? Categories { get; init; }
}

/// <summary>
/// The datasets in PostgreSQL: what the API lists, shows and deletes, and what a worker on any machine reads back,
/// never the API's disk. Rows are written by <see cref="CsvImporter"/>.
/// </summary>
public sealed class DatasetStore(NpgsqlDataSource dataSource, IDatasetReferences references)
{
    /// <summary>The problem every dataset endpoint answers for an unknown id.</summary>
    public static ApiProblem NotFound(Guid id) => ApiProblem.NotFound("dataset.not_found", $"No dataset {id}.");

    /// <summary>Bytes of CSV the tenant's datasets hold (what <c>Quotas:…:MaxStoredBytes</c> limits).</summary>
    public async Task<long> StoredBytesAsync(string tenant, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT coalesce(sum(size_bytes), 0)::bigint FROM datasets WHERE tenant = @tenant");
        command.Parameters.AddWithValue("tenant", tenant);
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>
    /// The tenant's stored bytes, counted under a transaction lock on the tenant's storage: a concurrent upload's count
    /// waits until this transaction ends, and then sees its row.
    /// </summary>
    public static async Task<long> LockStoredBytesAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string tenant,
        CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            SELECT pg_advisory_xact_lock(hashtextextended('stored bytes of ' || @tenant, 0));
            SELECT coalesce(sum(size_bytes), 0)::bigint FROM datasets WHERE tenant = @tenant;
            """, connection, transaction);
        command.Parameters.AddWithValue("tenant", tenant);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.NextResultAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return reader.GetInt64(0);
    }

    /// <summary>The tenant's dataset with this id; another tenant's is null, exactly like one that does not exist.</summary>
    public async Task<DatasetInfo?> FindAsync(string tenant, Guid id, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            "SELECT id, name, created_at, size_bytes, row_count, sha256, delimiter, columns FROM datasets WHERE id = @id AND tenant = @tenant");
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("tenant", tenant);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Read(reader) : null;
    }

    /// <summary>A page of datasets, newest first, and how many there are in all.</summary>
    public async Task<(List<DatasetInfo> Items, long Total)> ListAsync(string tenant, int offset, int limit, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT id, name, created_at, size_bytes, row_count, sha256, delimiter, columns, count(*) OVER ()
            FROM datasets WHERE tenant = @tenant ORDER BY created_at DESC, id DESC OFFSET @offset LIMIT @limit
            """);
        command.Parameters.AddWithValue("tenant", tenant);
        command.Parameters.AddWithValue("offset", offset);
        command.Parameters.AddWithValue("limit", limit);
        var items = new List<DatasetInfo>();
        long total = 0;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                items.Add(Read(reader));
                total = reader.GetInt64(8);
            }
        }
        if (items.Count == 0 && offset > 0)
        {
            // A page past the end has no row to carry the window count.
            await using var count = dataSource.CreateCommand("SELECT count(*) FROM datasets WHERE tenant = @tenant");
            count.Parameters.AddWithValue("tenant", tenant);
            total = (long)(await count.ExecuteScalarAsync(cancellationToken))!;
        }
        return (items, total);
    }

    /// <summary>The first <paramref name="rows"/> rows as written, with the column names; null if there is no such dataset.</summary>
    public async Task<DatasetPreview?> FindPreviewAsync(string tenant, Guid id, int rows, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT columns, preview FROM datasets WHERE id = @id AND tenant = @tenant");
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("tenant", tenant);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }
        var columns = JsonSerializer.Deserialize<List<ColumnSchema>>(reader.GetString(0), ApiJson.Options)!;
        var preview = JsonSerializer.Deserialize<List<string?[]>>(reader.GetString(1), ApiJson.Options)!;
        return new DatasetPreview(id, columns.Select(c => c.Name).ToList(), preview.Take(rows).ToList());
    }

    /// <summary>
    /// Deletes a dataset unless a queued or running job needs its data (409 <c>dataset.in_use</c>); finished jobs keep
    /// their history and model and are detached. Null when deleted, else the problem.
    /// </summary>
    public async Task<ApiProblem?> DeleteAsync(string tenant, Guid id, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        // The lock keeps a job from being submitted on the dataset between the check and the delete.
        await using (var lockRow = new NpgsqlCommand("SELECT 1 FROM datasets WHERE id = @id AND tenant = @tenant FOR UPDATE", connection, transaction))
        {
            lockRow.Parameters.AddWithValue("id", id);
            lockRow.Parameters.AddWithValue("tenant", tenant);
            if (await lockRow.ExecuteScalarAsync(cancellationToken) is null)
            {
                return NotFound(id);
            }
        }
        if (await references.FindUnfinishedJobAsync(connection, transaction, id, cancellationToken) is Guid jobId)
        {
            return ApiProblem.Conflict("dataset.in_use", $"Job {jobId} is queued or running on this dataset; cancel it or wait for it to finish.");
        }
        var detached = await references.DetachAsync(connection, transaction, id, cancellationToken);
        await using (var delete = new NpgsqlCommand("DELETE FROM datasets WHERE id = @id", connection, transaction))
        {
            delete.Parameters.AddWithValue("id", id);
            await delete.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        detached();
        return null;
    }

    private static DatasetInfo Read(NpgsqlDataReader reader) => new(
        reader.GetGuid(0), reader.GetString(1), reader.GetFieldValue<DateTimeOffset>(2), reader.GetInt64(3), reader.GetInt64(4),
        reader.GetString(5), reader.GetString(6),
        JsonSerializer.Deserialize<List<ColumnSchema>>(reader.GetString(7), ApiJson.Options)!);

    /// <summary>Loads the given columns in full, chunk by chunk.</summary>
    public async Task<Dictionary<string, LoadedColumn>> LoadColumnsAsync(DatasetInfo dataset, IEnumerable<ColumnSchema> columns,
        CancellationToken cancellationToken)
    {
        var wanted = columns.DistinctBy(c => c.Index).ToDictionary(c => c.Index);
        int rows = checked((int)dataset.RowCount);
        var numbers = new Dictionary<int, double[]>();
        var codes = new Dictionary<int, (int[] Codes, Dictionary<string, int> Lookup, List<string> Categories)>();
        foreach (var column in wanted.Values)
        {
            if (column.Type == ColumnType.Categorical)
            {
                var categories = column.CategoriesInCodeOrder();
                codes[column.Index] = (new int[rows], categories.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i), categories);
            }
            else
            {
                numbers[column.Index] = new double[rows];
            }
        }
        await using var command = dataSource.CreateCommand("""
            SELECT column_index, row_count, encoding, data FROM dataset_chunks
            WHERE dataset_id = @id AND column_index = ANY(@columns) ORDER BY column_index, chunk_index
            """);
        command.Parameters.AddWithValue("id", dataset.Id);
        command.Parameters.AddWithValue("columns", wanted.Keys.ToArray());
        await using var reader = await command.ExecuteReaderAsync(System.Data.CommandBehavior.SequentialAccess, cancellationToken);
        var offsets = wanted.Keys.ToDictionary(k => k, _ => 0);
        while (await reader.ReadAsync(cancellationToken))
        {
            int index = reader.GetInt32(0), count = reader.GetInt32(1);
            short encoding = reader.GetInt16(2);
            var data = await reader.GetFieldValueAsync<byte[]>(3, cancellationToken);
            int offset = offsets[index];
            if (numbers.TryGetValue(index, out var values))
            {
                ChunkCodec.DecodeNumbers(encoding, data, count, values.AsSpan(offset, count));
            }
            else
            {
                var target = codes[index];
                CategoryDecoder.Decode(encoding, data, count, target.Lookup, target.Codes.AsSpan(offset, count));
            }
            offsets[index] = offset + count;
        }
        return wanted.Values.ToDictionary(c => c.Name, c => codes.TryGetValue(c.Index, out var coded)
            ? new LoadedColumn { Schema = c, Codes = coded.Codes, Categories = coded.Categories }
            : new LoadedColumn { Schema = c, Numbers = numbers[c.Index] });
    }
}
