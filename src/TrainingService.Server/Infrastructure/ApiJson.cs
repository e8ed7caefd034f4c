using System.Text.Json;
using System.Text.Json.Serialization;

namespace TrainingService.Server.Infrastructure;

/// <summary>
/// The API's JSON conventions: camelCase, nulls omitted, and non-finite numbers written as the strings
/// "NaN", "Infinity", "-Infinity" so a diverging loss never makes an invalid document.
/// </summary>
public static class ApiJson
{
    /// <summary>
    /// Responses and the documents this service stores and reads back. Reads are lenient on purpose: a document written by
    /// an older version (a stored spec, a model) must still load after a field is dropped.
    /// </summary>
    public static JsonSerializerOptions Options { get; } = Configure(new JsonSerializerOptions(JsonSerializerDefaults.Web));

    /// <summary>Request bodies: <see cref="Options"/>' conventions, read strictly (see <see cref="ConfigureRequests"/>).</summary>
    public static JsonSerializerOptions Requests { get; } = ConfigureRequests(new JsonSerializerOptions(JsonSerializerDefaults.Web));

    public static JsonSerializerOptions Configure(JsonSerializerOptions options)
    {
        options.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
        options.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
        options.NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals | JsonNumberHandling.AllowReadingFromString;
        return options;
    }

    /// <summary>
    /// What a client sends is read strictly: a field no contract has is refused (a misspelt <c>learning_rate</c> must not
    /// train with the default), and every string, property names and strings inside free-form values (<c>target</c>,
    /// <c>loss</c>, predict rows) included, must be valid Unicode without NUL, which PostgreSQL cannot store in text or
    /// jsonb. Both failures are <see cref="JsonException"/>s that <see cref="ApiExceptionHandler"/> turns into 400 problems.
    /// Nesting stays at the default limit of 64 levels.
    /// </summary>
    public static JsonSerializerOptions ConfigureRequests(JsonSerializerOptions options)
    {
        Configure(options);
        options.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        options.Converters.Add(new CheckedStringConverter());
        options.Converters.Add(new CheckedElementConverter());
        return options;
    }
}

/// <summary>A string in a request that is not valid Unicode text or holds NUL; <see cref="Suffix"/> locates it inside the value being read.</summary>
internal sealed class InvalidTextException(string reason, string suffix = "") : JsonException(reason)
{
    public string Reason { get; } = reason;

    /// <summary>The path below the property the serializer names, e.g. <c>.terms[0].name</c> inside <c>loss</c>.</summary>
    public string Suffix { get; } = suffix;
}

/// <summary>Strings, and dictionary keys, read with <see cref="TextCheck"/>.</summary>
internal sealed class CheckedStringConverter : JsonConverter<string>
{
    public override bool HandleNull => false;

    public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        // Without a message the serializer writes its own, with the path; ApiExceptionHandler rewrites it for people.
        reader.TokenType == JsonTokenType.String ? TextCheck.Read(ref reader) : throw new JsonException();

    public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(value);

    public override string ReadAsPropertyName(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => TextCheck.Read(ref reader);

    public override void WriteAsPropertyName(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WritePropertyName(value);
}

/// <summary>Free-form JSON values (<c>target</c>, <c>loss</c>, predict cells): parsed as usual, then every string and name checked.</summary>
internal sealed class CheckedElementConverter : JsonConverter<JsonElement>
{
    public override JsonElement Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var element = JsonElement.ParseValue(ref reader);
        TextCheck.Walk(element);
        return element;
    }

    public override void Write(Utf8JsonWriter writer, JsonElement value, JsonSerializerOptions options) => value.WriteTo(writer);
}

internal static class TextCheck
{
    public const string NotUnicode = "is not valid Unicode text (invalid UTF-8, or a lone surrogate such as \\ud800)";
    public const string HasNul = "contains a NUL character (\\u0000)";

    public static string Read(ref Utf8JsonReader reader)
    {
        string text;
        try
        {
            text = reader.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw new InvalidTextException(NotUnicode);
        }
        return text.Contains('\0') ? throw new InvalidTextException(HasNul) : text;
    }

    /// <summary>Checks every string and property name under <paramref name="element"/>; a path is built only for a failure.</summary>
    public static void Walk(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                Check(element, name: null);
                break;
            case JsonValueKind.Array:
                int i = 0;
                foreach (var item in element.EnumerateArray())
                {
                    try
                    {
                        Walk(item);
                    }
                    catch (InvalidTextException e)
                    {
                        throw new InvalidTextException(e.Reason, $"[{i}]{e.Suffix}");
                    }
                    i++;
                }
                break;
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    string name = Check(element, property);
                    try
                    {
                        Walk(property.Value);
                    }
                    catch (InvalidTextException e)
                    {
                        throw new InvalidTextException(e.Reason, $".{name}{e.Suffix}");
                    }
                }
                break;
        }
    }

    /// <summary>A string value (<paramref name="name"/> null) or a property's name.</summary>
    private static string Check(JsonElement element, JsonProperty? name)
    {
        string text;
        try
        {
            text = name is { } property ? property.Name : element.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw new InvalidTextException(NotUnicode);
        }
        return text.Contains('\0') ? throw new InvalidTextException(HasNul) : text;
    }
}
