using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace TrainingService.Server.Infrastructure;

/// <summary>An example request body shown (and pre-filled) in Swagger UI.</summary>
public sealed record RequestExample(string ContentType, string Body);

public static class OpenApiExamples
{
    /// <summary>Attaches a JSON example request body to the endpoint's OpenAPI operation.</summary>
    public static TBuilder WithJsonExample<TBuilder>(this TBuilder builder, object example) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new RequestExample("application/json", JsonSerializer.Serialize(example, ApiJson.Options)));

    /// <summary>Attaches a text example (e.g. CSV) request body.</summary>
    public static TBuilder WithTextExample<TBuilder>(this TBuilder builder, string contentType, string example) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new RequestExample(contentType, example));
}

/// <summary>Copies <see cref="RequestExample"/> metadata into the generated document.</summary>
internal sealed class RequestExampleFilter : IOperationFilter
{
    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        var examples = context.ApiDescription.ActionDescriptor.EndpointMetadata.OfType<RequestExample>().ToList();
        if (examples.Count == 0)
        {
            return;
        }
        var body = operation.RequestBody as OpenApiRequestBody ?? new OpenApiRequestBody();
        body.Content ??= new Dictionary<string, IOpenApiMediaType>();
        foreach (var example in examples)
        {
            var media = body.Content.TryGetValue(example.ContentType, out var existing) && existing is OpenApiMediaType typed
                ? typed
                : new OpenApiMediaType();
            media.Example = example.ContentType == "application/json" ? JsonNode.Parse(example.Body) : JsonValue.Create(example.Body);
            body.Content[example.ContentType] = media;
        }
        operation.RequestBody = body;
    }
}
