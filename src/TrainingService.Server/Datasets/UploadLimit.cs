using TrainingService.Server.Configuration;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Datasets;

/// <summary>
/// What one tenant may upload: the largest file (the server's <c>Datasets:MaxUploadBytes</c>, or the tenant's smaller
/// <c>Quotas:…:MaxUploadBytes</c>, each with its own problem code) and the bytes its datasets may hold together.
/// </summary>
internal sealed record UploadLimit(long MaxBytes, bool ByQuota, long MaxStoredBytes)
{
    public const string StoredBytesCode = "quota.stored_bytes";

    public static UploadLimit For(DatasetOptions server, TenantLimits? tenant) =>
        tenant?.MaxUploadBytes is { } own && own < server.MaxUploadBytes
            ? new UploadLimit(own, true, tenant.MaxStoredBytes)
            : new UploadLimit(server.MaxUploadBytes, false, tenant?.MaxStoredBytes ?? long.MaxValue);

    /// <summary>The 413 for a file past <see cref="MaxBytes"/>.</summary>
    public ApiProblem TooLarge() => ByQuota
        ? ApiProblem.TooLarge("quota.upload_bytes", $"The upload is larger than this tenant's {MaxBytes:N0}-byte limit (Quotas:…:MaxUploadBytes); nothing was stored.")
        : ApiProblem.TooLarge("dataset.too_large", $"The upload is larger than the {MaxBytes:N0}-byte limit (Datasets:MaxUploadBytes); nothing was stored.");

    /// <summary>The 413 for an upload that does not fit in what the tenant's datasets may still hold.</summary>
    public ApiProblem StorageFull(long used, long adding) => new(StatusCodes.Status413PayloadTooLarge, StoredBytesCode,
        $"This tenant's datasets hold {used:N0} bytes of its {MaxStoredBytes:N0} (Quotas:…:MaxStoredBytes); " +
        (adding > 0 ? $"this {adding:N0}-byte upload does not fit. " : "") + "Delete datasets to make room; nothing was stored.",
        Extensions: new Dictionary<string, object?> { ["limit"] = MaxStoredBytes, ["used"] = used });
}
