using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;

namespace TrainingService.Server.Infrastructure;

/// <summary>
/// The one error policy for exceptions: expected problems keep their code; a malformed request body is a 400 with
/// the JSON path and line; anything else is logged and answered with a 500 problem that leaks nothing.
/// </summary>
internal sealed class ApiExceptionHandler(ILogger<ApiExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        var result = exception switch
        {
            ApiProblemException problem => problem.Problem.ToResult(),
            TrainingService.Compute.Losses.LossSpecException loss => Problems.BadRequest(loss.Code, loss.Message, loss.Field),
            BadHttpRequestException { InnerException: JsonException json } => Problems.BadRequest("request.invalid_json",
                $"The request body is not valid JSON for this endpoint: {json.Message}", json.Path,
                new Dictionary<string, object?> { ["line"] = json.LineNumber + 1, ["column"] = json.BytePositionInLine + 1 }),
            BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } => Problems.TooLarge("request.too_large",
                "The request body is larger than this endpoint accepts."),
            BadHttpRequestException bad => Problems.Create(bad.StatusCode, "request.invalid", bad.Message),
            OperationCanceledException when context.RequestAborted.IsCancellationRequested => null,
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
