using Microsoft.Net.Http.Headers;

namespace TrainingService.Server.Infrastructure;

public static class ETags
{
    /// <summary>True when the request's If-None-Match lists <paramref name="etag"/> (or is *).</summary>
    public static bool Matches(HttpRequest request, string etag)
    {
        var header = request.Headers.IfNoneMatch;
        if (header.Count == 0)
        {
            return false;
        }
        if (EntityTagHeaderValue.TryParseList(header, out var tags))
        {
            return tags.Any(t => t.Equals(EntityTagHeaderValue.Any) || t.Compare(new EntityTagHeaderValue(etag), useStrongComparison: true));
        }
        return false;
    }

    /// <summary>304 Not Modified with the ETag and no body.</summary>
    public static IResult NotModified(HttpResponse response, string etag)
    {
        response.Headers.ETag = etag;
        string resource = response.HttpContext.Request.Path.Value?.EndsWith("/history", StringComparison.Ordinal) == true ? "history" : "other";
        Instruments.NotModified.Add(1, new KeyValuePair<string, object?>("resource", resource));
        return TypedResults.StatusCode(StatusCodes.Status304NotModified);
    }
}
