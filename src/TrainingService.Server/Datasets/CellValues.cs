using System.Globalization;

namespace TrainingService.Server.Datasets;

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
        TryPlainDecimal(cell, out value)
        || (double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out value) && double.IsFinite(value));

    /// <summary>
    /// The fast path for what most numeric CSV cells look like: an optional '-', digits, an optional '.' and digits,
    /// 15 digits at most. Such a cell is m / 10^k with m &lt; 10^15 &lt; 2^53 and k ≤ 15, both exact doubles, so one
    /// IEEE division rounds it correctly: the same double as <see cref="double.Parse(string)"/> (Clinger's fast path).
    /// Anything else (exponents, '+', spaces, longer mantissas) returns false and goes to the full parser.
    /// </summary>
    internal static bool TryPlainDecimal(ReadOnlySpan<char> cell, out double value)
    {
        value = 0;
        int start = cell.Length > 0 && cell[0] == '-' ? 1 : 0;
        int digits = 0, point = -1;
        long mantissa = 0;
        for (int i = start; i < cell.Length; i++)
        {
            uint digit = (uint)(cell[i] - '0');
            if (digit <= 9)
            {
                mantissa = mantissa * 10 + digit;
                digits++;
            }
            else if (cell[i] == '.' && point < 0)
            {
                point = i;
            }
            else
            {
                return false;
            }
        }
        if (digits is 0 or > 15)
        {
            return false;
        }
        double magnitude = mantissa / ChunkCodec.PowersOfTen[point < 0 ? 0 : cell.Length - point - 1];
        value = start == 1 ? -magnitude : magnitude;
        return true;
    }

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

    /// <summary><see cref="Canonical(double)"/> written into <paramref name="buffer"/> (32 chars suffice), without a string.</summary>
    public static ReadOnlySpan<char> Canonical(double value, Span<char> buffer)
    {
        value.TryFormat(buffer, out int written, "R", CultureInfo.InvariantCulture);
        return buffer[..written];
    }

    /// <summary>The category key of a cell: canonical if it is a number ("1.0" and "1" are one category), else as written.</summary>
    public static string Key(string cell) => TryNumber(cell, out double number) ? Canonical(number) : cell;
}
