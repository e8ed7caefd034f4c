using Microsoft.AspNetCore.Http.HttpResults;

namespace TrainingService.Server.Infrastructure;

/// <summary>
/// Every error the API returns: RFC 9457 <c>application/problem+json</c> with a stable machine-readable <c>code</c>
/// and, where one is at fault, the <c>field</c> (JSON path), <c>line</c>, <c>column</c> or byte <c>offset</c>.
/// </summary>
public static class Problems
{
    public static ProblemHttpResult BadRequest(string code, string detail, string? field = null,
        IReadOnlyDictionary<string, object?>? extensions = null) =>
        Create(StatusCodes.Status400BadRequest, "Bad request", code, detail, field, extensions);

    public static ProblemHttpResult NotFound(string code, string detail) =>
        Create(StatusCodes.Status404NotFound, "Not found", code, detail);

    public static ProblemHttpResult Conflict(string code, string detail, string? field = null) =>
        Create(StatusCodes.Status409Conflict, "Conflict", code, detail, field);

    public static ProblemHttpResult Unprocessable(string code, string detail, string? field = null,
        IReadOnlyDictionary<string, object?>? extensions = null) =>
        Create(StatusCodes.Status422UnprocessableEntity, "Unprocessable request", code, detail, field, extensions);

    public static ProblemHttpResult TooLarge(string code, string detail) =>
        Create(StatusCodes.Status413PayloadTooLarge, "Payload too large", code, detail);

    public static ProblemHttpResult UnsupportedMediaType(string code, string detail) =>
        Create(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", code, detail);

    public static ProblemHttpResult Create(int status, string title, string code, string detail, string? field = null,
        IReadOnlyDictionary<string, object?>? extensions = null)
    {
        var all = new Dictionary<string, object?> { ["code"] = code };
        if (field is not null)
        {
            all["field"] = field;
        }
        foreach (var (key, value) in extensions ?? new Dictionary<string, object?>())
        {
            all[key] = value;
        }
        return TypedResults.Problem(detail, statusCode: status, title: title, type: $"https://trainingservice.dev/problems/{code}",
            extensions: all);
    }
}

/// <summary>An expected failure deep in a handler (a bad upload, an invalid spec), turned into a problem response.</summary>
public sealed class ApiProblemException(int status, string code, string detail, string? field = null,
    IReadOnlyDictionary<string, object?>? extensions = null) : Exception(detail)
{
    public int Status { get; } = status;
    public string Code { get; } = code;
    public string? Field { get; } = field;
    public IReadOnlyDictionary<string, object?>? Extensions { get; } = extensions;

    public ProblemHttpResult ToResult() => Problems.Create(Status, Title(Status), Code, Message, Field, Extensions);

    private static string Title(int status) => status switch
    {
        400 => "Bad request",
        404 => "Not found",
        409 => "Conflict",
        413 => "Payload too large",
        415 => "Unsupported media type",
        422 => "Unprocessable request",
        _ => "Error",
    };
}
