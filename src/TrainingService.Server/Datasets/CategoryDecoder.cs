namespace TrainingService.Server.Datasets;

/// <summary>Decoding of chunks straight to category codes, without a string per cell.</summary>
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
        int Code(ReadOnlySpan<char> cell) =>
            lookup.TryGetValue(CellValues.TryNumber(cell, out double number) ? CellValues.Canonical(number, canonical) : cell, out int index)
                ? index : -1;
        switch (encoding)
        {
            case ChunkCodec.Float64 or ChunkCodec.ScaledInteger:
            {
                var values = new double[rows];
                ChunkCodec.DecodeNumbers(encoding, data, rows, values);
                for (int i = 0; i < rows; i++)
                {
                    destination[i] = !double.IsNaN(values[i]) && lookup.TryGetValue(CellValues.Canonical(values[i], canonical), out int index)
                        ? index : -1;
                }
                return;
            }
            case ChunkCodec.Utf8Dictionary:
                ChunkCodec.DecodeDictionary(data, rows, Code, -1, destination);
                return;
            default:
                ChunkCodec.DecodeText(data, rows, Code, -1, destination);
                return;
        }
    }
}
