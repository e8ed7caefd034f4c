using System.Globalization;
using TrainingService.Server.Datasets;

namespace TrainingService.Server.Tests;

/// <summary>The number fast path and the stored chunk forms: every value must come back bit for bit.</summary>
public sealed class ChunkCodecTests
{
    [Fact]
    public void The_plain_decimal_fast_path_gives_the_same_double_as_double_Parse()
    {
        var random = new Random(11);
        for (int i = 0; i < 200_000; i++)
        {
            int digits = random.Next(1, 15), decimals = random.Next(0, digits + 1); // "0." may add a 15th digit
            string cell = RandomDecimal(random, digits, decimals);
            Assert.True(CellValues.TryPlainDecimal(cell, out double fast), cell);
            double expected = double.Parse(cell, CultureInfo.InvariantCulture);
            Assert.True(BitConverter.DoubleToInt64Bits(expected) == BitConverter.DoubleToInt64Bits(fast), $"{cell}: {fast:R} != {expected:R}");
        }
    }

    [Theory]
    [InlineData("1e5")]
    [InlineData("+1")]
    [InlineData(" 1")]
    [InlineData("1.2.3")]
    [InlineData("-")]
    [InlineData(".")]
    [InlineData("")]
    [InlineData("1234567890123456")] // 16 digits: past the exact range, left to the full parser
    [InlineData("NaN")]
    [InlineData("1,5")]
    public void Anything_but_a_short_plain_decimal_is_left_to_the_full_parser(string cell)
    {
        Assert.False(CellValues.TryPlainDecimal(cell, out _));
    }

    [Theory]
    [InlineData("1e5", 1e5)]
    [InlineData("+1", 1.0)]
    [InlineData(" 2.5 ", 2.5)]
    [InlineData("1234567890123456789", 1234567890123456789.0)]
    [InlineData("-0", -0.0)]
    [InlineData(".5", 0.5)]
    public void TryNumber_still_reads_what_the_fast_path_leaves(string cell, double expected)
    {
        Assert.True(CellValues.TryNumber(cell, out double value));
        Assert.Equal(BitConverter.DoubleToInt64Bits(expected), BitConverter.DoubleToInt64Bits(value));
    }

    public static TheoryData<string, double[], short, int> NumberChunks() => new()
    {
        // name, values, expected encoding, expected bytes
        { "five decimals", [12.34567, -99.99999, 0.00001, double.NaN, 100], ChunkCodec.ScaledInteger, 2 + 5 * 4 },
        { "small integers", [0, 1, -1, 127, -127, double.NaN], ChunkCodec.ScaledInteger, 2 + 6 },
        { "one decimal", [1.5, 2.5, -3276.7], ChunkCodec.ScaledInteger, 2 + 3 * 2 },
        { "int32 edge", [int.MaxValue, -int.MaxValue], ChunkCodec.ScaledInteger, 2 + 2 * 4 },
        { "past int32", [int.MaxValue + 1.0], ChunkCodec.Float64, 8 },
        { "not a short decimal", [Math.PI, 1], ChunkCodec.Float64, 16 },
        { "timestamps", [1.7e9, 1.7e9 + 0.25], ChunkCodec.Float64, 16 },
        { "negative zero", [-0.0, 1], ChunkCodec.Float64, 16 },
        { "all missing", [double.NaN, double.NaN], ChunkCodec.ScaledInteger, 2 + 2 },
    };

    [Theory]
    [MemberData(nameof(NumberChunks))]
    public void Numbers_use_the_smallest_exact_form_and_decode_bit_for_bit(string name, double[] values, short encoding, int bytes)
    {
        var (actualEncoding, data) = ChunkCodec.EncodeNumbers(values);
        Assert.True(encoding == actualEncoding, name);
        Assert.Equal(bytes, data.Length);
        AssertDecodesTo(values, actualEncoding, data);
    }

