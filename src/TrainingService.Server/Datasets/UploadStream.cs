using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Unicode;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Datasets;

/// <summary>
/// Wraps an upload as it streams: counts bytes against the cap (413), hashes them (SHA-256), and checks they are
/// UTF-8 text, failing with the byte offset of the first invalid sequence or NUL byte. Sequences split across reads
/// are carried over, so validation is exact whatever the buffer sizes. Its reads are made by the CSV reader, so a
/// refusal is thrown as an <see cref="UploadRefusedException"/>, which the importer turns back into a returned problem.
/// </summary>
internal sealed class UploadStream(Stream inner, UploadLimit limit) : Stream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly byte[] _carry = new byte[4];
    private int _carryLength;
    private long _length;
    private long _waitedTicks;   // Stopwatch ticks spent in finished reads
    private long _pendingSince;  // Stopwatch timestamp of the read in progress, 0 when none

    /// <summary>Bytes read so far.</summary>
    public long Length64 => Volatile.Read(ref _length);

    /// <summary>
    /// For a watcher on another thread: bytes read so far, time spent waiting for them (reads that have returned), and
    /// how long the read in progress has waited (zero when the parser is not waiting on the client).
    /// </summary>
    public (long Bytes, TimeSpan Waited, TimeSpan Pending) Progress()
    {
        long since = Volatile.Read(ref _pendingSince);
        return (Volatile.Read(ref _length), Stopwatch.GetElapsedTime(0, Volatile.Read(ref _waitedTicks)),
            since == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(since));
    }

    /// <summary>The hex SHA-256 of everything read; call once the stream is consumed.</summary>
    public string FinishHash() => Convert.ToHexStringLower(_hash.GetHashAndReset());

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        long started = Stopwatch.GetTimestamp();
        Volatile.Write(ref _pendingSince, started);
        int read;
        try
        {
            read = await inner.ReadAsync(buffer, cancellationToken);
        }
        finally
        {
            Volatile.Write(ref _pendingSince, 0);
            Interlocked.Add(ref _waitedTicks, Stopwatch.GetTimestamp() - started);
        }
        if (read == 0)
        {
            if (_carryLength > 0)
            {
                throw Invalid(Length64 - _carryLength, "The file ends inside a UTF-8 character.");
            }
            return 0;
        }
        var bytes = buffer.Span[..read];
        Validate(bytes);
        _hash.AppendData(bytes);
        long length = Interlocked.Add(ref _length, read);
        if (length > limit.MaxBytes)
        {
            throw new UploadRefusedException(limit.TooLarge());
        }
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) =>
        throw new NotSupportedException("Uploads are read asynchronously.");

    private void Validate(ReadOnlySpan<byte> bytes)
    {
        int nul = bytes.IndexOf((byte)0);
        if (nul >= 0)
        {
            throw new UploadRefusedException(ApiProblem.BadRequest("dataset.not_text",
                $"The file is not text: it contains a NUL byte at offset {Length64 + nul}.", null,
                new Dictionary<string, object?> { ["offset"] = Length64 + nul }));
        }
        long start = Length64 - _carryLength;
        ReadOnlySpan<byte> span = bytes;
        if (_carryLength > 0)
        {
            // Complete the character split across the previous read.
            int need = Math.Min(4 - _carryLength, bytes.Length);
            Span<byte> joined = stackalloc byte[_carryLength + need];
            _carry.AsSpan(0, _carryLength).CopyTo(joined);
            bytes[..need].CopyTo(joined[_carryLength..]);
            var status = System.Text.Rune.DecodeFromUtf8(joined, out _, out int consumed);
            if (status == System.Buffers.OperationStatus.NeedMoreData && joined.Length < 4 && need == bytes.Length)
            {
                joined.CopyTo(_carry);
                _carryLength = joined.Length;
                return;
            }
            if (status != System.Buffers.OperationStatus.Done)
            {
                throw Invalid(start, "The file is not valid UTF-8.");
            }
            span = bytes[(consumed - _carryLength)..];
            start += consumed;
            _carryLength = 0;
        }
        int invalid = Utf8Prefix(span, out int incompleteTail);
        if (invalid >= 0)
        {
            throw Invalid(start + invalid, "The file is not valid UTF-8.");
        }
        span[^incompleteTail..].CopyTo(_carry);
        _carryLength = incompleteTail;
    }

    /// <summary>Index of the first invalid byte, or −1; an incomplete character at the very end is reported as a tail.</summary>
    private static int Utf8Prefix(ReadOnlySpan<byte> span, out int incompleteTail)
    {
        // A read often ends inside a multi-byte character: set aside a lead byte whose sequence runs past the end.
        int tailStart = span.Length;
        for (int i = span.Length - 1; i >= Math.Max(0, span.Length - 3); i--)
        {
            byte b = span[i];
            if ((b & 0xC0) == 0x80)
            {
                continue;
            }
            int length = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 1;
            if (i + length > span.Length)
            {
                tailStart = i;
            }
            break;
        }
        incompleteTail = span.Length - tailStart;
        if (Utf8.IsValid(span[..tailStart]))
        {
            return -1;
        }
        incompleteTail = 0;
        int index = 0;
        while (index < span.Length)
        {
            var status = System.Text.Rune.DecodeFromUtf8(span[index..], out _, out int consumed);
            if (status == System.Buffers.OperationStatus.Done)
            {
                index += consumed;
                continue;
            }
            if (status == System.Buffers.OperationStatus.NeedMoreData)
            {
                incompleteTail = span.Length - index;
                return -1;
            }
            return index;
        }
        return -1;
    }

    private static UploadRefusedException Invalid(long offset, string detail) =>
        new(ApiProblem.BadRequest("dataset.invalid_utf8", $"{detail} First invalid byte at offset {offset}.", null,
            new Dictionary<string, object?> { ["offset"] = offset }));

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
        }
        base.Dispose(disposing);
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => Length64; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
