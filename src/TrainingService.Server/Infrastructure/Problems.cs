using Microsoft.AspNetCore.Http.HttpResults;

namespace TrainingService.Server.Infrastructure;

/// <summary>
/// An expected failure of a request (a bad field, a missing resource, a conflict) as a value: validators, planners and
/// importers return one, and the handler returns <see cref="ToResult"/>. See docs/decisions/007-problems-are-returned.md.
/// </summary>
public sealed record ApiProblem(int Status, string Code, string Detail, string? Field = null,
    IReadOnlyDictionary<string, object?>? Extensions = null)
{
    public static ApiProblem BadRequest(string code, string detail, string? field = null, IReadOnlyDictionary<string, object?>? extensions = null) =>
        new(StatusCodes.Status400BadRequest, code, detail, field, extensions);

    /// <summary>A 401: the caller also sets <c>WWW-Authenticate</c> on the response.</summary>
    public static ApiProblem Unauthorized(string code, string detail) => new(StatusCodes.Status401Unauthorized, code, detail);

    public static ApiProblem Forbidden(string code, string detail, string? field = null, IReadOnlyDictionary<string, object?>? extensions = null) =>
        new(StatusCodes.Status403Forbidden, code, detail, field, extensions);

    public static ApiProblem NotFound(string code, string detail) => new(StatusCodes.Status404NotFound, code, detail);

    public static ApiProblem Conflict(string code, string detail, string? field = null) =>
        new(StatusCodes.Status409Conflict, code, detail, field);

    public static ApiProblem Unprocessable(string code, string detail, string? field = null, IReadOnlyDictionary<string, object?>? extensions = null) =>
        new(StatusCodes.Status422UnprocessableEntity, code, detail, field, extensions);

    public static ApiProblem TooLarge(string code, string detail) => new(StatusCodes.Status413PayloadTooLarge, code, detail);

    public static ApiProblem UnsupportedMediaType(string code, string detail) => new(StatusCodes.Status415UnsupportedMediaType, code, detail);

    /// <summary>A 429: the caller also sets <c>Retry-After</c> on the response.</summary>
    public static ApiProblem TooManyRequests(string code, string detail) => new(StatusCodes.Status429TooManyRequests, code, detail);

    /// <summary>The RFC 9457 response: <c>application/problem+json</c> with <c>code</c> and, where known, <c>field</c>.</summary>
    public ProblemHttpResult ToResult()
    {
        var all = new Dictionary<string, object?> { ["code"] = Code };
        if (Field is not null)
        {
            all["field"] = Field;
        }
        foreach (var (key, value) in Extensions ?? new Dictionary<string, object?>())
        {
            all[key] = value;
        }
        return TypedResults.Problem(Detail, statusCode: Status, title: Title(Status), type: $"https://trainingservice.dev/problems/{Code}",
            extensions: all);
    }

    /// <summary>The one status → title table.</summary>
    public static string Title(int status) => status switch
    {
        400 => "Bad request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not found",
        408 => "Request timeout",
        409 => "Conflict",
        413 => "Payload too large",
        415 => "Unsupported media type",
        422 => "Unprocessable request",
        429 => "Too many requests",
        500 => "Internal error",
        503 => "Service unavailable",
        _ => "Error",
    };
}

/// <summary>
/// Every error the API returns: RFC 9457 <c>application/problem+json</c> with a stable machine-readable <c>code</c>
/// and, where one is at fault, the <c>field</c> (JSON path), <c>line</c>, <c>column</c> or byte <c>offset</c>.
/// Shorthands for handlers that return a problem straight away.
/// </summary>
public static class Problems
{
    public static ProblemHttpResult BadRequest(string code, string detail, string? field = null,
        IReadOnlyDictionary<string, object?>? extensions = null) => ApiProblem.BadRequest(code, detail, field, extensions).ToResult();

    public static ProblemHttpResult NotFound(string code, string detail) => ApiProblem.NotFound(code, detail).ToResult();

    public static ProblemHttpResult Conflict(string code, string detail, string? field = null) => ApiProblem.Conflict(code, detail, field).ToResult();

    public static ProblemHttpResult Unprocessable(string code, string detail, string? field = null,
        IReadOnlyDictionary<string, object?>? extensions = null) => ApiProblem.Unprocessable(code, detail, field, extensions).ToResult();

    public static ProblemHttpResult TooLarge(string code, string detail) => ApiProblem.TooLarge(code, detail).ToResult();

    public static ProblemHttpResult UnsupportedMediaType(string code, string detail) => ApiProblem.UnsupportedMediaType(code, detail).ToResult();

    public static ProblemHttpResult Create(int status, string code, string detail, string? field = null,
        IReadOnlyDictionary<string, object?>? extensions = null) => new ApiProblem(status, code, detail, field, extensions).ToResult();
}