    [Fact]
    public void Random_decimal_columns_round_trip_exactly_whatever_form_they_get()
    {
        var random = new Random(3);
        for (int chunk = 0; chunk < 300; chunk++)
        {
            int decimals = random.Next(0, 12), digits = decimals + random.Next(1, 8);
            var values = Enumerable.Range(0, random.Next(1, 400))
                .Select(_ => random.Next(10) == 0 ? double.NaN : double.Parse(RandomDecimal(random, Math.Min(digits, 15), Math.Min(decimals, 15)), CultureInfo.InvariantCulture))
                .ToArray();
            var (encoding, data) = ChunkCodec.EncodeNumbers(values);
            AssertDecodesTo(values, encoding, data);
        }
    }

    [Fact]
    public void A_dictionary_chunk_decodes_to_numbers_and_to_category_codes()
    {
        string[] entries = ["red", "true", "green", "FALSE"];
        int[] codes = [0, 1, -1, 2, 3, 0];
        byte[] data = ChunkCodec.EncodeDictionary(entries, codes);
        Assert.Equal(4 + entries.Sum(e => 4 + e.Length) + 1 + codes.Length, data.Length);

        var numbers = new double[codes.Length];
        ChunkCodec.DecodeNumbers(ChunkCodec.Utf8Dictionary, data, codes.Length, numbers);
        Assert.Equal([double.NaN, 1, double.NaN, double.NaN, 0, double.NaN], numbers);

        var categories = new Dictionary<string, int> { ["green"] = 0, ["red"] = 1 };
        var decoded = new int[codes.Length];
        CategoryDecoder.Decode(ChunkCodec.Utf8Dictionary, data, codes.Length, categories, decoded);
        Assert.Equal([1, -1, -1, 0, -1, 1], decoded);
    }

    [Fact]
    public void A_column_stores_numbers_scaled_text_as_a_dictionary_and_falls_back_when_neither_fits()
    {
        var column = new ColumnAccumulator("c", 0, chunkCapacity: 8, maxDistinct: 10);
        foreach (string cell in new[] { "1.25", "", "-3.5" })
        {
            column.Add(cell);
        }
        Assert.Equal(ChunkCodec.ScaledInteger, column.Flush().Encoding);

        foreach (string cell in new[] { "red", "NA", "blue", "red" })
        {
            column.Add(cell);
        }
        var (encoding, data) = column.Flush();
        Assert.Equal(ChunkCodec.Utf8Dictionary, encoding);
        var codes = new int[4];
        CategoryDecoder.Decode(encoding, data, 4, new Dictionary<string, int> { ["blue"] = 0, ["red"] = 1 }, codes);
        Assert.Equal([1, -1, 0, 1], codes);

        // A number among text: the numbers before the first text cell are written back in canonical form.
        foreach (string cell in new[] { "2.50", "", "red" })
        {
            column.Add(cell);
        }
        (encoding, data) = column.Flush();
        Assert.Equal(ChunkCodec.Utf8Text, encoding);
        CategoryDecoder.Decode(encoding, data, 3, new Dictionary<string, int> { ["2.5"] = 0, ["red"] = 1 }, codes);
        Assert.Equal([0, -1, 1], codes[..3]);
    }

    private static void AssertDecodesTo(double[] values, short encoding, byte[] data)
    {
        var decoded = new double[values.Length];
        ChunkCodec.DecodeNumbers(encoding, data, values.Length, decoded);
        for (int i = 0; i < values.Length; i++)
        {
            Assert.True(BitConverter.DoubleToInt64Bits(values[i]) == BitConverter.DoubleToInt64Bits(decoded[i]),
                $"value {i}: {values[i]:R} came back as {decoded[i]:R} ({encoding})");
        }
    }

    private static string RandomDecimal(Random random, int digits, int decimals)
    {
        var text = new System.Text.StringBuilder();
        if (random.Next(2) == 0)
        {
            text.Append('-');
        }
        for (int d = 0; d < digits; d++)
        {
            if (d == digits - decimals)
            {
                text.Append(d == 0 && random.Next(2) == 0 ? "0." : ".");
            }
            text.Append((char)('0' + random.Next(10)));
        }
        return text.ToString();
    }
}
