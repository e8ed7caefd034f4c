using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using Npgsql;
using TrainingService.Server.Configuration;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Datasets;

public static class DatasetEndpoints
{
    private static readonly string[] CsvTypes = ["text/csv", "application/csv", "text/plain", "text/tab-separated-values", "application/octet-stream"];

    public static IServiceCollection AddDatasets(this IServiceCollection services) =>
        services.AddSingleton<CsvImporter>().AddSingleton<DatasetStore>();

    public static IEndpointRouteBuilder MapDatasetEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/datasets").WithTags("Datasets");
        group.MapPost("/", Upload).WithName("UploadDataset")
            .WithSummary("Upload a CSV (raw body as text/csv, or multipart/form-data with field 'file')")
            .WithDescription("RFC 4180 CSV with a header row; ',', ';', tab or '|' detected from the header or given by ?delimiter=. " +
                "Streamed and stored column by column; uploading the same bytes again returns the existing dataset (200).")
            .WithTextExample("text/csv", "sepal length (cm),sepal width (cm),species\n5.1,3.5,setosa\n7.0,3.2,versicolor\n6.3,3.3,virginica\n")
            .DisableAntiforgery();
        group.MapGet("/", List).WithName("ListDatasets").WithSummary("List datasets, newest first");
        group.MapGet("/{id:guid}", Get).WithName("GetDataset").WithSummary("A dataset's schema and column statistics");
        group.MapGet("/{id:guid}/preview", Preview).WithName("PreviewDataset").WithSummary("The first rows as written");
        group.MapDelete("/{id:guid}", Delete).WithName("DeleteDataset").WithSummary("Delete a dataset not used by a queued or running job");
        return app;
    }

    // Streams the body (or the multipart 'file' section) into the importer; nothing is buffered whole.
    private static async Task<Results<Created<DatasetResponse>, Ok<DatasetResponse>, ProblemHttpResult>> Upload(
        HttpRequest request, CsvImporter importer, DatasetStore store, IOptions<DatasetOptions> options,
        string? name, string? delimiter, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        long limit = settings.MaxUploadBytes + 64 * 1024; // room for multipart framing
        if (request.ContentLength > limit)
        {
            return Problems.TooLarge("dataset.too_large", $"The upload is larger than the {settings.MaxUploadBytes:N0}-byte limit (Datasets:MaxUploadBytes).");
        }
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeFeature)
        {
            sizeFeature.MaxRequestBodySize = limit;
        }
        char? separator = delimiter switch
        {
            null or "" => null,
            "," or ";" or "|" => delimiter[0],
            "\t" or "tab" or "\\t" => '\t',
            _ => throw new ApiProblemException(400, "dataset.invalid_delimiter", "delimiter must be ',', ';', '|' or 'tab'.", "delimiter"),
        };

        ImportResult result;
        if (MediaTypeHeaderValue.TryParse(request.ContentType, out var mediaType) && mediaType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
        {
            var boundary = HeaderUtilities.RemoveQuotes(mediaType.Boundary).Value;
            if (string.IsNullOrEmpty(boundary))
            {
                return Problems.BadRequest("dataset.invalid_multipart", "The multipart body has no boundary.");
            }
            var reader = new MultipartReader(boundary, request.Body);
            try
            {
                MultipartSection? section;
                while ((section = await reader.ReadNextSectionAsync(cancellationToken)) is not null)
                {
                    if (ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition) && disposition.Name.Value == "file")
                    {
                        string fileName = disposition.FileName.Value ?? disposition.FileNameStar.Value ?? "";
                        result = await importer.ImportAsync(section.Body, name ?? DefaultName(Path.GetFileNameWithoutExtension(fileName)), separator, cancellationToken);
                        return await Respond(result, store, settings, cancellationToken);
                    }
                }
            }
            catch (Exception e) when (e is InvalidDataException
                || (e is IOException and not BadHttpRequestException && !cancellationToken.IsCancellationRequested))
            {
                // A cut-off body, a part with no closing boundary, or part headers over the reader's limits.
                return Problems.BadRequest("dataset.invalid_multipart", $"The multipart body is malformed: {e.Message}");
            }
            return Problems.BadRequest("dataset.missing_file", "The multipart body has no part named 'file'.", "file");
        }
        if (request.ContentType is not null && !CsvTypes.Contains(mediaType?.MediaType.Value?.ToLowerInvariant()))
        {
            return Problems.UnsupportedMediaType("dataset.unsupported_media_type",
                $"Send the CSV as text/csv (or multipart/form-data with a 'file' part), not {request.ContentType}.");
        }
        result = await importer.ImportAsync(request.Body, name ?? DefaultName(null), separator, cancellationToken);
        return await Respond(result, store, settings, cancellationToken);
    }

    private static async Task<Results<Created<DatasetResponse>, Ok<DatasetResponse>, ProblemHttpResult>> Respond(ImportResult result,
        DatasetStore store, DatasetOptions settings, CancellationToken cancellationToken)
    {
        if (await store.FindAsync(result.DatasetId, cancellationToken) is not { } found)
        {
            return Problems.Conflict("dataset.conflict", "The dataset was deleted while this upload was being answered; send it again.");
        }
        var dataset = DatasetResponse.From(found, settings.TopCategories);
        return result.Created ? TypedResults.Created($"/api/datasets/{dataset.Id}", dataset) : TypedResults.Ok(dataset);
    }

    private static string DefaultName(string? fileName) =>
        string.IsNullOrWhiteSpace(fileName) ? $"dataset-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}" : fileName;

    private static async Task<Results<Ok<DatasetResponse>, ProblemHttpResult>> Get(Guid id, DatasetStore store,
        IOptions<DatasetOptions> options, CancellationToken cancellationToken) =>
        await store.FindAsync(id, cancellationToken) is { } dataset
            ? TypedResults.Ok(DatasetResponse.From(dataset, options.Value.TopCategories))
            : NotFound(id);

    private static async Task<Results<Ok<DatasetPage>, ProblemHttpResult>> List(NpgsqlDataSource dataSource,
        IOptions<DatasetOptions> options, CancellationToken cancellationToken, int offset = 0, int limit = 20)
    {
        if (offset < 0 || limit is < 1 or > 100)
        {
            return Problems.BadRequest("dataset.invalid_page", "offset must be ≥ 0 and limit between 1 and 100.", offset < 0 ? "offset" : "limit");
        }
        await using var command = dataSource.CreateCommand("""
            SELECT id, name, created_at, size_bytes, row_count, sha256, delimiter, columns, count(*) OVER ()
            FROM datasets ORDER BY created_at DESC, id DESC OFFSET @offset LIMIT @limit
            """);
        command.Parameters.AddWithValue("offset", offset);
        command.Parameters.AddWithValue("limit", limit);
        var items = new List<DatasetResponse>();
        long total = 0;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            items.Add(DatasetResponse.From(DatasetStore.Read(reader), options.Value.TopCategories));
            total = reader.GetInt64(8);
        }
        if (items.Count == 0 && offset > 0)
        {
            await using var count = dataSource.CreateCommand("SELECT count(*) FROM datasets");
            total = (long)(await count.ExecuteScalarAsync(cancellationToken))!;
        }
        return TypedResults.Ok(new DatasetPage(items, offset, limit, total));
    }

    private static async Task<Results<Ok<DatasetPreview>, ProblemHttpResult>> Preview(Guid id, NpgsqlDataSource dataSource,
        IOptions<DatasetOptions> options, CancellationToken cancellationToken, int rows = 20)
    {
        if (rows < 1 || rows > options.Value.PreviewRows)
        {
            return Problems.BadRequest("dataset.invalid_preview_rows", $"rows must be between 1 and {options.Value.PreviewRows}.", "rows");
        }
        await using var command = dataSource.CreateCommand("SELECT columns, preview FROM datasets WHERE id = @id");
        command.Parameters.AddWithValue("id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return NotFound(id);
        }
        var columns = JsonSerializer.Deserialize<List<ColumnSchema>>(reader.GetString(0), ApiJson.Options)!;
        var preview = JsonSerializer.Deserialize<List<string?[]>>(reader.GetString(1), ApiJson.Options)!;
        return TypedResults.Ok(new DatasetPreview(id, columns.Select(c => c.Name).ToList(), preview.Take(rows).ToList()));
    }

    // Refused while a queued or running job needs the data; finished jobs keep their history and model.
    private static async Task<Results<NoContent, ProblemHttpResult>> Delete(Guid id, NpgsqlDataSource dataSource, IDatasetReferences references, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var lockRow = new NpgsqlCommand("SELECT 1 FROM datasets WHERE id = @id FOR UPDATE", connection, transaction))
        {
            lockRow.Parameters.AddWithValue("id", id);
            if (await lockRow.ExecuteScalarAsync(cancellationToken) is null)
            {
                return NotFound(id);
            }
        }
        if (await references.FindUnfinishedJobAsync(connection, transaction, id, cancellationToken) is Guid jobId)
        {
            return Problems.Conflict("dataset.in_use", $"Job {jobId} is queued or running on this dataset; cancel it or wait for it to finish.");
        }
        await references.DetachAsync(connection, transaction, id, cancellationToken);
        await using (var delete = new NpgsqlCommand("DELETE FROM datasets WHERE id = @id", connection, transaction))
        {
            delete.Parameters.AddWithValue("id", id);
            await delete.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        return TypedResults.NoContent();
    }

    private static ProblemHttpResult NotFound(Guid id) => Problems.NotFound("dataset.not_found", $"No dataset {id}.");
}
