using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;
using TrainingService.Server.Configuration;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Losses;

/// <summary>
/// Reads the body of <c>POST /api/losses/evaluate</c> from the request pipe without building a document of it. The
/// number arrays (<c>predictions</c>, <c>targets</c>, <c>weights</c>, <c>variance</c>) stream token by token into pooled
/// float buffers, counted as they come: reading stops at the first value past <see cref="LossApiOptions.MaxElements"/>.
/// The other fields are small; each is read whole, with the binder's types and rules, once it is all in the buffer, and
/// none may exceed <see cref="MaxValueBytes"/>. Unknown top-level fields are refused.
/// </summary>
internal sealed class EvaluateRequestReader
{
    /// <summary>
    /// Most bytes one value other than a number array (loss, params, classWeights, reduction, or one number) may take. Kept
    /// under Kestrel's request buffer (1 MiB), which stops reading from the socket while that much is unconsumed.
    /// </summary>
    public const int MaxValueBytes = 256 * 1024;

    private enum Phase { Start, Properties, Array, SkipValue, End }

    private enum NumberError { None, NonFinite, NotANumber, TooMany }

    private static readonly string[] FieldNames = ["loss", "params", "reduction", "predictions", "targets", "weights", "classWeights", "variance", "fromLogits"];

    private readonly int _maxElements;
    private readonly EvaluateLossBody _body = new();
    private JsonReaderState _state;
    private long _offset;
    private Phase _phase = Phase.Start;
    private ApiProblem? _problem;

    // The number array being read: values (or rows) started so far, the current row's length, and a bad value in the
    // current row, which counts only if the row turns out to have the right length (a wrong length is reported first).
    private StreamedMatrix? _array;
    private int _index;
    private int _rowLength;
    private ApiProblem? _rowProblem;
    private int _skipDepth;

    /// <summary>The field whose value is being waited for, to be read whole.</summary>
    private string? _waitingFor;

    private EvaluateRequestReader(int maxElements, JsonSerializerOptions options)
    {
        _maxElements = maxElements;
        _state = new JsonReaderState(new JsonReaderOptions
        {
            AllowTrailingCommas = options.AllowTrailingCommas,
            CommentHandling = options.ReadCommentHandling,
            MaxDepth = options.MaxDepth == 0 ? 64 : options.MaxDepth,
        });
    }

    /// <summary>
    /// The body, or the problem that ends the request: malformed JSON, a field of the wrong type or unknown, an array past
    /// the bound, a value too long. Problems with the numbers themselves are left on the body's arrays for the handler.
    /// </summary>
    public static async Task<(EvaluateLossBody? Body, ApiProblem? Problem)> ReadAsync(PipeReader pipe, int maxElements,
        CancellationToken cancellationToken)
    {
        var reader = new EvaluateRequestReader(maxElements, ApiJson.Options);
        try
        {
            var problem = await reader.ReadAllAsync(pipe, cancellationToken);
            if (problem is null)
            {
                return (reader._body, null);
            }
            reader._body.Dispose();
            return (null, problem);
        }
        catch
        {
            reader._body.Dispose();
            throw;
        }
    }

