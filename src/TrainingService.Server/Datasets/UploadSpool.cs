using System.Diagnostics.CodeAnalysis;
using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Options;
using TrainingService.Server.Configuration;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Datasets;

/// <summary>One column's values for one chunk, encoded and ready for COPY.</summary>
internal sealed record EncodedChunk(int Chunk, int Column, int Rows, short Encoding, byte[] Data);

/// <summary>
/// Local disk where an upload keeps its encoded chunks until its body is complete (docs/decisions/004): whatever the
/// client does, the upload can be stored from here once its body is in, so a slow client need hold no pooled
/// connection (a streaming COPY beside the spool gives its connection up when the client stalls). One file per upload, <c>upload-{pid}-{guid}.spool</c>, deleted when the upload ends; all of
/// this process's files together stay under <see cref="DatasetOptions.MaxSpoolBytes"/>. The directory exists only while
/// it holds files: it is created for an upload and removed, if empty, when this process's last upload ends.
/// </summary>
public sealed class UploadSpool(IOptions<DatasetOptions> options, ILogger<UploadSpool> logger) : IHostedService
{
    private readonly Lock _directoryLock = new();
    private int _open;
    private long _used;

    /// <summary>The directory this process spools into.</summary>
    public string Directory { get; } = string.IsNullOrWhiteSpace(options.Value.SpoolDirectory)
        ? Path.Combine(Path.GetTempPath(), "trainingservice-spool")
        : Path.GetFullPath(options.Value.SpoolDirectory);

    /// <summary>Spool bytes held by uploads in progress.</summary>
    public long BytesInUse => Interlocked.Read(ref _used);

    /// <summary>This process's spool files (an upload in progress has one).</summary>
    public string[] OwnFiles() => System.IO.Directory.Exists(Directory)
        ? System.IO.Directory.GetFiles(Directory, $"upload-{Environment.ProcessId}-*.spool")
        : [];

    /// <summary>A new spool file, or a 503 problem when the spool directory cannot take one (removed, full, not writable).</summary>
    internal bool TryCreate([NotNullWhen(true)] out SpoolFile? file, [NotNullWhen(false)] out ApiProblem? problem)
    {
        try
        {
            file = Create();
            problem = null;
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            file = null;
            problem = new ApiProblem(StatusCodes.Status503ServiceUnavailable, "dataset.spool_full",
                $"This server's spool directory cannot take an upload now ({e.GetType().Name}); try again shortly.");
            return false;
        }
    }

    private SpoolFile Create()
    {
        string path = Path.Combine(Directory, $"upload-{Environment.ProcessId}-{Guid.NewGuid():N}.spool");
        lock (_directoryLock)
        {
            for (int attempt = 1; ; attempt++)
            {
                try
                {
                    System.IO.Directory.CreateDirectory(Directory);
                    var file = new SpoolFile(this, path);
                    _open++;
                    return file;
                }
                catch (DirectoryNotFoundException) when (attempt < 3)
                {
                    // Another process sharing the directory removed it, empty, between the two calls.
                }
            }
        }
    }

    /// <summary>A spool file was deleted; the last one of this process removes the directory if nothing else is in it.</summary>
    internal void Closed()
    {
        lock (_directoryLock)
        {
            if (--_open == 0)
            {
                RemoveIfEmpty();
            }
        }
    }

