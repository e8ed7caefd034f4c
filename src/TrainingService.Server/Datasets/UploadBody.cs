using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Datasets;

/// <summary>
/// The request body of an upload with its time limits: every read is cancelled once <c>Datasets:UploadTimeout</c> has
/// passed since the upload began, and Kestrel's minimum-data-rate refusal (set per request from
/// <c>Datasets:MinUploadBytesPerSecond</c>) becomes our own problem, as does its body-size refusal (413). Thrown as
/// <see cref="UploadRefusedException"/> from inside the readers (Sep, the multipart reader) that call this stream.
/// </summary>
internal sealed class UploadBody : Stream
{
    private readonly Stream _inner;
    private readonly TimeSpan _timeout;
    private readonly UploadLimit _limit;
    private readonly CancellationTokenSource _deadline;

    public UploadBody(Stream inner, TimeSpan timeout, UploadLimit limit, CancellationToken requestAborted)
    {
        _inner = inner;
        _limit = limit;
        _timeout = timeout;
        _deadline = CancellationTokenSource.CreateLinkedTokenSource(requestAborted);
        _deadline.CancelAfter(timeout);
    }

    // The caller's token is the request's (the handler passes RequestAborted on), which the deadline already follows.
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            return await _inner.ReadAsync(buffer, _deadline.Token);
        }
        catch (OperationCanceledException) when (_deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new UploadRefusedException(new ApiProblem(StatusCodes.Status408RequestTimeout, "dataset.upload_timeout",
                $"The upload body was not complete within {_timeout} (Datasets:UploadTimeout); nothing was stored."));
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status408RequestTimeout)
        {
            throw new UploadRefusedException(new ApiProblem(StatusCodes.Status408RequestTimeout, "dataset.upload_too_slow",
                "The upload body arrived more slowly than this server accepts (Datasets:MinUploadBytesPerSecond); nothing was stored."));
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            // Kestrel counts bytes as they arrive, so a fast chunked body can pass its cap before the file stream counts them.
            throw new UploadRefusedException(_limit.TooLarge());
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) =>
        throw new NotSupportedException("Uploads are read asynchronously.");

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _deadline.Dispose();
        }
        base.Dispose(disposing);
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
