using System.Text.Json;
using System.Text.Json.Serialization;

namespace TrainingService.Server.Infrastructure;

/// <summary>
/// The API's JSON conventions: camelCase, nulls omitted, and non-finite numbers written as the strings
/// "NaN", "Infinity", "-Infinity" so a diverging loss never makes an invalid document.
/// </summary>
public static class ApiJson
{
    public static JsonSerializerOptions Options { get; } = Configure(new JsonSerializerOptions(JsonSerializerDefaults.Web));

    public static JsonSerializerOptions Configure(JsonSerializerOptions options)
    {
        options.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
        options.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
        options.NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals | JsonNumberHandling.AllowReadingFromString;
        return options;
    }
}
