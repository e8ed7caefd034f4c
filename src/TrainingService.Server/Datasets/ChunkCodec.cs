using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace TrainingService.Server.Datasets;

/// <summary>
/// The binary forms of one column's values for one range of rows, all little-endian. The writer picks the smallest
/// form that gives every value back exactly:
/// <list type="bullet">
/// <item><see cref="ScaledInteger"/>: numbers that are all m / 10^k for one k (decimals as CSV files write them): a
/// byte of width (1, 2 or 4), a byte k, then each m in that width, the width's smallest integer for missing.</item>
/// <item><see cref="Float64"/>: other numbers, as doubles, NaN for missing.</item>
/// <item><see cref="Utf8Dictionary"/>: text drawn from a few distinct values: an int32 entry count, each entry as an
/// int32 byte length and its UTF-8 bytes, a byte of code width (1, 2 or 4), then each cell's entry index, −1 for missing.</item>
/// <item><see cref="Utf8Text"/>: any text: the cells' byte lengths as int32 (−1 for missing), then their UTF-8 bytes.</item>
/// </list>
/// </summary>
public static class ChunkCodec
{
    public const short Float64 = 1;
    public const short Utf8Text = 2;
    public const short ScaledInteger = 3;
    public const short Utf8Dictionary = 4;

    // 10^0 … 10^15: every one an exact double, so m / 10^k is one correctly rounded division.
    internal static ReadOnlySpan<double> PowersOfTen =>
        [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

    /// <summary>Numbers (NaN for missing) as <see cref="ScaledInteger"/> when that is exact, else as <see cref="Float64"/>.</summary>
    public static (short Encoding, byte[] Data) EncodeNumbers(ReadOnlySpan<double> values)
    {
        if (!TryCommonScale(values, out int scale, out long largest))
        {
            return (Float64, MemoryMarshal.AsBytes(values).ToArray());
        }
        int width = WidthFor(largest);
        var data = new byte[2 + values.Length * width];
        data[0] = (byte)width;
        data[1] = (byte)scale;
        double factor = PowersOfTen[scale];
        var body = data.AsSpan(2);
        for (int i = 0; i < values.Length; i++)
        {
            long m = double.IsNaN(values[i]) ? Missing(width) : (long)Math.Round(values[i] * factor);
            WriteInteger(body, i, width, m);
        }
        return (ScaledInteger, data);
    }

    /// <summary>
    /// The smallest k for which every value is exactly m / 10^k with |m| &lt; 2^31 (checked by dividing back, bit for bit,
    /// so −0 and anything inexact fall back to doubles), and the largest |m|.
    /// </summary>
    private static bool TryCommonScale(ReadOnlySpan<double> values, out int scale, out long largest)
    {
        scale = 0;
        largest = 0;
        double largestMagnitude = 0.0;
        foreach (double value in values)
        {
            if (double.IsNaN(value))
            {
                continue;
            }
            largestMagnitude = Math.Max(largestMagnitude, Math.Abs(value));
            while (!IsScaled(value, scale))
            {
                if (++scale >= PowersOfTen.Length)
                {
                    return false;
                }
            }
        }
        // A value exact at k is exact at every larger k (m just gains zeros), but |m| grows; rounding is monotonic, so
        // the largest |m| at the final k is that of the largest |value|.
        double m = Math.Round(largestMagnitude * PowersOfTen[scale]);
        if (m > int.MaxValue)
        {
            return false;
        }
        largest = (long)m;
        return true;
    }

    private static bool IsScaled(double value, int scale)
    {
        double factor = PowersOfTen[scale];
        double scaled = value * factor;
        // −0 divides back to −0 but would be stored as the integer 0.
        return Math.Abs(scaled) <= int.MaxValue && !(value == 0 && double.IsNegative(value))
            && BitConverter.DoubleToInt64Bits(Math.Round(scaled) / factor) == BitConverter.DoubleToInt64Bits(value);
    }

    /// <summary>Bytes per integer so that |m| ≤ <paramref name="largest"/> fits and the width's minimum stays free for "missing".</summary>
    private static int WidthFor(long largest) => largest <= sbyte.MaxValue ? 1 : largest <= short.MaxValue ? 2 : 4;

    private static long Missing(int width) => width switch { 1 => sbyte.MinValue, 2 => short.MinValue, _ => int.MinValue };

    private static void WriteInteger(Span<byte> body, int index, int width, long value)
    {
        switch (width)
        {
            case 1:
                body[index] = (byte)(sbyte)value;
                break;
            case 2:
                BinaryPrimitives.WriteInt16LittleEndian(body[(index * 2)..], (short)value);
                break;
            default:
                BinaryPrimitives.WriteInt32LittleEndian(body[(index * 4)..], (int)value);
                break;
        }
    }

    private static long ReadInteger(ReadOnlySpan<byte> body, int index, int width) => width switch
    {
        1 => (sbyte)body[index],
        2 => BinaryPrimitives.ReadInt16LittleEndian(body[(index * 2)..]),
        _ => BinaryPrimitives.ReadInt32LittleEndian(body[(index * 4)..]),
    };

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

    /// <summary>Text as <see cref="Utf8Dictionary"/>: each cell's index in <paramref name="entries"/>, −1 for missing.</summary>
    public static byte[] EncodeDictionary(IReadOnlyList<string> entries, ReadOnlySpan<int> codes)
    {
        int width = WidthFor(entries.Count);
        int header = 4 + entries.Sum(e => 4 + Encoding.UTF8.GetByteCount(e));
        var data = new byte[header + 1 + codes.Length * width];
        BinaryPrimitives.WriteInt32LittleEndian(data, entries.Count);
        int position = 4;
        foreach (string entry in entries)
        {
            int length = Encoding.UTF8.GetBytes(entry, data.AsSpan(position + 4));
            BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(position), length);
            position += 4 + length;
        }
        data[position] = (byte)width;
        var body = data.AsSpan(position + 1);
        for (int i = 0; i < codes.Length; i++)
        {
            WriteInteger(body, i, width, codes[i]);
        }
        return data;
    }

