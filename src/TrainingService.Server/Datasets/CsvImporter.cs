using System.Diagnostics;
using System.Text;
using System.Threading.Channels;
using System.Text.Json;
using Microsoft.Extensions.Options;
using nietras.SeparatedValues;
using Npgsql;
using NpgsqlTypes;
using TrainingService.Server.Configuration;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Datasets;

/// <summary>The outcome of an import: a new dataset, or the one that already had these exact bytes.</summary>
public sealed record ImportResult(Guid DatasetId, bool Created);

/// <summary>
/// Streams a CSV into PostgreSQL: Sep tokenises it, each row is checked (field count, RFC 4180 quoting), cells go to
/// per-column accumulators, and full chunks are written with binary COPY as they fill, so memory stays bounded by the
/// chunk size whatever the file size. Everything happens in one transaction: a file rejected at its last line leaves
/// nothing behind, and a file whose SHA-256 is already stored is rolled back in favour of the existing dataset.
/// </summary>
public sealed class CsvImporter(NpgsqlDataSource dataSource, IOptions<DatasetOptions> options, ILogger<CsvImporter> logger)
{
    // Flush a chunk before this many cells (or buffered characters) accumulate across all columns.
    private const int CellBudget = 4_000_000;
    private const int CharBudget = 16_000_000;