    private void RemoveIfEmpty()
    {
        try
        {
            if (System.IO.Directory.Exists(Directory) && !System.IO.Directory.EnumerateFileSystemEntries(Directory).Any())
            {
                System.IO.Directory.Delete(Directory); // not recursive: fails if another process's file appeared meanwhile
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // In use by another process, or not ours to remove: it stays.
        }
    }

    internal bool TryReserve(long bytes)
    {
        if (Interlocked.Add(ref _used, bytes) <= options.Value.MaxSpoolBytes)
        {
            return true;
        }
        Interlocked.Add(ref _used, -bytes);
        return false;
    }

    internal void Release(long bytes) => Interlocked.Add(ref _used, -bytes);

    internal long Budget => options.Value.MaxSpoolBytes;

    /// <summary>
    /// At start, creates the directory (a directory that cannot be created stops the process here, not at the first
    /// upload) and removes files left by a process that died mid-upload: those of processes no longer running, and
    /// those with this process's id (left by an earlier process that had it, e.g. pid 1 in a restarted container); then
    /// the directory itself if that left it empty.
    /// </summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        System.IO.Directory.CreateDirectory(Directory); // an unusable spool directory stops the start, naming it
        foreach (string path in LeftFiles())
        {
            string[] parts = Path.GetFileNameWithoutExtension(path).Split('-');
            if (parts.Length == 3 && int.TryParse(parts[1], out int pid) && (pid == Environment.ProcessId || !IsRunning(pid)))
            {
                TryDelete(path);
            }
        }
        lock (_directoryLock)
        {
            if (_open == 0)
            {
                RemoveIfEmpty();
            }
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The spool files in the directory; none when another process sharing it has just removed it, empty.</summary>
    private string[] LeftFiles()
    {
        try
        {
            return System.IO.Directory.GetFiles(Directory, "upload-*.spool");
        }
        catch (DirectoryNotFoundException)
        {
            return [];
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }

    private void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
            logger.LogInformation("Removed stale upload spool file {Path}", path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning(e, "Could not remove stale upload spool file {Path}", path);
        }
    }
}

/// <summary>
/// One upload's spooled chunks: frames of (column, chunk, rows, encoding, length, bytes) appended while the body is
/// parsed, then read back once, in order, into COPY. Disposing deletes the file and returns its bytes to the budget.
/// </summary>
internal sealed class SpoolFile : IAsyncDisposable
{
    private const int HeaderBytes = 18;
    private readonly UploadSpool _owner;
    private readonly FileStream _file;
    private readonly byte[] _header = new byte[HeaderBytes];
    private long _reserved;
    private bool _closed;

    public SpoolFile(UploadSpool owner, string path)
    {
        _owner = owner;
        _file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16,
            FileOptions.DeleteOnClose | FileOptions.SequentialScan);
    }

    /// <summary>Appends one chunk of every column; the problem if the spool budget would be exceeded.</summary>
    public async ValueTask<ApiProblem?> TryWriteAsync(EncodedChunk[] columns, CancellationToken cancellationToken)
    {
        long bytes = columns.Sum(c => (long)HeaderBytes + c.Data.Length);
        if (!_owner.TryReserve(bytes))
        {
            return Full($"Uploads in progress fill this server's spool ({_owner.Budget:N0} bytes, Datasets:MaxSpoolBytes); try again shortly.");
        }
        _reserved += bytes;
        try
        {
            await WriteFramesAsync(columns, cancellationToken);
        }
        catch (IOException e)
        {
            return Full($"This server's spool disk could not take the upload ({e.Message}); try again shortly.");
        }
        return null;
    }

    private static ApiProblem Full(string detail) => new(StatusCodes.Status503ServiceUnavailable, "dataset.spool_full", detail);

    private async Task WriteFramesAsync(EncodedChunk[] columns, CancellationToken cancellationToken)
    {
        foreach (var column in columns)
        {
            BinaryPrimitives.WriteInt32LittleEndian(_header.AsSpan(0), column.Column);
            BinaryPrimitives.WriteInt32LittleEndian(_header.AsSpan(4), column.Chunk);
            BinaryPrimitives.WriteInt32LittleEndian(_header.AsSpan(8), column.Rows);
            BinaryPrimitives.WriteInt16LittleEndian(_header.AsSpan(12), column.Encoding);
            BinaryPrimitives.WriteInt32LittleEndian(_header.AsSpan(14), column.Data.Length);
            await _file.WriteAsync(_header, cancellationToken);
            await _file.WriteAsync(column.Data, cancellationToken);
        }
    }

    /// <summary>
    /// Reads every frame back from the start. The data of each lies in a pooled buffer that is reused for the next
    /// frame: consume it before asking for the next.
    /// </summary>
    public async IAsyncEnumerable<(int Column, int Chunk, int Rows, short Encoding, ArraySegment<byte> Data)> ReadAllAsync(
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await _file.FlushAsync(cancellationToken);
        long end = _file.Position;
        _file.Position = 0;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            while (_file.Position < end)
            {
                await _file.ReadExactlyAsync(_header, cancellationToken);
                int length = BinaryPrimitives.ReadInt32LittleEndian(_header.AsSpan(14));
                if (buffer.Length < length)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = ArrayPool<byte>.Shared.Rent(length);
                }
                await _file.ReadExactlyAsync(buffer.AsMemory(0, length), cancellationToken);
                yield return (BinaryPrimitives.ReadInt32LittleEndian(_header.AsSpan(0)), BinaryPrimitives.ReadInt32LittleEndian(_header.AsSpan(4)),
                    BinaryPrimitives.ReadInt32LittleEndian(_header.AsSpan(8)), BinaryPrimitives.ReadInt16LittleEndian(_header.AsSpan(12)),
                    new ArraySegment<byte>(buffer, 0, length));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_closed)
        {
            return;
        }
        _closed = true;
        await _file.DisposeAsync(); // DeleteOnClose removes the file
        _owner.Release(_reserved);
        _reserved = 0;
        _owner.Closed();
    }
}
