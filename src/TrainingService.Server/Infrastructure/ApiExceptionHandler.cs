using System.Globalization;
using System.Reflection;
using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Options;
using Npgsql;

namespace TrainingService.Server.Infrastructure;

/// <summary>
/// Problems for exceptions. Expected problems are returned by handlers as values (docs/decisions/007), so what arrives
/// here is the framework's own refusals (a JSON body the serializer refused: a 400 naming the field, written for people;
/// a query value of the wrong type; a body too large: 413; a body Kestrel cannot read, such as a malformed chunk size:
/// 400), a database that cannot be reached (503 with Retry-After, its address kept for the log), and the unexpected,
/// which is logged and answered with a 500 problem that leaks nothing. A request the client abandoned gets no answer.
/// </summary>
internal sealed class ApiExceptionHandler(ILogger<ApiExceptionHandler> logger, IOptions<JsonOptions> json) : IExceptionHandler
{
    /// <summary>Seconds a client should wait before retrying while the database is unreachable.</summary>
    internal const int RetryAfterSeconds = 5;

    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        var problem = Refusal(context, exception);
        if (problem is null && DatabaseFaults.IsUnreachable(exception))
        {
            logger.LogWarning(exception, "Database unreachable on {Method} {Path}", context.Request.Method, context.Request.Path);
            context.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
            problem = new ApiProblem(StatusCodes.Status503ServiceUnavailable, "service.unavailable",
                $"The database cannot be reached; try again in {RetryAfterSeconds} seconds.");
        }
        if (problem is null)
        {
            if (context.RequestAborted.IsCancellationRequested)
            {
                return true;
            }
            logger.LogError(exception, "Unhandled error on {Method} {Path}", context.Request.Method, context.Request.Path);
            problem = new ApiProblem(StatusCodes.Status500InternalServerError, "internal_error", "The server failed to handle the request; the error is logged.");
        }
        if (context.Response.HasStarted)
        {
            return true;
        }
        await problem.ToResult().ExecuteAsync(context);
        return true;
    }

    private ApiProblem? Refusal(HttpContext context, Exception exception)
    {
        // The middleware clears the endpoint before calling handlers; its feature keeps the one that failed.
        var endpoint = context.Features.Get<IExceptionHandlerFeature>()?.Endpoint ?? context.GetEndpoint();
        var requestType = endpoint?.Metadata.GetMetadata<IAcceptsMetadata>()?.RequestType;
        if (Find<JsonException>(exception) is { } invalid && Find<BadHttpRequestException>(exception) is not null)
        {
            return JsonRefusals.Describe(invalid, requestType, json.Value.SerializerOptions);
        }
        if (Find<BadHttpRequestException>(exception) is { } bad)
        {
            return bad.StatusCode == StatusCodes.Status413PayloadTooLarge
                ? ApiProblem.TooLarge("request.too_large", "The request body is larger than this endpoint accepts.")
                : BindingProblem(context, endpoint, requestType) ?? new ApiProblem(bad.StatusCode, "request.invalid", "The request could not be read (HTTP framing or encoding).");
        }
        if (Find<IOException>(exception) is { InnerException: OverflowException })
        {
            // Kestrel's answer to a chunk size that overflows (e.g. FFFFFFFFFFFFFFFF).
            return ApiProblem.BadRequest("request.invalid_body", "The request body could not be read: its chunked encoding is malformed.");
        }
        // A safety net: text is checked where it is read (ApiJson), so PostgreSQL refusing a character means a path was missed.
        return Find<PostgresException>(exception) is { SqlState: "22021" or "22P05" }
            ? ApiProblem.BadRequest("request.invalid_text", "The request holds text PostgreSQL cannot store (a NUL character or invalid Unicode).")
            : null;
    }

    /// <summary>
    /// What the framework could not bind, in words and without .NET type names: the first query value that does not parse
    /// as its handler parameter, or a missing JSON body.
    /// </summary>
    private static ApiProblem? BindingProblem(HttpContext context, Endpoint? endpoint, Type? requestType)
    {
        var method = endpoint?.Metadata.GetMetadata<MethodInfo>();
        var parameters = (method?.GetParameters() ?? [])
            .SelectMany(p => p.GetCustomAttribute<AsParametersAttribute>() is null ? [(p.Name, p.ParameterType)]
                : p.ParameterType.GetProperties().Select(q => ((string?)q.Name, q.PropertyType)));
        foreach (var (name, type) in parameters)
        {
            var target = Nullable.GetUnderlyingType(type) ?? type;
            bool fromRoute = name is not null && endpoint is RouteEndpoint route && route.RoutePattern.GetParameter(name) is not null;
            if (name is null || fromRoute || target == typeof(string) || !context.Request.Query.TryGetValue(name, out var values))
            {
                continue;
            }
            string value = values.ToString();
            if (!Parses(value, target))
            {
                string field = JsonNamingPolicy.CamelCase.ConvertName(name);
                return ApiProblem.BadRequest("request.invalid", $"{field} must be {JsonRefusals.Expected(target)}; got '{value}'.", field);
            }
        }
        return requestType is not null && context.Request.ContentLength is 0 or null && !context.Request.Headers.TransferEncoding.Any()
            ? ApiProblem.BadRequest("request.invalid", "The request body is required: a JSON object.")
            : null;
    }

    private static bool Parses(string value, Type type) =>
        type == typeof(int) ? int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _)
        : type == typeof(long) ? long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _)
        : type == typeof(double) ? double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _)
        : type == typeof(bool) ? bool.TryParse(value, out _)
        : type == typeof(Guid) ? Guid.TryParse(value, out _)
        : type == typeof(DateTimeOffset) ? DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, out _)
        : type != typeof(DateTime) || DateTime.TryParse(value, CultureInfo.InvariantCulture, out _);

    private static T? Find<T>(Exception? exception) where T : Exception => DatabaseFaults.Find<T>(exception);
}
