using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace TrainingService.Server.Infrastructure;

/// <summary>
/// A request body the JSON serializer refused, as a 400 problem written for people: the field as the API spells it
/// (<c>optimizer.learningRate</c>, not <c>$.optimizer.learningRate</c>), what it must be ("a whole number", never
/// <c>System.Nullable`1[System.Int32]</c>), and for an unknown field the closest known name. The field's type is found
/// by walking the endpoint's request type along the exception's JSON path, never by reading the exception's message.
/// </summary>
internal static class JsonRefusals
{
    public static ApiProblem Describe(JsonException json, Type? requestType, JsonSerializerOptions options)
    {
        var position = new Dictionary<string, object?> { ["line"] = json.LineNumber + 1, ["column"] = json.BytePositionInLine + 1 };
        var segments = Segments(json.Path);
        string? field = Field(segments);
        if (json is InvalidTextException text)
        {
            string at = (field ?? "") + text.Suffix;
            at = at.StartsWith('.') ? at[1..] : at;
            return ApiProblem.BadRequest("request.invalid_text", $"{(at.Length > 0 ? at : "A string")} {text.Reason}.", at.Length > 0 ? at : null, position);
        }
        if (json.InnerException is JsonException reader)
        {
            // The reader's own words: syntax, nesting depth. They name characters and positions, never types.
            return ApiProblem.BadRequest("request.invalid_json", $"The request body is not valid JSON: {WithoutPosition(reader.Message)}", field, position);
        }
        var (parent, type) = requestType is null ? (null, null) : Resolve(options.GetTypeInfo(requestType), segments, options);
        if (parent is not null && type is null && segments[^1].Name is { } unknown)
        {
            return UnknownField(unknown, field!, parent, position);
        }
        string expected = Expected(type);
        string detail = field is null ? $"The request body must be {expected}." : $"{field} must be {expected}.";
        return ApiProblem.BadRequest("request.invalid_json", detail, field, position);
    }

    private readonly record struct Segment(string? Name, int? Index);

    /// <summary>The serializer's path (<c>$.a.b[0]['odd name']</c>) as segments.</summary>
    private static List<Segment> Segments(string? path)
    {
        var segments = new List<Segment>();
        int i = path is { Length: > 0 } && path[0] == '$' ? 1 : 0;
        while (path is not null && i < path.Length)
        {
            if (path[i] == '.')
            {
                int end = path.IndexOfAny(['.', '['], i + 1);
                end = end < 0 ? path.Length : end;
                segments.Add(new Segment(path[(i + 1)..end], null));
                i = end;
            }
            else if (i + 1 < path.Length && path[i] == '[' && path[i + 1] == '\'')
            {
                int end = path.IndexOf("']", i + 2, StringComparison.Ordinal);
                end = end < 0 ? path.Length : end;
                segments.Add(new Segment(path[(i + 2)..end], null));
                i = end + 2;
            }
            else if (path[i] == '[')
            {
                int end = path.IndexOf(']', i);
                end = end < 0 ? path.Length : end;
                segments.Add(new Segment(null, int.TryParse(path.AsSpan(i + 1, end - i - 1), out int index) ? index : 0));
                i = end + 1;
            }
            else
            {
                break;
            }
        }
        return segments;
    }

    /// <summary>Segments as the API's problems spell a field: <c>optimizer.learningRate</c>, <c>rows[0].x1</c>; null for the whole body.</summary>
    private static string? Field(List<Segment> segments)
    {
        var text = new StringBuilder();
        foreach (var segment in segments)
        {
            if (segment.Name is { } name)
            {
                text.Append(text.Length > 0 ? "." : "").Append(name);
            }
            else
            {
                text.Append('[').Append(segment.Index).Append(']');
            }
        }
        return text.Length > 0 ? text.ToString() : null;
    }

    /// <summary>
    /// Follows <paramref name="segments"/> from the request type to the type expected at the end. When the last segment
    /// names no property of the object that holds it (an unknown field), Type is null and Parent is that object; when the
    /// path leads where the contracts say nothing (inside a free-form value), both are null.
    /// </summary>
    private static (JsonTypeInfo? Parent, Type? Type) Resolve(JsonTypeInfo root, List<Segment> segments, JsonSerializerOptions options)
    {
        var current = root;
        for (int i = 0; i < segments.Count; i++)
        {
            var segment = segments[i];
            if (segment.Name is { } name && current.Kind == JsonTypeInfoKind.Object)
            {
                var property = current.Properties.FirstOrDefault(p => string.Equals(p.Name, name,
                    options.PropertyNameCaseInsensitive ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal));
                if (property is null)
                {
                    return i == segments.Count - 1 ? (current, null) : (null, null);
                }
                current = options.GetTypeInfo(Underlying(property.PropertyType));
            }
            else if (current.Kind is JsonTypeInfoKind.Enumerable or JsonTypeInfoKind.Dictionary && current.ElementType is { } element)
            {
                current = options.GetTypeInfo(Underlying(element));
            }
            else
            {
                return (null, null);
            }
        }
        return (null, current.Type);
    }

