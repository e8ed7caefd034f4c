using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using nietras.SeparatedValues;
using Npgsql;
using NpgsqlTypes;
using TrainingService.Server.Configuration;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Datasets;

/// <summary>
/// The outcome of an import: a new dataset, the one that already had these exact bytes, or the problem that refused
/// the file (then nothing is stored and <see cref="DatasetId"/> is empty).
/// </summary>
public sealed record ImportResult(Guid DatasetId, bool Created, ApiProblem? Problem = null)
{
    internal static ImportResult Refused(ApiProblem problem) => new(Guid.Empty, Created: false, problem);
}

/// <summary>
/// Streams a CSV into PostgreSQL in two steps (docs/decisions/004). While the body arrives, Sep tokenises it, each row
/// is checked (field count, RFC 4180 quoting), cells go to per-column accumulators, and full chunks are encoded and
/// spooled to a local file, so memory stays bounded by the chunk size whatever the file size. A body of declared size
/// that arrives briskly also has its chunks COPYed as they are made (<see cref="ChunkStreamer"/>), in a transaction
/// committed with the dataset's row at the end, or rolled back if these bytes turn out to be stored already. Any other
/// body, or one whose client stalls, takes a connection only once it is read and accepted: a file whose SHA-256 is
/// already stored answers with the existing dataset, anything else is COPYed from the spool and committed in one
/// transaction. A slow client therefore holds no connection while it dawdles, and nothing uncommitted is ever visible.
/// </summary>
public sealed class CsvImporter(NpgsqlDataSource dataSource, IOptions<DatasetOptions> options, ILogger<CsvImporter> logger,
    UploadSpool spool, IOptions<QuotaOptions>? quotas = null)
{
    private readonly UploadSpool _spool = spool;
    private readonly DeadChunkVacuum _vacuum = new(dataSource, logger);

    // Flush a chunk before this many cells (or buffered characters) accumulate across all columns.
    private const int CellBudget = 4_000_000;
    private const int CharBudget = 16_000_000;

    // Large reads: each read of the request body goes through Kestrel's pipe, so few big reads beat many small ones.
    private const int ReadBufferBytes = 1 << 20;
    private static readonly Encoding Utf8WithoutBom = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false);

    private static readonly ApiProblem EmptyFile = ApiProblem.BadRequest("dataset.empty", "The file is empty: a header row is required.");

    /// <summary>
    /// Imports the CSV in <paramref name="body"/> for <paramref name="tenant"/>; a refused file comes back as the result's
    /// problem, never thrown. A body whose <paramref name="declaredLength"/> is known to fit may be stored while it arrives
    /// (see <see cref="ChunkStreamer"/>).
    /// </summary>
    public async Task<ImportResult> ImportAsync(string tenant, Stream body, string name, char? delimiter, CancellationToken cancellationToken,
        long? declaredLength = null)
    {
        if (CheckName(name, options.Value.MaxNameLength) is { } invalidName)
        {
            return ImportResult.Refused(invalidName);
        }
        var clock = Stopwatch.StartNew();
        var limit = UploadLimit.For(options.Value, quotas?.Value.For(tenant));
        await using var upload = new UploadStream(body, limit);
        if (!_spool.TryCreate(out var spooled, out var unavailable))
        {
            return ImportResult.Refused(unavailable);
        }
        // Deleted in every outcome (DisposeAsync), accepted, refused or abandoned.
        await using var spool = spooled;
        var datasetId = Guid.CreateVersion7();
        // Rolled back, unless committed, in every outcome too.
        await using var streamer = StreamsWhileReading(declaredLength)
            ? new ChunkStreamer(dataSource, upload, datasetId, options.Value.StreamStallTimeout, options.Value.MinUploadBytesPerSecond, _vacuum, logger)
            : null;
        try
        {
            var (reader, problem) = await OpenReaderAsync(upload, delimiter, cancellationToken);
            if (reader is null)
            {
                return ImportResult.Refused(problem!);
            }
            using (reader)
            {
                (var dataset, problem) = await ParseAsync(reader, upload, tenant, datasetId, name, new ChunkSink(spooled, streamer), cancellationToken);
                if (dataset is null)
                {
                    return ImportResult.Refused(problem!);
                }
                double parseSeconds = clock.Elapsed.TotalSeconds;
                var streamed = streamer is null ? null : await streamer.FinishAsync();
                var result = streamed is null ? await StoreAsync(dataset, spooled, limit, cancellationToken)
                    : await CommitStreamedAsync(dataset, streamed, limit, cancellationToken);
                Instruments.UploadBytes.Add(dataset.SizeBytes);
                Instruments.UploadDuration.Record(clock.Elapsed.TotalSeconds);
                if (result.Created)
                {
                    logger.LogInformation("Imported dataset {DatasetId} ({Name}): {Rows} rows, {Columns} columns, {Bytes} bytes in {Seconds:F2} s " +
                        "({ParseSeconds:F2} s reading and parsing, {StoreSeconds:F2} s storing; {Mode})", dataset.Id, name, dataset.Rows,
                        dataset.Columns.Count, dataset.SizeBytes, clock.Elapsed.TotalSeconds, parseSeconds, clock.Elapsed.TotalSeconds - parseSeconds,
                        streamed is not null ? "streamed while reading" : streamer?.AbandonedBecause is { } why ? $"from the spool: {why}" : "from the spool");
                }
                return result;
            }
        }
        catch (UploadRefusedException e)
        {
            return ImportResult.Refused(e.Problem); // thrown by the upload streams from inside Sep's reads
        }
    }

    /// <summary>Whether a body is stored while it arrives: only one known to fit (a refused upload should write nothing).</summary>
    private bool StreamsWhileReading(long? declaredLength) =>
        declaredLength is long length && length <= options.Value.MaxUploadBytes && options.Value.StreamStallTimeout > TimeSpan.Zero;

    /// <summary>
    /// A dataset name PostgreSQL can store and people can read: at most <paramref name="maxLength"/> characters, no NUL
    /// (PostgreSQL refuses it in text) and no lone UTF-16 surrogate (it has no UTF-8 form). The problem, or null.
    /// </summary>
    public static ApiProblem? CheckName(string name, int maxLength)
    {
        if (name.Length > maxLength)
        {
            return ApiProblem.BadRequest("dataset.name_too_long",
                $"The dataset name has {name.Length:N0} characters; at most {maxLength:N0} are accepted (Datasets:MaxNameLength).", "name");
        }
        if (name.Contains('\0'))
        {
            return ApiProblem.BadRequest("dataset.invalid_name", "The dataset name contains a NUL character.", "name");
        }
        if (name.AsSpan().ContainsAnyInRange('\uD800', '\uDFFF') && !IsWellFormed(name))
        {
            return ApiProblem.BadRequest("dataset.invalid_name", "The dataset name contains a lone surrogate (not a Unicode character).", "name");
        }
        return null;
    }

    private static bool IsWellFormed(ReadOnlySpan<char> text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(text[i]))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>A parsed upload, ready for its row in <c>datasets</c>; its chunks are in the spool.</summary>
    private sealed record NewDataset(Guid Id, string Tenant, string Name, long SizeBytes, long Rows, string Sha256, string Delimiter, int ChunkRows,
        List<ColumnSchema> Columns, List<string?[]> Preview);

    /// <summary>What the row pass found: the row count and preview, or the problem that stopped it.</summary>
    private sealed record ParsedRows(long Rows, List<string?[]> Preview, ApiProblem? Problem = null);

    /// <summary>Reads the header, then every row, spooling the encoded chunks column by column.</summary>
    private async Task<(NewDataset? Dataset, ApiProblem? Problem)> ParseAsync(SepReader reader, UploadStream upload, string tenant,
        Guid datasetId, string name, ChunkSink sink, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        // The header is read as a row (HasHeader = false) so duplicate and empty names get our own, precise errors.
        var header = await NextRowAsync(reader, 0, cancellationToken);
        string[] names = [];
        var problem = header.HasRow ? ReadHeader(reader.Current, settings, out names) : header.Problem ?? EmptyFile;
        if (problem is not null)
        {
            return (null, problem);
        }
        int chunkRows = Math.Clamp(CellBudget / names.Length, 16, settings.ChunkRows);
        var columns = names.Select((n, i) => new ColumnAccumulator(n, i, chunkRows, settings.MaxCategories)).ToArray();
        var parsed = await ParseRowsAsync(reader, columns, chunkRows, sink, cancellationToken);
        if (parsed.Problem is not null)
        {
            return (null, parsed.Problem);
        }
        return (new NewDataset(datasetId, tenant, name, upload.Length64, parsed.Rows, upload.FinishHash(), reader.Spec.Sep.Separator.ToString(),
            chunkRows, columns.Select(c => c.Finish()).ToList(), parsed.Preview), null);
    }

    /// <summary>
    /// Reads every data row into the accumulators, checking field counts and quoting, and spools each full chunk.
    /// Returns the number of rows and the preview rows, or the first problem.
    /// </summary>
    private async Task<ParsedRows> ParseRowsAsync(SepReader reader, ColumnAccumulator[] columns, int chunkRows,
        ChunkSink sink, CancellationToken cancellationToken)
    {
        int previewRows = options.Value.PreviewRows;
        var preview = new List<string?[]>();
        var cell = new StringBuilder();
        long rows = 0, bufferedChars = 0;
        int chunks = 0, lastLine = 1;
        (bool HasRow, ApiProblem? Problem) next;
        while ((next = await NextRowAsync(reader, lastLine, cancellationToken)).HasRow)
        {
            var row = reader.Current;
            lastLine = row.LineNumberToExcl - 1;
            if (row.ColCount == 1 && row[0].Span.IsEmpty)
            {
                continue; // a blank line is not a record
            }
            string?[]? previewRow = preview.Count < previewRows ? new string?[columns.Length] : null;
            if (AddRow(row, columns, cell, previewRow) is { } problem)
            {
                return new ParsedRows(rows, preview, problem);
            }
            if (previewRow is not null)
            {
                preview.Add(previewRow);
            }
            rows++;
            bufferedChars += row.Span.Length;
            if (columns[0].Rows == chunkRows || bufferedChars > CharBudget)
            {
                if (await sink.TryWriteAsync(Encode(chunks++, columns), cancellationToken) is { } full)
                {
                    return new ParsedRows(rows, preview, full);
                }
                bufferedChars = 0;
            }
        }
        if (next.Problem is not null || rows == 0)
        {
            return new ParsedRows(rows, preview, next.Problem ?? ApiProblem.BadRequest("dataset.no_rows", "The file has a header but no data rows."));
        }
        if (columns[0].Rows > 0 && await sink.TryWriteAsync(Encode(chunks, columns), cancellationToken) is { } lastFull)
        {
            return new ParsedRows(rows, preview, lastFull);
        }
        return new ParsedRows(rows, preview);
    }

    /// <summary>Checks one record's field count and quoting and adds its cells (and preview text); the problem if it is refused.</summary>
    private static ApiProblem? AddRow(SepReader.Row row, ColumnAccumulator[] columns, StringBuilder cell, string?[]? previewRow)
    {
        if (row.ColCount != columns.Length)
        {
            return RaggedRow(row, columns.Length, cell);
        }
        bool quoted = row.Span.Contains('"'); // one vectorised scan per row instead of one per cell
        for (int c = 0; c < columns.Length; c++)
        {
            var raw = row[c].Span;
            if (quoted && raw.Contains('"'))
            {
                if (Unquote(raw, cell, row.LineNumberFrom, c, out string text) is { } problem)
                {
                    return problem;
                }
                columns[c].Add(text);
                previewRow?[c] = text;
            }
            else
            {
                columns[c].Add(raw);
                previewRow?[c] = raw.ToString();
            }
        }
        return null;
    }

    /// <summary>A record with the wrong number of fields. A stray or unclosed quote swallows separators: report the cause, not the symptom.</summary>
    private static ApiProblem RaggedRow(SepReader.Row row, int expected, StringBuilder buffer)
    {
        for (int c = 0; c < row.ColCount; c++)
        {
            if (row[c].Span.Contains('"') && Unquote(row[c].Span, buffer, row.LineNumberFrom, c, out _) is { } quote)
            {
                return quote;
            }
        }
        return ApiProblem.BadRequest("dataset.ragged_row", $"Line {row.LineNumberFrom} has {row.ColCount} fields; the header has {expected}.", null,
            new Dictionary<string, object?> { ["line"] = row.LineNumberFrom, ["expected"] = expected, ["actual"] = row.ColCount });
    }

    /// <summary>
    /// The existing dataset if these bytes are already stored (then nothing is written); else COPYs the spooled chunks
    /// and commits them with the dataset's row. The connection is taken here, once the body is complete. The tenant's
    /// stored bytes are counted under a transaction lock on the tenant, after the COPY and before the row goes in, so
    /// two uploads that each fit cannot both commit past the quota (and the lock is held for a moment, not for a COPY).
    /// </summary>
    private async Task<ImportResult> StoreAsync(NewDataset dataset, SpoolFile spooled, UploadLimit limit, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        if (await FindExisting(connection, dataset, cancellationToken) is Guid existing)
        {
            return new ImportResult(existing, Created: false);
        }
        // Leaving without a commit rolls the transaction back, COPY included.
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        try
        {
            await CopyChunksAsync(connection, dataset.Id, spooled, cancellationToken);
            if (await CheckStoredBytesAsync(connection, transaction, dataset, limit, cancellationToken) is { } full)
            {
                return ImportResult.Refused(full); // the transaction rolls back, COPY included
            }
            await InsertAsync(connection, transaction, dataset, cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            return new ImportResult(dataset.Id, Created: true);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            await transaction.RollbackAsync(CancellationToken.None);
            return await ConcurrentWinnerAsync(dataset, cancellationToken);
        }
    }

    /// <summary>
    /// Commits chunks that were streamed while the body arrived, with the dataset's row; if these bytes were stored
    /// meanwhile (known only now, from the hash), rolls them back instead and answers with the existing dataset.
    /// </summary>
    private async Task<ImportResult> CommitStreamedAsync(NewDataset dataset, StreamedCopy streamed, UploadLimit limit,
        CancellationToken cancellationToken)
    {
        await using var copy = streamed; // rolled back (and vacuumed) unless committed
        if (await FindExisting(copy.Connection, dataset, cancellationToken) is Guid existing)
        {
            return new ImportResult(existing, Created: false);
        }
        try
        {
            if (await CheckStoredBytesAsync(copy.Connection, copy.Transaction, dataset, limit, cancellationToken) is { } full)
            {
                return ImportResult.Refused(full);
            }
            await InsertAsync(copy.Connection, copy.Transaction, dataset, cancellationToken);
            await copy.Transaction.CommitAsync(cancellationToken);
            copy.Committed = true;
            return new ImportResult(dataset.Id, Created: true);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            return await ConcurrentWinnerAsync(dataset, cancellationToken);
        }
    }

    /// <summary>
    /// Null when the dataset fits its tenant's stored-bytes quota, counted under a transaction lock on the tenant (so two
    /// uploads that each fit cannot both commit past it); else the 413 problem.
    /// </summary>
    private static async Task<ApiProblem?> CheckStoredBytesAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, NewDataset dataset,
        UploadLimit limit, CancellationToken cancellationToken)
    {
        if (limit.MaxStoredBytes == long.MaxValue)
        {
            return null;
        }
        long used = await DatasetStore.LockStoredBytesAsync(connection, transaction, dataset.Tenant, cancellationToken);
        return used + dataset.SizeBytes > limit.MaxStoredBytes ? limit.StorageFull(used, dataset.SizeBytes) : null;
    }

    /// <summary>The same bytes were committed by a concurrent upload a moment ago: its dataset is the answer.</summary>
    private async Task<ImportResult> ConcurrentWinnerAsync(NewDataset dataset, CancellationToken cancellationToken)
    {
        await using var lookup = await dataSource.OpenConnectionAsync(cancellationToken);
        return await FindExisting(lookup, dataset, cancellationToken) is Guid winner
            ? new ImportResult(winner, Created: false)
            : ImportResult.Refused(ApiProblem.Conflict("dataset.conflict",
                "An identical upload was stored and deleted while this one was being read; send it again."));
    }

    private static async Task InsertAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, NewDataset dataset,
        CancellationToken cancellationToken)
    {
        await using var insert = new NpgsqlCommand("""
            INSERT INTO datasets (id, tenant, name, created_at, size_bytes, row_count, sha256, delimiter, chunk_rows, columns, preview)
            VALUES (@id, @tenant, @name, now(), @size, @rows, @sha, @delimiter, @chunkRows, @columns, @preview)
            """, connection, transaction);
        insert.Parameters.AddWithValue("id", dataset.Id);
        insert.Parameters.AddWithValue("tenant", dataset.Tenant);
        insert.Parameters.AddWithValue("name", dataset.Name);
        insert.Parameters.AddWithValue("size", dataset.SizeBytes);
        insert.Parameters.AddWithValue("rows", dataset.Rows);
        insert.Parameters.AddWithValue("sha", dataset.Sha256);
        insert.Parameters.AddWithValue("delimiter", dataset.Delimiter);
        insert.Parameters.AddWithValue("chunkRows", dataset.ChunkRows);
        insert.Parameters.AddWithValue("columns", NpgsqlDbType.Jsonb, JsonSerializer.Serialize(dataset.Columns, ApiJson.Options));
        insert.Parameters.AddWithValue("preview", NpgsqlDbType.Jsonb, JsonSerializer.Serialize(dataset.Preview, ApiJson.Options));
        await insert.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Sep's MoveNextAsync, with its one failure on bad input (a record past its 16 M-character limit) as a problem.</summary>
    private static async ValueTask<(bool HasRow, ApiProblem? Problem)> NextRowAsync(SepReader reader, int lastLine,
        CancellationToken cancellationToken)
    {
        try
        {
            return (await reader.MoveNextAsync(cancellationToken), null);
        }
        catch (NotSupportedException e)
        {
            return (false, ApiProblem.BadRequest("dataset.row_too_long",
                $"The record after line {lastLine} runs on for more than Sep's limit ({e.Message}); usually a quoted field is never closed.",
                null, new Dictionary<string, object?> { ["line"] = lastLine + 1 }));
        }
    }

    private static async Task<(SepReader? Reader, ApiProblem? Problem)> OpenReaderAsync(Stream upload, char? delimiter,
        CancellationToken cancellationToken)
    {
        try
        {
            return (await Sep.Reader(o => o with
            {
                Sep = delimiter is char d ? new Sep(d) : null,
                HasHeader = false,           // read as a row, see CopyAsync
                DisableColCountCheck = true, // checked per row, with the line number
                Unescape = false,            // quoting is validated and undone here
            }).FromAsync("upload", _ => new StreamReader(upload, Utf8WithoutBom, detectEncodingFromByteOrderMarks: true,
                ReadBufferBytes, leaveOpen: true), cancellationToken), null); // leaveOpen: the upload stream still has the hash to give
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException or NotSupportedException)
        {
            return (null, ApiProblem.BadRequest("dataset.unreadable", $"The file could not be read as CSV: {e.Message}"));
        }
    }

    /// <summary>The column names from the header row, or the problem that refuses them.</summary>
    private static ApiProblem? ReadHeader(SepReader.Row header, DatasetOptions settings, out string[] names)
    {
        names = [];
        var raw = new List<string>(header.ColCount);
        for (int i = 0; i < header.ColCount; i++)
        {
            raw.Add(header[i].Span.ToString());
        }
        if (raw.Count == 0 || (raw.Count == 1 && raw[0].Length == 0))
        {
            return EmptyFile;
        }
        if (raw.Count > settings.MaxColumns)
        {
            return ApiProblem.BadRequest("dataset.too_many_columns",
                $"The file has {raw.Count} columns; at most {settings.MaxColumns} are accepted (Datasets:MaxColumns).");
        }
        var read = new string[raw.Count];
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        var buffer = new StringBuilder();
        for (int i = 0; i < raw.Count; i++)
        {
            string name = raw[i];
            if (name.Contains('"') && Unquote(raw[i], buffer, 1, i, out name) is { } quote)
            {
                return quote;
            }
            if (string.IsNullOrWhiteSpace(name))
            {
                return ApiProblem.BadRequest("dataset.empty_column_name",
                    $"Column {i + 1} of the header has no name.", null, new Dictionary<string, object?> { ["line"] = 1, ["column"] = i + 1 });
            }
            if (name.Length > settings.MaxNameLength)
            {
                return ApiProblem.BadRequest("dataset.column_name_too_long",
                    $"The name of column {i + 1} has {name.Length:N0} characters; at most {settings.MaxNameLength:N0} are accepted (Datasets:MaxNameLength).",
                    null, new Dictionary<string, object?> { ["line"] = 1, ["column"] = i + 1 });
            }
            if (seen.TryGetValue(name, out int first))
            {
                return ApiProblem.BadRequest("dataset.duplicate_column",
                    $"Column name '{name}' appears twice (columns {first + 1} and {i + 1}).", name,
                    new Dictionary<string, object?> { ["line"] = 1, ["column"] = i + 1 });
            }
            seen[name] = i;
            read[i] = name;
        }
        names = read;
        return null;
    }

    /// <summary>RFC 4180: a field with quotes must be wholly quoted, with inner quotes doubled. The problem, or null and the text.</summary>
    private static ApiProblem? Unquote(ReadOnlySpan<char> raw, StringBuilder buffer, int line, int column, out string text)
    {
        text = "";
        if (raw.Length == 0 || raw[0] != '"')
        {
            return QuoteProblem("dataset.malformed_quote",
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
                text = buffer.ToString(); // the closing quote ends the field
                return null;
            }
            return QuoteProblem("dataset.malformed_quote",
                $"Line {line}, column {column + 1}: a quote inside a quoted field must be doubled (\"\").", line, column);
        }
        return QuoteProblem("dataset.unterminated_quote",
            $"The quoted field starting on line {line} (column {column + 1}) is never closed.", line, column);
    }

    private static ApiProblem QuoteProblem(string code, string detail, int line, int column) =>
        ApiProblem.BadRequest(code, detail, null, new Dictionary<string, object?> { ["line"] = line, ["column"] = column + 1 });

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

    /// <summary>Streams the spooled chunks into <c>dataset_chunks</c> with binary COPY (the dataset row follows in the same transaction).</summary>
    private static async Task CopyChunksAsync(NpgsqlConnection connection, Guid datasetId, SpoolFile spooled, CancellationToken cancellationToken)
    {
        await using var copy = await connection.BeginBinaryImportAsync(ChunkStreamer.CopyCommand, cancellationToken);
        await foreach (var chunk in spooled.ReadAllAsync(cancellationToken))
        {
            await ChunkStreamer.WriteRowAsync(copy, datasetId, chunk.Column, chunk.Chunk, chunk.Rows, chunk.Encoding, chunk.Data, cancellationToken);
        }
        await copy.CompleteAsync(cancellationToken);
    }

    /// <summary>The tenant's dataset already made of these bytes read with this delimiter, if any (another tenant's never counts).</summary>
    private static async Task<Guid?> FindExisting(NpgsqlConnection connection, NewDataset dataset, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "SELECT id FROM datasets WHERE tenant = @tenant AND sha256 = @sha AND delimiter = @delimiter", connection);
        command.Parameters.AddWithValue("tenant", dataset.Tenant);
        command.Parameters.AddWithValue("sha", dataset.Sha256);
        command.Parameters.AddWithValue("delimiter", dataset.Delimiter);
        return await command.ExecuteScalarAsync(cancellationToken) as Guid?;
    }
}

/// <summary>Where the parse puts each encoded chunk: always the spool, and the streaming COPY while there is one.</summary>
internal sealed class ChunkSink(SpoolFile spool, ChunkStreamer? streamer)
{
    /// <summary>Spools the chunk and offers it to the COPY; the problem if the spool cannot take it.</summary>
    public async ValueTask<ApiProblem?> TryWriteAsync(EncodedChunk[] chunk, CancellationToken cancellationToken)
    {
        if (await spool.TryWriteAsync(chunk, cancellationToken) is { } full)
        {
            return full;
        }
        if (streamer is not null)
        {
            await streamer.OfferAsync(chunk);
        }
        return null;
    }
}