    // Large reads: each read of the request body goes through Kestrel's pipe, so few big reads beat many small ones.
    private const int ReadBufferBytes = 1 << 20;
    private static readonly Encoding Utf8WithoutBom = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false);

    public async Task<ImportResult> ImportAsync(Stream body, string name, char? delimiter, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var clock = Stopwatch.StartNew();
        await using var upload = new UploadStream(body, settings.MaxUploadBytes);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        using var reader = await OpenReaderAsync(upload, delimiter, cancellationToken);
        // The header is read as a row (HasHeader = false) so duplicate and empty names get our own, precise errors.
        if (!await NextRowAsync(reader, 0, cancellationToken))
        {
            throw new ApiProblemException(StatusCodes.Status400BadRequest, "dataset.empty", "The file is empty: a header row is required.");
        }
        var names = ReadHeader(reader.Current, settings);
        int chunkRows = Math.Clamp(CellBudget / names.Length, 16, settings.ChunkRows);
        var columns = names.Select((n, i) => new ColumnAccumulator(n, i, chunkRows, settings.MaxCategories)).ToArray();
        var datasetId = Guid.CreateVersion7();
        (long Rows, List<string?[]> Preview) parsed;

        await using (var copy = await connection.BeginBinaryImportAsync(
            "COPY dataset_chunks (dataset_id, column_index, chunk_index, row_count, encoding, data) FROM STDIN (FORMAT BINARY)",
            cancellationToken))
        {
            // Parsing and writing overlap: full chunks go through a short queue to a task that streams them to COPY,
            // so PostgreSQL ingests one chunk while the next is parsed. The queue bounds memory to a few chunks.
            var queue = Channel.CreateBounded<EncodedChunk[]>(new BoundedChannelOptions(2) { SingleReader = true, SingleWriter = true });
            var writer = WriteChunksAsync(copy, datasetId, queue, cancellationToken);
            try
            {
                parsed = await ParseRowsAsync(reader, columns, chunkRows, settings.PreviewRows, queue.Writer, cancellationToken);
            }
            catch (ChannelClosedException) when (writer.IsFaulted)
            {
                await writer; // rethrows the write failure, which closed the queue
                throw;
            }
            catch
            {
                queue.Writer.TryComplete();
                await writer.ContinueWith(_ => { }, TaskScheduler.Default); // the parse error is the one to report
                throw;
            }
            queue.Writer.TryComplete();
            await writer;
            await copy.CompleteAsync(cancellationToken);
        }

        string sha = upload.FinishHash();
        string separator = reader.Spec.Sep.Separator.ToString();
        if (await FindExisting(connection, sha, separator, cancellationToken) is Guid existing)
        {
            await transaction.RollbackAsync(cancellationToken);
            return new ImportResult(existing, Created: false);
        }
        var schema = columns.Select(c => c.Finish()).ToList();
        long rowCount = parsed.Rows;
        var preview = parsed.Preview;
        try
        {
            await using var insert = new NpgsqlCommand("""
                INSERT INTO datasets (id, name, created_at, size_bytes, row_count, sha256, delimiter, chunk_rows, columns, preview)
                VALUES (@id, @name, now(), @size, @rows, @sha, @delimiter, @chunkRows, @columns, @preview)
                """, connection, transaction);
            insert.Parameters.AddWithValue("id", datasetId);
            insert.Parameters.AddWithValue("name", name);
            insert.Parameters.AddWithValue("size", upload.Length64);
            insert.Parameters.AddWithValue("rows", rowCount);
            insert.Parameters.AddWithValue("sha", sha);
            insert.Parameters.AddWithValue("delimiter", separator);
            insert.Parameters.AddWithValue("chunkRows", chunkRows);
            insert.Parameters.AddWithValue("columns", NpgsqlDbType.Jsonb, JsonSerializer.Serialize(schema, ApiJson.Options));
            insert.Parameters.AddWithValue("preview", NpgsqlDbType.Jsonb, JsonSerializer.Serialize(preview, ApiJson.Options));
            await insert.ExecuteNonQueryAsync(cancellationToken);
            await transaction.CommitAsync(cancellationToken);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            // The same bytes were committed by a concurrent upload a moment ago.
            await transaction.RollbackAsync(CancellationToken.None);
            await using var lookup = await dataSource.OpenConnectionAsync(cancellationToken);
            return await FindExisting(lookup, sha, separator, cancellationToken) is Guid winner
                ? new ImportResult(winner, Created: false)
                : throw new ApiProblemException(StatusCodes.Status409Conflict, "dataset.conflict",
                    "An identical upload was stored and deleted while this one was being read; send it again.");
        }
        logger.LogInformation("Imported dataset {DatasetId} ({Name}): {Rows} rows, {Columns} columns, {Bytes} bytes in {Seconds:F2} s",
            datasetId, name, rowCount, columns.Length, upload.Length64, clock.Elapsed.TotalSeconds);
        return new ImportResult(datasetId, Created: true);
    }

    /// <summary>
    /// Reads every data row into the accumulators, checking field counts and quoting, and queues each full chunk.
    /// Returns the number of rows and the preview rows.
    /// </summary>
    private static async Task<(long Rows, List<string?[]> Preview)> ParseRowsAsync(SepReader reader, ColumnAccumulator[] columns,
        int chunkRows, int previewRows, ChannelWriter<EncodedChunk[]> queue, CancellationToken cancellationToken)
    {
        var preview = new List<string?[]>();
        var cell = new StringBuilder();
        long rows = 0, bufferedChars = 0;
        int chunks = 0;
        int lastLine = 1;
        while (await NextRowAsync(reader, lastLine, cancellationToken))
        {
            var row = reader.Current;
            lastLine = row.LineNumberToExcl - 1;
            if (row.ColCount == 1 && row[0].Span.IsEmpty)
            {
                continue; // a blank line is not a record
            }
            if (row.ColCount != columns.Length)
            {
                // A stray or unclosed quote swallows separators; report the cause, not the symptom.
                for (int c = 0; c < row.ColCount; c++)
                {
                    if (row[c].Span.Contains('"'))
                    {
                        Unquote(row[c].Span, cell, row.LineNumberFrom, c);
                    }
                }
                throw new ApiProblemException(StatusCodes.Status400BadRequest, "dataset.ragged_row",
                    $"Line {row.LineNumberFrom} has {row.ColCount} fields; the header has {columns.Length}.", null,
                    new Dictionary<string, object?> { ["line"] = row.LineNumberFrom, ["expected"] = columns.Length, ["actual"] = row.ColCount });
            }
            string?[]? previewRow = preview.Count < previewRows ? new string?[columns.Length] : null;
            bool quoted = row.Span.Contains('"'); // one vectorised scan per row instead of one per cell
            for (int c = 0; c < columns.Length; c++)
            {
                var raw = row[c].Span;
                if (quoted && raw.Contains('"'))
                {
                    var text = Unquote(raw, cell, row.LineNumberFrom, c);
                    columns[c].Add(text);
                    previewRow?[c] = text.ToString();
                }
                else
                {
                    columns[c].Add(raw);
                    previewRow?[c] = raw.ToString();
                }
            }
            if (previewRow is not null)
            {
                preview.Add(previewRow);
            }
            rows++;
            bufferedChars += row.Span.Length;
            if (columns[0].Rows == chunkRows || bufferedChars > CharBudget)
            {
                await queue.WriteAsync(Encode(chunks++, columns), cancellationToken);
                bufferedChars = 0;
            }
        }
        if (rows == 0)
        {
            throw new ApiProblemException(StatusCodes.Status400BadRequest, "dataset.no_rows", "The file has a header but no data rows.");
        }
        if (columns[0].Rows > 0)
        {
            await queue.WriteAsync(Encode(chunks, columns), cancellationToken);
        }
        return (rows, preview);
    }

    /// <summary>Sep's MoveNextAsync, with its one failure on bad input (a record past its 16 M-character limit) as a problem.</summary>
    private static async ValueTask<bool> NextRowAsync(SepReader reader, int lastLine, CancellationToken cancellationToken)
    {
        try
        {
            return await reader.MoveNextAsync(cancellationToken);
        }
        catch (NotSupportedException e)
        {
            throw new ApiProblemException(StatusCodes.Status400BadRequest, "dataset.row_too_long",
                $"The record after line {lastLine} runs on for more than Sep's limit ({e.Message}); usually a quoted field is never closed.",
                null, new Dictionary<string, object?> { ["line"] = lastLine + 1 });
        }
    }

    private static async Task<SepReader> OpenReaderAsync(Stream upload, char? delimiter, CancellationToken cancellationToken)
    {
        try
        {
            return await Sep.Reader(o => o with
            {
                Sep = delimiter is char d ? new Sep(d) : null,
                HasHeader = false,           // read as a row, see ImportAsync
                DisableColCountCheck = true, // checked per row, with the line number
                Unescape = false,            // quoting is validated and undone here
            }).FromAsync("upload", _ => new StreamReader(upload, Utf8WithoutBom, detectEncodingFromByteOrderMarks: true,
                ReadBufferBytes, leaveOpen: true), cancellationToken); // leaveOpen: the upload stream still has the hash to give
        }
        catch (ApiProblemException)
        {
            throw;
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException or NotSupportedException)
        {
            throw new ApiProblemException(StatusCodes.Status400BadRequest, "dataset.unreadable", $"The file could not be read as CSV: {e.Message}");
        }
    }

    private static string[] ReadHeader(SepReader.Row header, DatasetOptions settings)
    {
        var raw = new List<string>(header.ColCount);
        for (int i = 0; i < header.ColCount; i++)
        {
            raw.Add(header[i].Span.ToString());
        }
        if (raw.Count == 0 || (raw.Count == 1 && raw[0].Length == 0))
        {
            throw new ApiProblemException(StatusCodes.Status400BadRequest, "dataset.empty", "The file is empty: a header row is required.");
        }
        if (raw.Count > settings.MaxColumns)
        {
            throw new ApiProblemException(StatusCodes.Status400BadRequest, "dataset.too_many_columns",
                $"The file has {raw.Count} columns; at most {settings.MaxColumns} are accepted (Datasets:MaxColumns).");
        }
        var names = new string[raw.Count];
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        var buffer = new StringBuilder();
        for (int i = 0; i < raw.Count; i++)
        {
            string name = raw[i].Contains('"') ? Unquote(raw[i], buffer, 1, i).ToString() : raw[i];
            if (string.IsNullOrWhiteSpace(name))
            {
                throw new ApiProblemException(StatusCodes.Status400BadRequest, "dataset.empty_column_name",
                    $"Column {i + 1} of the header has no name.", null, new Dictionary<string, object?> { ["line"] = 1, ["column"] = i + 1 });
            }
            if (seen.TryGetValue(name, out int first))
            {
                throw new ApiProblemException(StatusCodes.Status400BadRequest, "dataset.duplicate_column",
                    $"Column name '{name}' appears twice (columns {first + 1} and {i + 1}).", name,
                    new Dictionary<string, object?> { ["line"] = 1, ["column"] = i + 1 });
            }
            seen[name] = i;
            names[i] = name;
        }
        return names;
    }

    /// <summary>RFC 4180: a field with quotes must be wholly quoted, with inner quotes doubled.</summary>
    private static ReadOnlySpan<char> Unquote(ReadOnlySpan<char> raw, StringBuilder buffer, int line, int column)
    {
        if (raw.Length == 0 || raw[0] != '"')
        {
            throw QuoteProblem("dataset.malformed_quote",
                $"Line {line}, column {column + 1}: a quote may only appear inside a field that is quoted as a whole.", line, column);
        }
        buffer.Clear();
        for (int i = 1; i < raw.Length; i++)
        {
            if (raw[i] != '"')
            {
                buffer.Append(raw[i]);
                continue;
            }
            if (i + 1 < raw.Length && raw[i + 1] == '"')
            {
                buffer.Append('"');
                i++;
                continue;
            }
            if (i == raw.Length - 1)
            {
                return buffer.ToString(); // the closing quote ends the field
            }
            throw QuoteProblem("dataset.malformed_quote",
                $"Line {line}, column {column + 1}: a quote inside a quoted field must be doubled (\"\").", line, column);
        }
        throw QuoteProblem("dataset.unterminated_quote",
            $"The quoted field starting on line {line} (column {column + 1}) is never closed.", line, column);
    }

    private static ApiProblemException QuoteProblem(string code, string detail, int line, int column) =>
        new(StatusCodes.Status400BadRequest, code, detail, null, new Dictionary<string, object?> { ["line"] = line, ["column"] = column + 1 });

    /// <summary>One column's values for one chunk, encoded and ready for COPY.</summary>
    private sealed record EncodedChunk(int Chunk, int Column, int Rows, short Encoding, byte[] Data);

    private static EncodedChunk[] Encode(int chunk, ColumnAccumulator[] columns)
    {
        var encoded = new EncodedChunk[columns.Length];
        for (int c = 0; c < columns.Length; c++)
        {
            int rows = columns[c].Rows;
            var (encoding, data) = columns[c].Flush();
            encoded[c] = new EncodedChunk(chunk, columns[c].Index, rows, encoding, data);
        }
        return encoded;
    }

    private static async Task WriteChunksAsync(NpgsqlBinaryImporter copy, Guid datasetId, Channel<EncodedChunk[]> queue,
        CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var chunk in queue.Reader.ReadAllAsync(cancellationToken))
            {
                foreach (var column in chunk)
                {
                    await copy.StartRowAsync(cancellationToken);
                    await copy.WriteAsync(datasetId, NpgsqlDbType.Uuid, cancellationToken);
                    await copy.WriteAsync(column.Column, NpgsqlDbType.Integer, cancellationToken);
                    await copy.WriteAsync(column.Chunk, NpgsqlDbType.Integer, cancellationToken);
                    await copy.WriteAsync(column.Rows, NpgsqlDbType.Integer, cancellationToken);
                    await copy.WriteAsync(column.Encoding, NpgsqlDbType.Smallint, cancellationToken);
                    await copy.WriteAsync(column.Data, NpgsqlDbType.Bytea, cancellationToken);
                }
            }
        }
        catch (Exception e)
        {
            queue.Writer.TryComplete(e); // stops the parser at its next chunk
            throw;
        }
    }

    /// <summary>The dataset already made of these bytes read with this delimiter, if any.</summary>
    private static async Task<Guid?> FindExisting(NpgsqlConnection connection, string sha, string delimiter, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT id FROM datasets WHERE sha256 = @sha AND delimiter = @delimiter", connection);
        command.Parameters.AddWithValue("sha", sha);
        command.Parameters.AddWithValue("delimiter", delimiter);
        return await command.ExecuteScalarAsync(cancellationToken) as Guid?;
    }
}