    private static Type Underlying(Type type) => Nullable.GetUnderlyingType(type) ?? type;

    /// <summary>What a value of <paramref name="type"/> looks like in JSON, in words.</summary>
    internal static string Expected(Type? type)
    {
        type = type is null ? null : Underlying(type);
        return type switch
        {
            null => "valid JSON of the documented shape",
            _ when type == typeof(int) || type == typeof(long) || type == typeof(short) => "a whole number",
            _ when type == typeof(double) || type == typeof(float) || type == typeof(decimal) => "a number",
            _ when type == typeof(bool) => "true or false",
            _ when type == typeof(string) => "a string",
            _ when type == typeof(Guid) => "an id (a GUID such as \"3f2b8c1e-…\")",
            _ when type == typeof(TimeSpan) => "a duration such as \"00:30:00\"",
            _ when type == typeof(DateTimeOffset) || type == typeof(DateTime) => "an ISO 8601 date and time",
            _ when type == typeof(JsonElement) => "a JSON value",
            _ when type.IsAssignableTo(typeof(System.Collections.IDictionary)) => "an object",
            _ when type != typeof(string) && type.IsAssignableTo(typeof(System.Collections.IEnumerable)) =>
                $"an array of {Plural(Expected(type.IsArray ? type.GetElementType() : type.GetGenericArguments().FirstOrDefault()))}",
            _ => "an object",
        };
    }

    private static string Plural(string expected) => expected switch
    {
        "a whole number" => "whole numbers",
        "a number" => "numbers",
        "a string" => "strings",
        "true or false" => "true/false values",
        _ => "values",
    };

    private static ApiProblem UnknownField(string unknown, string field, JsonTypeInfo parent, Dictionary<string, object?> position) =>
        UnknownField(unknown, field, parent.Properties.Where(p => p.Set is not null || p.AssociatedParameter is not null).Select(p => p.Name).ToList(),
            position);

    /// <summary>A 400 <c>request.unknown_field</c> naming the field, the fields known there, and the closest of them.</summary>
    internal static ApiProblem UnknownField(string unknown, string field, IReadOnlyList<string> known, IReadOnlyDictionary<string, object?>? position = null)
    {
        string? suggestion = Suggest(unknown, known);
        string hint = suggestion is null ? ""
            : Camel(unknown) == suggestion ? $" Did you mean '{suggestion}'? Spec fields are camelCase (loss parameters are snake_case)."
            : $" Did you mean '{suggestion}'?";
        var extensions = new Dictionary<string, object?>(position ?? new Dictionary<string, object?>()) { ["known"] = known };
        if (suggestion is not null)
        {
            extensions["suggestion"] = suggestion;
        }
        return ApiProblem.BadRequest("request.unknown_field",
            $"Unknown field '{field}'.{hint} Known here: {string.Join(", ", known)}.", field, extensions);
    }

    /// <summary>The known name closest to <paramref name="unknown"/>: its camelCase spelling, else the least edits (at most a third of its length).</summary>
    internal static string? Suggest(string unknown, IReadOnlyList<string> known)
    {
        string camel = Camel(unknown);
        if (known.FirstOrDefault(k => string.Equals(k, camel, StringComparison.OrdinalIgnoreCase)) is { } exact)
        {
            return exact;
        }
        var best = known.Select(k => (Name: k, Distance: Distance(camel.ToLowerInvariant(), k.ToLowerInvariant())))
            .OrderBy(c => c.Distance).FirstOrDefault();
        return best.Name is not null && best.Distance <= Math.Max(1, unknown.Length / 3) ? best.Name : null;
    }

    /// <summary><c>learning_rate</c> → <c>learningRate</c>; other names unchanged.</summary>
    private static string Camel(string name)
    {
        var parts = name.Split(['_', '-'], StringSplitOptions.RemoveEmptyEntries);
        return parts.Length <= 1 ? name
            : parts[0] + string.Concat(parts.Skip(1).Select(p => char.ToUpperInvariant(p[0]) + p[1..]));
    }

    /// <summary>Levenshtein distance.</summary>
    private static int Distance(string a, string b)
    {
        var previous = Enumerable.Range(0, b.Length + 1).ToArray();
        var current = new int[b.Length + 1];
        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                current[j] = Math.Min(Math.Min(current[j - 1], previous[j]) + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }

    private static string WithoutPosition(string message)
    {
        int at = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        return at >= 0 ? message[..at] : message;
    }
}