    private async Task<ApiProblem?> ReadAllAsync(PipeReader pipe, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await pipe.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            if (buffer.IsEmpty && result.IsCompleted && _offset == 0)
            {
                pipe.AdvanceTo(buffer.End);
                return ApiProblem.BadRequest("request.invalid", "The request has no body; a JSON object is required.");
            }
            var consumed = buffer.Start;
            long pending = 0;
            try
            {
                consumed = Feed(buffer, result.IsCompleted);
                pending = buffer.Slice(consumed).Length;
            }
            catch (JsonException e)
            {
                _problem = InvalidJson($"The request body is not valid JSON: {e.Message}", e);
            }
            finally
            {
                pipe.AdvanceTo(consumed, buffer.End);
            }
            if (_problem is not null || result.IsCompleted)
            {
                return _problem;
            }
            if (pending > MaxValueBytes)
            {
                return ValueTooLong(_array?.Field ?? _waitingFor ?? "$");
            }
        }
    }

    /// <summary>Handles every complete token in the buffer; returns where the next read starts.</summary>
    private SequencePosition Feed(ReadOnlySequence<byte> buffer, bool isFinalBlock)
    {
        var reader = new Utf8JsonReader(buffer, isFinalBlock, _state);
        while (_problem is null)
        {
            var checkpoint = reader;
            if (!reader.Read())
            {
                break;
            }
            bool handled = _phase switch
            {
                Phase.Start => OnStart(ref reader),
                Phase.Properties => OnProperty(ref reader),
                Phase.Array => OnArrayToken(ref reader),
                Phase.SkipValue => OnSkippedToken(ref reader),
                _ => true, // after the closing brace the reader itself refuses anything but whitespace
            };
            if (!handled)
            {
                reader = checkpoint; // the value is not all here yet: read it again, whole, once more has arrived
                break;
            }
        }
        _state = reader.CurrentState;
        _offset += reader.BytesConsumed;
        return reader.Position;
    }

    private bool OnStart(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            _problem = ApiProblem.BadRequest("request.invalid_json", "The request body must be a JSON object.", "$",
                new Dictionary<string, object?> { ["offset"] = _offset + reader.TokenStartIndex });
        }
        _phase = Phase.Properties;
        return true;
    }

    /// <summary>A top-level property name (or the closing brace); false when its value must be read whole and is not all here.</summary>
    private bool OnProperty(ref Utf8JsonReader reader)
    {
        _waitingFor = null;
        if (reader.TokenType == JsonTokenType.EndObject)
        {
            _phase = Phase.End;
            return true;
        }
        string name;
        try
        {
            name = reader.GetString()!;
        }
        catch (InvalidOperationException e)
        {
            _problem = InvalidJson($"A field name is not valid text: {e.Message}", null);
            return true;
        }
        string? field = FieldNames.FirstOrDefault(f => string.Equals(f, name, StringComparison.OrdinalIgnoreCase));
        switch (field)
        {
            case "loss":
                return ReadWhole<JsonElement?>(ref reader, field, "any JSON value", v => _body.Loss = v);
            case "params":
                return ReadWhole<Dictionary<string, JsonElement>>(ref reader, field, "an object", v => _body.Params = v);
            case "reduction":
                return ReadWhole<string>(ref reader, field, "a string", v => _body.Reduction = v);
            case "classWeights":
                return ReadWhole<List<double>>(ref reader, field, "an array of numbers", v => _body.ClassWeights = v);
            case "fromLogits":
                return ReadWhole<bool?>(ref reader, field, "true or false", v => _body.FromLogits = v);
            case "predictions":
                return StartArray(ref reader, _body.Predictions);
            case "targets":
                return StartArray(ref reader, _body.Targets);
            case "weights":
                return StartArray(ref reader, _body.Weights);
            case "variance":
                return StartArray(ref reader, _body.Variance);
            default:
                name = name.Length > 100 ? name[..100] + "…" : name;
                _problem = JsonRefusals.UnknownField(name, name, FieldNames);
                return true;
        }
    }

    /// <summary>
    /// Reads a small field whole, with the API's JSON options, as the binder did. Its problems carry the byte
    /// <c>offset</c> of the value (the serializer counts lines from the value, not from the body).
    /// </summary>
    private bool ReadWhole<T>(ref Utf8JsonReader reader, string field, string expected, Action<T?> set)
    {
        var probe = reader;
        if (!probe.TrySkip())
        {
            _waitingFor = field;
            return false;
        }
        if (probe.BytesConsumed - reader.BytesConsumed > MaxValueBytes)
        {
            _problem = ValueTooLong(field);
            return true;
        }
        var start = reader;
        start.Read();
        var offset = new Dictionary<string, object?> { ["offset"] = _offset + start.TokenStartIndex };
        try
        {
            set(JsonSerializer.Deserialize<T>(ref reader, ApiJson.Requests));
        }
        catch (InvalidTextException e)
        {
            string path = $"{field}{e.Suffix}";
            _problem = ApiProblem.BadRequest("request.invalid_text", $"{path} {e.Reason}.", path, offset);
        }
        catch (JsonException e)
        {
            string path = $"$.{field}{e.Path?[1..]}";
            _problem = ApiProblem.BadRequest("request.invalid_json", $"{path} is of the wrong type: {field} must be {expected}.", path, offset);
        }
        catch (InvalidOperationException e)
        {
            _problem = ApiProblem.BadRequest("request.invalid_json", $"$.{field} is not valid text: {e.Message}", $"$.{field}", offset);
        }
        return true;
    }

    /// <summary>The value of a number array field: an array streams in; null leaves it absent; anything else is a problem.</summary>
    private bool StartArray(ref Utf8JsonReader reader, StreamedMatrix matrix)
    {
        var probe = reader;
        if (!probe.Read())
        {
            _waitingFor = matrix.Field;
            return false;
        }
        reader = probe;
        switch (reader.TokenType)
        {
            case JsonTokenType.StartArray:
                matrix.Reset(present: true);
                (_array, _index, _rowLength, _rowProblem, _phase) = (matrix, 0, 0, null, Phase.Array);
                break;
            case JsonTokenType.Null:
                matrix.Reset(present: false);
                break;
            default:
                matrix.Reset(present: true, ApiProblem.BadRequest("loss.missing_input", $"{matrix.Field} must be an array of numbers or of rows.", matrix.Field));
                if (reader.TokenType == JsonTokenType.StartObject)
                {
                    (_skipDepth, _phase) = (reader.CurrentDepth, Phase.SkipValue);
                }
                break;
        }
        return true;
    }

    private bool OnSkippedToken(ref Utf8JsonReader reader)
    {
        if (reader.CurrentDepth == _skipDepth)
        {
            _phase = Phase.Properties;
        }
        return true;
    }

    /// <summary>
    /// A token inside a number array. Depth 1 is the array's own closing bracket; values of a number array are at depth 2;
    /// rows are at depth 2 and their values at depth 3. Anything deeper belongs to a value that is not a number.
    /// </summary>
    private bool OnArrayToken(ref Utf8JsonReader reader)
    {
        var matrix = _array!;
        int depth = reader.CurrentDepth;
        var token = reader.TokenType;
        bool end = token is JsonTokenType.EndArray or JsonTokenType.EndObject;
        if (depth == 1)
        {
            EndArray(matrix);
            return true;
        }
        if (matrix.Problem is not null)
        {
            return true; // the rest of a bad array is read past
        }
        if (depth == 2 && _index == 0)
        {
            matrix.IsFlat = token != JsonTokenType.StartArray; // the first value decides
        }
        if (depth == 2 && !end)
        {
            _index++;
        }
        if (matrix.IsFlat && depth == 2 && !end)
        {
            ReadValue(ref reader, matrix, _index - 1, column: -1);
        }
        else if (!matrix.IsFlat && depth == 2)
        {
            OnRowToken(token, matrix);
        }
        else if (!matrix.IsFlat && depth == 3 && !end)
        {
            OnValueInRow(ref reader, matrix);
        }
        return true;
    }

    private void OnRowToken(JsonTokenType token, StreamedMatrix matrix)
    {
        string Row() => $"{matrix.Field}[{matrix.Rows}]";
        if (token == JsonTokenType.StartArray)
        {
            (_rowLength, _rowProblem) = (0, null);
            return;
        }
        if (token == JsonTokenType.EndArray && _rowLength > 0 && (matrix.Width < 0 || _rowLength == matrix.Width))
        {
            matrix.Problem = _rowProblem;
            matrix.Width = _rowLength;
            matrix.Rows++;
            return;
        }
        matrix.Problem = ApiProblem.BadRequest("loss.shape_mismatch", $"{Row()} must be a row as long as the first.", Row());
    }

    private void OnValueInRow(ref Utf8JsonReader reader, StreamedMatrix matrix)
    {
        if (matrix.Width >= 0 && _rowLength >= matrix.Width)
        {
            string row = $"{matrix.Field}[{matrix.Rows}]";
            matrix.Problem = ApiProblem.BadRequest("loss.shape_mismatch", $"{row} must be a row as long as the first.", row);
            return;
        }
        if (_rowProblem is null)
        {
            ReadValue(ref reader, matrix, matrix.Rows, _rowLength);
        }
        _rowLength++;
    }

    /// <summary>
    /// One value (<paramref name="column"/> -1: of a number array): a number is stored; anything else is the array's
    /// problem, or the current row's.
    /// </summary>
    private void ReadValue(ref Utf8JsonReader reader, StreamedMatrix matrix, int index, int column)
    {
        var error = ReadNumber(ref reader, matrix);
        if (error == NumberError.TooMany)
        {
            _problem = ApiProblem.TooLarge("loss.too_many_elements",
                $"{matrix.Field} has more than {_maxElements:N0} values, the most this service evaluates in one request (Losses:MaxElements).")
                with { Field = matrix.Field };
            return;
        }
        if (error == NumberError.None)
        {
            return;
        }
        string at = column < 0 ? $"{matrix.Field}[{index}]" : $"{matrix.Field}[{index}][{column}]";
        var problem = error == NumberError.NonFinite
            ? ApiProblem.BadRequest("loss.non_finite_input", $"{at} is not a finite number.", at)
            : ApiProblem.BadRequest("loss.invalid_input", $"{at} must be a number.", at);
        if (column >= 0)
        {
            _rowProblem = problem;
        }
        else
        {
            matrix.Problem = problem;
        }
    }

    private NumberError ReadNumber(ref Utf8JsonReader reader, StreamedMatrix matrix)
    {
        if (reader.TokenType == JsonTokenType.Number && reader.TryGetDouble(out double value))
        {
            if (matrix.Values.Count == _maxElements)
            {
                return NumberError.TooMany;
            }
            float single = (float)value;
            if (!float.IsFinite(single))
            {
                return NumberError.NonFinite; // 1e400, or 1e39 past float's range: refused like "Infinity"
            }
            matrix.Values.Add(single);
            return NumberError.None;
        }
        bool named = reader.TokenType == JsonTokenType.String
            && (reader.ValueTextEquals("NaN"u8) || reader.ValueTextEquals("Infinity"u8) || reader.ValueTextEquals("-Infinity"u8));
        return named ? NumberError.NonFinite : NumberError.NotANumber;
    }

    private void EndArray(StreamedMatrix matrix)
    {
        if (matrix.Problem is null && _index == 0)
        {
            matrix.Problem = ApiProblem.BadRequest("loss.empty_input", $"{matrix.Field} is empty.", matrix.Field);
        }
        else if (matrix.Problem is null && matrix.IsFlat)
        {
            (matrix.Rows, matrix.Width) = (matrix.Values.Count, 1);
        }
        (_array, _phase) = (null, Phase.Properties);
    }

    private static ApiProblem ValueTooLong(string field) => ApiProblem.TooLarge("request.too_large",
        $"A value in {field} is longer than {MaxValueBytes / 1024} KiB, the most one value other than a number array may take.") with { Field = field };

    private ApiProblem InvalidJson(string detail, JsonException? e) => ApiProblem.BadRequest("request.invalid_json", detail,
        _array is null ? "$" : $"$.{_array.Field}",
        e?.LineNumber is { } line ? new Dictionary<string, object?> { ["line"] = line + 1, ["column"] = e.BytePositionInLine + 1 } : null);
}
