using System.Diagnostics;
using System.Threading.Channels;
using Npgsql;
using NpgsqlTypes;

namespace TrainingService.Server.Datasets;

/// <summary>
/// Streams an upload's encoded chunks into a COPY while its body still arrives, so storing overlaps parsing
/// (docs/decisions/004). The spool keeps every chunk regardless: this is only the fast path. It takes a connection when
/// the first chunk is ready and keeps it only while the client sends briskly; as soon as a read of the body has waited
/// <see cref="Configuration.DatasetOptions.StreamStallTimeout"/>, or the client delivers under
/// <see cref="Configuration.DatasetOptions.MinUploadBytesPerSecond"/> while it is waited on, the COPY is abandoned: the
/// transaction is rolled back, the connection goes back to the pool at once, the rows written so far are vacuumed away,
/// and the upload is stored from its spool once the body is complete. Nothing is visible before the commit.
/// </summary>
internal sealed class ChunkStreamer : IAsyncDisposable
{
    /// <summary>The COPY both ways of storing an upload use: streamed here, or from the spool after the body.</summary>
    internal const string CopyCommand =
        "COPY dataset_chunks (dataset_id, column_index, chunk_index, row_count, encoding, data) FROM STDIN (FORMAT BINARY)";

    private readonly NpgsqlDataSource _dataSource;
    private readonly UploadStream _upload;
    private readonly Guid _datasetId;
    private readonly TimeSpan _stall;
    private readonly double _minBytesPerSecond;
    private readonly DeadChunkVacuum _vacuum;
    private readonly ILogger _logger;
    private readonly Channel<EncodedChunk[]> _queue = Channel.CreateBounded<EncodedChunk[]>(
        new BoundedChannelOptions(2) { SingleReader = true, SingleWriter = true });
    private readonly CancellationTokenSource _abandon = new();
    private Task<StreamedCopy?>? _copy;
    private Task? _watch;
    private string? _abandonedBecause;
    private bool _handedOver;

    public ChunkStreamer(NpgsqlDataSource dataSource, UploadStream upload, Guid datasetId, TimeSpan stall, double minBytesPerSecond,
        DeadChunkVacuum vacuum, ILogger logger)
    {
        _dataSource = dataSource;
        _upload = upload;
        _datasetId = datasetId;
        _stall = stall;
        _minBytesPerSecond = minBytesPerSecond;
        _vacuum = vacuum;
        _logger = logger;
    }

    /// <summary>Why the COPY was abandoned, or null while it streams (or was never started).</summary>
    public string? AbandonedBecause => Volatile.Read(ref _abandonedBecause);

