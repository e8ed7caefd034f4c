using System.Globalization;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using MinDataRate = Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate;
using TrainingService.Server.Access;
using TrainingService.Server.Configuration;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Datasets;

public static class DatasetEndpoints
{
    private static readonly string[] CsvTypes = ["text/csv", "application/csv", "text/plain", "text/tab-separated-values", "application/octet-stream"];

    public static IServiceCollection AddDatasets(this IServiceCollection services) =>
        services.AddSingleton<UploadSpool>().AddHostedService(sp => sp.GetRequiredService<UploadSpool>()) // removes stale spool files at start
            .AddSingleton<UploadGate>().AddSingleton<CsvImporter>().AddSingleton<DatasetStore>();

    public static IEndpointRouteBuilder MapDatasetEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/datasets").WithTags("Datasets");
        group.MapPost("/", Upload).WithName("UploadDataset")
            .WithSummary("Upload a CSV (raw body as text/csv, or multipart/form-data with field 'file')")
            .WithDescription("RFC 4180 CSV with a header row; ',', ';', tab or '|' detected from the header or given by ?delimiter=. " +
                "Streamed and stored column by column; uploading the same bytes again returns the existing dataset (200).")
            .WithTextExample("text/csv", "sepal length (cm),sepal width (cm),species\n5.1,3.5,setosa\n7.0,3.2,versicolor\n6.3,3.3,virginica\n")
            .DisableAntiforgery().ChecksItsOwnMediaType().RequireRole(Role.Member);
        group.MapGet("/", List).WithName("ListDatasets").RequireRole(Role.Viewer).WithSummary("List datasets, newest first");
        group.MapGet("/{id:guid}", Get).WithName("GetDataset").RequireRole(Role.Viewer).WithSummary("A dataset's schema and column statistics");
        group.MapGet("/{id:guid}/preview", Preview).WithName("PreviewDataset").RequireRole(Role.Viewer).WithSummary("The first rows as written");
        group.MapDelete("/{id:guid}", Delete).WithName("DeleteDataset").RequireRole(Role.Member).WithSummary("Delete a dataset not used by a queued or running job");
        return app;
    }

    // Streams the body (or the multipart 'file' section) into the importer; nothing is buffered whole. Everything that
    // can refuse the upload without reading its body (size, delimiter, name, media type, the concurrency caps) comes first.
    /// <summary>What an upload works with.</summary>
    private sealed record UploadServices(CsvImporter Importer, DatasetStore Store, UploadGate Gate, IOptions<DatasetOptions> Options,
        IOptions<QuotaOptions> Quotas);

    private static async Task<Results<Created<DatasetResponse>, Ok<DatasetResponse>, ProblemHttpResult>> Upload(
        HttpRequest request, [AsParameters] UploadServices services, string? name, string? delimiter, CancellationToken cancellationToken)
    {
        var (importer, store, gate, options, quotas) = services;
        var settings = options.Value;
        var caller = request.HttpContext.Caller();
        var uploadLimit = UploadLimit.For(settings, quotas.Value.For(caller.Tenant));
        long limit = uploadLimit.MaxBytes + 64 * 1024; // room for multipart framing
        if (request.ContentLength > limit)
        {
            return uploadLimit.TooLarge().ToResult();
        }
        if (!TryParseDelimiter(delimiter, out char? separator))
        {
            return Problems.BadRequest("dataset.invalid_delimiter", "delimiter must be ',', ';', '|' or 'tab'.", "delimiter");
        }
        if (name is not null && CsvImporter.CheckName(name, settings.MaxNameLength) is { } invalidName)
        {
            return invalidName.ToResult();
        }
        bool multipart = MediaTypeHeaderValue.TryParse(request.ContentType, out var mediaType)
            && mediaType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase);
        if (!multipart && request.ContentType is not null && !CsvTypes.Contains(mediaType?.MediaType.Value?.ToLowerInvariant()))
        {
            return Problems.UnsupportedMediaType("dataset.unsupported_media_type",
                $"Send the CSV as text/csv (or multipart/form-data with a 'file' part), not {request.ContentType}.");
        }
        if (await CheckStorageAsync(request, multipart, uploadLimit, store, caller.Tenant, cancellationToken) is { } full)
        {
            return full.ToResult();
        }
        // Per key, not per address: clients behind one proxy are many callers, and one caller may come from many addresses.
        using var lease = gate.TryEnter(caller.KeyId ?? request.HttpContext.Connection.RemoteIpAddress?.ToString() ?? "local");
        if (lease is null)
        {
            return RetryLater(request.HttpContext, settings, ApiProblem.TooManyRequests("dataset.too_many_uploads",
                $"Too many uploads in progress (at most {settings.MaxConcurrentUploadsPerClient} per client and {settings.MaxConcurrentUploads} " +
                "in all: Datasets:MaxConcurrentUploadsPerClient, Datasets:MaxConcurrentUploads); try again after Retry-After."));
        }
        LimitBody(request.HttpContext, limit, settings);
        await using var body = new UploadBody(request.Body, settings.UploadTimeout, uploadLimit, cancellationToken);
        ImportResult result;
        try
        {
            result = multipart
                ? await ImportMultipartAsync(body, mediaType!, importer, caller.Tenant, name, separator, request.ContentLength, cancellationToken)
                : await importer.ImportAsync(caller.Tenant, body, name ?? DefaultName(null), separator, cancellationToken, request.ContentLength);
        }
        catch (UploadRefusedException e)
        {
            result = ImportResult.Refused(e.Problem); // a time limit hit while the multipart reader looked for the file part
        }
        if (result.Problem is { Status: StatusCodes.Status503ServiceUnavailable } unavailable)
        {
            return RetryLater(request.HttpContext, settings, unavailable);
        }
        return await Respond(result, caller.Tenant, store, settings, cancellationToken);
    }

    /// <summary>
    /// Refuses, before reading the body, an upload the tenant's datasets have no room for: the quota is already used up, or
    /// a plain CSV body's declared length does not fit. The importer checks again, atomically, when it stores the dataset.
    /// </summary>
    private static async Task<ApiProblem?> CheckStorageAsync(HttpRequest request, bool multipart, UploadLimit limit, DatasetStore store,
        string tenant, CancellationToken cancellationToken)
    {
        if (limit.MaxStoredBytes == long.MaxValue)
        {
            return null;
        }
        long used = await store.StoredBytesAsync(tenant, cancellationToken);
        long adding = multipart ? 0 : request.ContentLength ?? 0;
        return used >= limit.MaxStoredBytes || used + adding > limit.MaxStoredBytes ? limit.StorageFull(used, adding) : null;
    }

    /// <summary>The body's size cap and Kestrel's minimum data rate for this request (neither exists under a test server).</summary>
    private static void LimitBody(HttpContext context, long limit, DatasetOptions settings)
    {
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeFeature)
        {
            sizeFeature.MaxRequestBodySize = limit;
        }
        if (context.Features.Get<IHttpMinRequestBodyDataRateFeature>() is { } rateFeature)
        {
            rateFeature.MinDataRate = new MinDataRate(settings.MinUploadBytesPerSecond, settings.MinUploadRateGrace);
        }
    }

    private static ProblemHttpResult RetryLater(HttpContext context, DatasetOptions settings, ApiProblem problem)
    {
        context.Response.Headers.RetryAfter = Math.Ceiling(settings.UploadRetryAfter.TotalSeconds).ToString(CultureInfo.InvariantCulture);
        return problem.ToResult();
    }

    private static bool TryParseDelimiter(string? delimiter, out char? separator)
    {
        separator = delimiter switch
        {
            null or "" => null,
            "," or ";" or "|" => delimiter[0],
            "\t" or "tab" or "\\t" => '\t',
            _ => null,
        };
        return separator is not null || string.IsNullOrEmpty(delimiter);
    }

    /// <summary>RFC 2046's limit; MultipartReader throws on a boundary near its buffer's size.</summary>
    private const int MaxBoundaryLength = 70;

    /// <summary>Imports the multipart body's 'file' part; a body that is not well-formed multipart is refused like a bad file.</summary>
    private static async Task<ImportResult> ImportMultipartAsync(Stream body, MediaTypeHeaderValue mediaType,
        CsvImporter importer, string tenant, string? name, char? separator, long? declaredLength, CancellationToken cancellationToken)
    {
        var boundary = HeaderUtilities.RemoveQuotes(mediaType.Boundary).Value;
        if (string.IsNullOrEmpty(boundary))
        {
            return ImportResult.Refused(ApiProblem.BadRequest("dataset.invalid_multipart", "The multipart body has no boundary."));
        }
        if (boundary.Length > MaxBoundaryLength)
        {
            return ImportResult.Refused(ApiProblem.BadRequest("dataset.invalid_multipart",
                $"The multipart boundary is {boundary.Length} characters long; RFC 2046 allows at most {MaxBoundaryLength}."));
        }
        var reader = new MultipartReader(boundary, body);
        try
        {
            MultipartSection? section;
            while ((section = await reader.ReadNextSectionAsync(cancellationToken)) is not null)
            {
                if (ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition) && disposition.Name.Value == "file")
                {
                    string fileName = disposition.FileName.Value ?? disposition.FileNameStar.Value ?? "";
                    string datasetName = name ?? DefaultName(Path.GetFileNameWithoutExtension(fileName));
                    return await importer.ImportAsync(tenant, section.Body, datasetName, separator, cancellationToken, declaredLength);
                }
            }
        }
        catch (Exception e) when (e is InvalidDataException
            || (e is IOException and not BadHttpRequestException && !cancellationToken.IsCancellationRequested))
        {
            // A cut-off body, a part with no closing boundary, or part headers over the reader's limits.
            return ImportResult.Refused(ApiProblem.BadRequest("dataset.invalid_multipart", $"The multipart body is malformed: {e.Message}"));
        }
        return ImportResult.Refused(ApiProblem.BadRequest("dataset.missing_file", "The multipart body has no part named 'file'.", "file"));
    }

    private static async Task<Results<Created<DatasetResponse>, Ok<DatasetResponse>, ProblemHttpResult>> Respond(ImportResult result,
        string tenant, DatasetStore store, DatasetOptions settings, CancellationToken cancellationToken)
    {
        if (result.Problem is { } problem)
        {
            return problem.ToResult();
        }
        if (await store.FindAsync(tenant, result.DatasetId, cancellationToken) is not { } found)
        {
            return Problems.Conflict("dataset.conflict", "The dataset was deleted while this upload was being answered; send it again.");
        }
        var dataset = DatasetResponse.From(found, settings.TopCategories);
        return result.Created ? TypedResults.Created($"/api/datasets/{dataset.Id}", dataset) : TypedResults.Ok(dataset);
    }

    private static string DefaultName(string? fileName) =>
        string.IsNullOrWhiteSpace(fileName) ? $"dataset-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}" : fileName;

    private static async Task<Results<Ok<DatasetResponse>, ProblemHttpResult>> Get(Guid id, HttpContext http, DatasetStore store,
        IOptions<DatasetOptions> options, CancellationToken cancellationToken) =>
        await store.FindAsync(http.Caller().Tenant, id, cancellationToken) is { } dataset
            ? TypedResults.Ok(DatasetResponse.From(dataset, options.Value.TopCategories))
            : DatasetStore.NotFound(id).ToResult();

    private static async Task<Results<Ok<DatasetPage>, ProblemHttpResult>> List(HttpContext http, DatasetStore store,
        IOptions<DatasetOptions> options, CancellationToken cancellationToken, int offset = 0, int limit = 20)
    {
        if (offset < 0 || limit is < 1 or > 100)
        {
            return Problems.BadRequest("dataset.invalid_page", "offset must be ≥ 0 and limit between 1 and 100.", offset < 0 ? "offset" : "limit");
        }
        var (items, total) = await store.ListAsync(http.Caller().Tenant, offset, limit, cancellationToken);
        var page = items.Select(d => DatasetResponse.From(d, options.Value.TopCategories)).ToList();
        return TypedResults.Ok(new DatasetPage(page, offset, limit, total));
    }

    private static async Task<Results<Ok<DatasetPreview>, ProblemHttpResult>> Preview(Guid id, HttpContext http, DatasetStore store,
        IOptions<DatasetOptions> options, CancellationToken cancellationToken, int rows = 20)
    {
        if (rows < 1 || rows > options.Value.PreviewRows)
        {
            return Problems.BadRequest("dataset.invalid_preview_rows", $"rows must be between 1 and {options.Value.PreviewRows}.", "rows");
        }
        return await store.FindPreviewAsync(http.Caller().Tenant, id, rows, cancellationToken) is { } preview
            ? TypedResults.Ok(preview)
            : DatasetStore.NotFound(id).ToResult();
    }

    // Refused while a queued or running job needs the data; finished jobs keep their history and model.
    private static async Task<Results<NoContent, ProblemHttpResult>> Delete(Guid id, HttpContext http, DatasetStore store,
        CancellationToken cancellationToken) =>
        await store.DeleteAsync(http.Caller().Tenant, id, cancellationToken) is { } problem ? problem.ToResult() : TypedResults.NoContent();
}
