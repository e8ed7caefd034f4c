using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;

namespace TrainingService.Server.Infrastructure;

/// <summary>
/// Problems for exceptions. Expected problems are returned by handlers as values (docs/decisions/007), so what arrives
/// here is the framework's own refusals (a malformed JSON body: a 400 with the JSON path and line; a body too large:
/// 413) and the unexpected, which is logged and answered with a 500 problem that leaks nothing. A request the client
/// abandoned gets no answer.
/// </summary>
internal sealed class ApiExceptionHandler(ILogger<ApiExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        var result = exception switch
        {
            BadHttpRequestException { InnerException: JsonException json } => Problems.BadRequest("request.invalid_json",
                $"The request body is not valid JSON for this endpoint: {json.Message}", json.Path,
                new Dictionary<string, object?> { ["line"] = json.LineNumber + 1, ["column"] = json.BytePositionInLine + 1 }),
            BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } => Problems.TooLarge("request.too_large",
                "The request body is larger than this endpoint accepts."),
            BadHttpRequestException bad => Problems.Create(bad.StatusCode, "request.invalid", bad.Message),
            _ => null,
        };
        if (result is null)
        {
            if (context.RequestAborted.IsCancellationRequested)
            {
                return true;
            }
            logger.LogError(exception, "Unhandled error on {Method} {Path}", context.Request.Method, context.Request.Path);
            result = Problems.Create(StatusCodes.Status500InternalServerError, "internal_error",
                "The server failed to handle the request; the error is logged.");
        }
        if (context.Response.HasStarted)
        {
            return true;
        }
        await result.ExecuteAsync(context);
        return true;
    }
}