    /// <summary>
    /// Hands one chunk of every column to the COPY (starting it with the first); waits only while the COPY is behind,
    /// never on the client. Does nothing once the COPY has been abandoned.
    /// </summary>
    public async ValueTask OfferAsync(EncodedChunk[] chunk)
    {
        if (_abandon.IsCancellationRequested)
        {
            return;
        }
        if (_copy is null)
        {
            _copy = Task.Run(CopyAsync);
            _watch = Task.Run(WatchAsync);
        }
        try
        {
            await _queue.Writer.WriteAsync(chunk, _abandon.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            // Abandoned while waiting: the spool has the chunk.
        }
    }

    /// <summary>
    /// Once the body is complete and parsed: the COPY with every chunk written, its connection and open transaction now
    /// the caller's to commit (or roll back); null when it never started or was abandoned (then store from the spool).
    /// </summary>
    public async Task<StreamedCopy?> FinishAsync()
    {
        if (_copy is null || _abandon.IsCancellationRequested)
        {
            return null;
        }
        _queue.Writer.TryComplete();
        var copied = await _copy;
        _handedOver = copied is not null;
        return copied;
    }

    /// <summary>Gives up the COPY (the caller's spool has every chunk); safe to call more than once and from any thread.</summary>
    public void Abandon(string reason)
    {
        if (Interlocked.CompareExchange(ref _abandonedBecause, reason, null) is null)
        {
            _abandon.Cancel();
            _queue.Writer.TryComplete();
        }
    }

    private async Task<StreamedCopy?> CopyAsync()
    {
        NpgsqlConnection? connection = null;
        NpgsqlTransaction? transaction = null;
        NpgsqlBinaryImporter? importer = null;
        StreamedCopy? copied = null;
        long rows = 0;
        try
        {
            // A pool with no connection to spare must not hold up the parse: give up after the stall time.
            using (var opening = CancellationTokenSource.CreateLinkedTokenSource(_abandon.Token))
            {
                opening.CancelAfter(_stall);
                connection = await _dataSource.OpenConnectionAsync(opening.Token);
            }
            transaction = await connection.BeginTransactionAsync(CancellationToken.None);
            importer = await connection.BeginBinaryImportAsync(CopyCommand, CancellationToken.None);
            await foreach (var chunk in _queue.Reader.ReadAllAsync(_abandon.Token))
            {
                rows += chunk.Length;
                await WriteAsync(importer, _datasetId, chunk);
            }
            await importer.CompleteAsync(CancellationToken.None);
            await importer.DisposeAsync();
            copied = new StreamedCopy(connection, transaction, _vacuum);
            return copied;
        }
        catch (Exception e) when (e is OperationCanceledException or NpgsqlException or InvalidOperationException or IOException)
        {
            Abandon(e is OperationCanceledException ? "cancelled" : $"the COPY failed ({e.GetType().Name}: {e.Message})");
            return null;
        }
        finally
        {
            if (copied is null)
            {
                Abandon("the COPY failed");
                await RollBackAsync(connection, transaction, importer, rows);
            }
        }
    }

    /// <summary>Cancels the COPY, rolls back and returns the connection; the rows sent so far are dead, so vacuum them.</summary>
    private async Task RollBackAsync(NpgsqlConnection? connection, NpgsqlTransaction? transaction, NpgsqlBinaryImporter? importer, long rows)
    {
        try
        {
            if (importer is not null)
            {
                await importer.DisposeAsync(); // without Complete: the server discards the COPY
            }
            if (transaction is not null)
            {
                await transaction.RollbackAsync(CancellationToken.None);
            }
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or IOException)
        {
            _logger.LogWarning(e, "Rolling back the abandoned COPY of upload {DatasetId} failed; the connection is discarded", _datasetId);
        }
        finally
        {
            if (connection is not null)
            {
                await connection.DisposeAsync();
            }
        }
        _logger.LogInformation("Upload {DatasetId} stopped streaming into PostgreSQL after {Rows} chunk rows ({Reason}); it is stored from its " +
            "spool once the body is complete", _datasetId, rows, AbandonedBecause);
        if (rows > 0)
        {
            _vacuum.Request();
        }
    }

    private static async Task WriteAsync(NpgsqlBinaryImporter importer, Guid datasetId, EncodedChunk[] chunk)
    {
        foreach (var column in chunk)
        {
            await WriteRowAsync(importer, datasetId, column.Column, column.Chunk, column.Rows, column.Encoding, column.Data, CancellationToken.None);
        }
    }

    /// <summary>One row of <see cref="CopyCommand"/>: a column's encoded chunk.</summary>
    internal static async Task WriteRowAsync(NpgsqlBinaryImporter importer, Guid datasetId, int column, int chunk, int rows, short encoding,
        ArraySegment<byte> data, CancellationToken cancellationToken)
    {
        await importer.StartRowAsync(cancellationToken);
        await importer.WriteAsync(datasetId, NpgsqlDbType.Uuid, cancellationToken);
        await importer.WriteAsync(column, NpgsqlDbType.Integer, cancellationToken);
        await importer.WriteAsync(chunk, NpgsqlDbType.Integer, cancellationToken);
        await importer.WriteAsync(rows, NpgsqlDbType.Integer, cancellationToken);
        await importer.WriteAsync(encoding, NpgsqlDbType.Smallint, cancellationToken);
        await importer.WriteAsync(data, NpgsqlDbType.Bytea, cancellationToken);
    }

    /// <summary>
    /// Every quarter of the stall time: abandon if a read of the body has waited the whole stall time, or if over the
    /// last stall time the parse mostly waited on the client and got less than the minimum rate from it.
    /// </summary>
    private async Task WatchAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromTicks(Math.Max(_stall.Ticks / 4, TimeSpan.TicksPerMillisecond * 10)));
        var samples = new Queue<(long Bytes, TimeSpan Waited)>();
        try
        {
            while (await timer.WaitForNextTickAsync(_abandon.Token))
            {
                var (bytes, waited, pending) = _upload.Progress();
                samples.Enqueue((bytes, waited));
                if (pending >= _stall)
                {
                    Abandon($"no data from the client for {pending.TotalSeconds:F1} s");
                }
                else if (samples.Count > 4)
                {
                    var (oldBytes, oldWaited) = samples.Dequeue();
                    double rate = (bytes - oldBytes) / _stall.TotalSeconds;
                    if (waited - oldWaited > _stall / 2 && rate < _minBytesPerSecond)
                    {
                        Abandon($"the client sent {rate:F0} bytes/s");
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Abandoned, or the body is complete.
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_handedOver)
        {
            Abandon("the upload ended before it was stored");
        }
        else
        {
            await _abandon.CancelAsync(); // stops the watch
        }
        if (_copy is not null)
        {
            await _copy;
        }
        if (_watch is not null)
        {
            await _watch;
        }
        _abandon.Dispose();
    }
}

/// <summary>A completed streaming COPY inside its open transaction, for the importer to commit or roll back.</summary>
internal sealed record StreamedCopy(NpgsqlConnection Connection, NpgsqlTransaction Transaction, DeadChunkVacuum Vacuum) : IAsyncDisposable
{
    /// <summary>Rolls back (the COPYed rows become dead tuples, so a vacuum is requested) unless committed.</summary>
    public bool Committed { get; set; }

    public async ValueTask DisposeAsync()
    {
        if (!Committed)
        {
            try
            {
                await Transaction.RollbackAsync(CancellationToken.None);
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException or IOException)
            {
                // A broken connection rolls back by itself.
            }
            Vacuum.Request();
        }
        await Transaction.DisposeAsync();
        await Connection.DisposeAsync();
    }
}

/// <summary>
/// Reclaims the space of rows a rolled-back COPY left in <c>dataset_chunks</c> (a refused or abandoned upload must not
/// leave space behind until autovacuum gets round to it). Requests while one runs are folded into one more run.
/// </summary>
internal sealed class DeadChunkVacuum(NpgsqlDataSource dataSource, ILogger logger)
{
    private int _state; // 0 idle, 1 running, 2 running and requested again

    /// <summary>Vacuums <c>dataset_chunks</c> in the background, soon.</summary>
    public void Request()
    {
        if (Interlocked.Exchange(ref _state, 2) == 0)
        {
            _ = Task.Run(RunAsync);
        }
    }

    private async Task RunAsync()
    {
        do
        {
            Volatile.Write(ref _state, 1);
            var clock = Stopwatch.StartNew();
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync();
                await using var vacuum = new NpgsqlCommand("VACUUM dataset_chunks", connection) { CommandTimeout = 0 };
                await vacuum.ExecuteNonQueryAsync();
                logger.LogInformation("Vacuumed dataset_chunks after an abandoned COPY in {Seconds:F2} s", clock.Elapsed.TotalSeconds);
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException or IOException or TimeoutException)
            {
                logger.LogWarning(e, "Vacuuming dataset_chunks after an abandoned COPY failed; autovacuum will reclaim the space");
            }
        }
        while (Interlocked.CompareExchange(ref _state, 0, 1) != 1);
    }
}
