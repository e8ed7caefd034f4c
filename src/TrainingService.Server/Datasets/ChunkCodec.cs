using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace TrainingService.Server.Datasets;

/// <summary>
/// The binary forms of one column's values for one range of rows. Numbers: little-endian doubles, NaN for missing.
/// Text: the cells' byte lengths as little-endian int32 (−1 for missing), then their UTF-8 bytes back to back.
/// </summary>
public static class ChunkCodec
{
    public const short Float64 = 1;
    public const short Utf8Text = 2;

    public static byte[] EncodeNumbers(ReadOnlySpan<double> values) => MemoryMarshal.AsBytes(values).ToArray();

    public static byte[] EncodeText(ReadOnlySpan<char> text, ReadOnlySpan<int> starts, ReadOnlySpan<int> lengths)
    {
        int rows = lengths.Length, bytes = 0;
        for (int i = 0; i < rows; i++)
        {
            if (lengths[i] >= 0)
            {
                bytes += Encoding.UTF8.GetByteCount(text.Slice(starts[i], lengths[i]));
            }
        }
        var data = new byte[rows * 4 + bytes];
        int position = rows * 4;
        for (int i = 0; i < rows; i++)
        {
            int length = -1;
            if (lengths[i] >= 0)
            {
                length = Encoding.UTF8.GetBytes(text.Slice(starts[i], lengths[i]), data.AsSpan(position));
                position += length;
            }
            BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(i * 4), length);
        }
        return data;
    }

    /// <summary>Decodes a chunk as numbers; text cells are parsed (booleans read as 1/0, anything else NaN).</summary>
    public static void DecodeNumbers(short encoding, byte[] data, int rows, Span<double> destination)
    {
        if (encoding == Float64)
        {
            MemoryMarshal.Cast<byte, double>(data.AsSpan(0, rows * 8)).CopyTo(destination);
            return;
        }
        int position = rows * 4;
        for (int i = 0; i < rows; i++)
        {
            int length = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(i * 4));
            if (length < 0)
            {
                destination[i] = double.NaN;
                continue;
            }
            var cell = Encoding.UTF8.GetString(data, position, length);
            position += length;
            destination[i] = CellValues.TryNumber(cell, out double number) ? number
                : CellValues.TryBoolean(cell, out bool flag) ? (flag ? 1 : 0)
                : double.NaN;
        }
    }
}

/// <summary>How cells are read: missing markers, numbers, booleans, dates, and the key a category is known by.</summary>
public static class CellValues
{
    /// <summary>Empty, NA, N/A, null or NaN, in any case, ignoring surrounding spaces.</summary>
    public static bool IsMissing(ReadOnlySpan<char> cell)
    {
        var trimmed = cell.Trim();
        return trimmed.Length switch
        {
            0 => true,
            2 => trimmed.Equals("na", StringComparison.OrdinalIgnoreCase),
            3 => trimmed.Equals("n/a", StringComparison.OrdinalIgnoreCase) || trimmed.Equals("nan", StringComparison.OrdinalIgnoreCase),
            4 => trimmed.Equals("null", StringComparison.OrdinalIgnoreCase),
            _ => false,
        };
    }

    /// <summary>A finite number in invariant culture (1.5, -2, 3e-4; no thousands separators).</summary>
    public static bool TryNumber(ReadOnlySpan<char> cell, out double value) =>
        double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out value) && double.IsFinite(value);

    public static bool TryBoolean(ReadOnlySpan<char> cell, out bool value)
    {
        var trimmed = cell.Trim();
        if (trimmed.Equals("true", StringComparison.OrdinalIgnoreCase))
        {
            value = true;
            return true;
        }
        value = false;
        return trimmed.Equals("false", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>An ISO 8601 date (yyyy-MM-dd) or date-time.</summary>
    public static bool IsDate(ReadOnlySpan<char> cell)
    {
        var trimmed = cell.Trim();
        return trimmed.Length >= 10 && trimmed[4] == '-' && trimmed[7] == '-' && char.IsAsciiDigit(trimmed[0])
            && DateTime.TryParse(trimmed, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out _);
    }

    /// <summary>The round-trip text of a number: the key numeric cells of a categorical column are known by.</summary>
    public static string Canonical(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>The category key of a cell: canonical if it is a number ("1.0" and "1" are one category), else as written.</summary>
    public static string Key(string cell) => TryNumber(cell, out double number) ? Canonical(number) : cell;
}

/// <summary>Decoding of text chunks straight to category codes, without a string per cell.</summary>
public static class CategoryDecoder
{
    /// <summary>
    /// Writes each cell's index in <paramref name="categories"/> (−1 for missing or unknown). Numeric cells are looked up
    /// by their canonical form, as they were counted at import.
    /// </summary>
    public static void Decode(short encoding, byte[] data, int rows, Dictionary<string, int> categories, Span<int> destination)
    {
        var lookup = categories.GetAlternateLookup<ReadOnlySpan<char>>();
        var canonical = new char[32];
        if (encoding == ChunkCodec.Float64)
        {
            var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(data.AsSpan(0, rows * 8));
            for (int i = 0; i < rows; i++)
            {
                destination[i] = !double.IsNaN(values[i]) && values[i].TryFormat(canonical, out int written, "R", System.Globalization.CultureInfo.InvariantCulture)
                    && lookup.TryGetValue(canonical[..written], out int index) ? index : -1;
            }
            return;
        }
        char[] buffer = new char[256];
        int position = rows * 4;
        for (int i = 0; i < rows; i++)
        {
            int length = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(i * 4));
            if (length < 0)
            {
                destination[i] = -1;
                continue;
            }
            if (buffer.Length < length)
            {
                buffer = new char[length * 2];
            }
            int chars = System.Text.Encoding.UTF8.GetChars(data.AsSpan(position, length), buffer);
            position += length;
            ReadOnlySpan<char> cell = buffer.AsSpan(0, chars);
            if (CellValues.TryNumber(cell, out double number) && number.TryFormat(canonical, out int written, "R", System.Globalization.CultureInfo.InvariantCulture))
            {
                cell = canonical.AsSpan(0, written);
            }
            destination[i] = lookup.TryGetValue(cell, out int index) ? index : -1;
        }
    }
}