    /// <summary>A <see cref="Utf8Dictionary"/> chunk's entries and where its codes start.</summary>
    private static (string[] Entries, int Width, int CodesAt) ReadDictionary(byte[] data)
    {
        var entries = new string[BinaryPrimitives.ReadInt32LittleEndian(data)];
        int position = 4;
        for (int e = 0; e < entries.Length; e++)
        {
            int length = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(position));
            entries[e] = Encoding.UTF8.GetString(data, position + 4, length);
            position += 4 + length;
        }
        return (entries, data[position], position + 1);
    }

    /// <summary>
    /// Calls <paramref name="mapEntry"/> once per distinct entry of a dictionary chunk, and writes each cell's mapped value
    /// (<paramref name="missing"/> for a missing cell).
    /// </summary>
    internal static void DecodeDictionary<T>(byte[] data, int rows, Func<ReadOnlySpan<char>, T> mapEntry, T missing, Span<T> destination)
    {
        var (entries, width, codesAt) = ReadDictionary(data);
        var mapped = entries.Select(entry => mapEntry(entry)).ToArray();
        var body = data.AsSpan(codesAt);
        for (int i = 0; i < rows; i++)
        {
            long code = ReadInteger(body, i, width);
            destination[i] = code < 0 ? missing : mapped[code];
        }
    }

    /// <summary>Decodes a chunk as numbers; text cells are parsed (booleans read as 1/0, anything else NaN).</summary>
    public static void DecodeNumbers(short encoding, byte[] data, int rows, Span<double> destination)
    {
        switch (encoding)
        {
            case Float64:
                MemoryMarshal.Cast<byte, double>(data.AsSpan(0, rows * 8)).CopyTo(destination);
                return;
            case ScaledInteger:
            {
                int width = data[0];
                double factor = PowersOfTen[data[1]];
                long missing = Missing(width);
                var body = data.AsSpan(2);
                for (int i = 0; i < rows; i++)
                {
                    long m = ReadInteger(body, i, width);
                    destination[i] = m == missing ? double.NaN : m / factor;
                }
                return;
            }
            case Utf8Dictionary:
                DecodeDictionary(data, rows, TextAsNumber, double.NaN, destination);
                return;
            default:
                DecodeText(data, rows, TextAsNumber, double.NaN, destination);
                return;
        }
    }

    /// <summary>
    /// Calls <paramref name="mapCell"/> on each cell of a <see cref="Utf8Text"/> chunk, decoded into one reused buffer,
    /// and writes the result (<paramref name="missing"/> for a missing cell).
    /// </summary>
    internal static void DecodeText<T>(byte[] data, int rows, Func<ReadOnlySpan<char>, T> mapCell, T missing, Span<T> destination)
    {
        char[] buffer = new char[256];
        int position = rows * 4;
        for (int i = 0; i < rows; i++)
        {
            int length = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(i * 4));
            if (length < 0)
            {
                destination[i] = missing;
                continue;
            }
            if (buffer.Length < length)
            {
                buffer = new char[length * 2]; // a UTF-8 byte never decodes to more than one char
            }
            int chars = Encoding.UTF8.GetChars(data.AsSpan(position, length), buffer);
            position += length;
            destination[i] = mapCell(buffer.AsSpan(0, chars));
        }
    }

    private static double TextAsNumber(ReadOnlySpan<char> cell) =>
        CellValues.TryNumber(cell, out double number) ? number
        : CellValues.TryBoolean(cell, out bool flag) ? (flag ? 1 : 0)
        : double.NaN;
}
