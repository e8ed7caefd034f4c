using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace TrainingService.Server.Datasets;

/// <summary>
/// One column during an import: buffers the current chunk's cells (as numbers while every cell is numeric; from the
/// first text cell on, also as text, and as dictionary codes while every cell is a known category), and keeps what
/// type inference and statistics need over the whole file in bounded memory.
/// </summary>
internal sealed class ColumnAccumulator
{
    private readonly int _maxDistinct;
    private readonly double[] _numbers;
    // Per-row text positions and dictionary codes, allocated when the column's first text cell arrives: a numeric
    // column never needs them.
    private int[] _starts = [], _lengths = [], _codes = [];
    private char[] _text = new char[4096];
    private int _textLength;
    private bool _chunkNumeric = true;
    private bool _chunkCoded = true; // every non-missing cell so far has a code (is text with an entry in _textById)

    private long _missing, _count;
    private bool _allNumeric = true, _allIntegral = true, _allBoolean = true, _allDates = true;
    private ShiftedMoments _moments;
    private double _min = double.PositiveInfinity, _max = double.NegativeInfinity;
    private readonly Dictionary<double, long> _numberCounts = [];
    private readonly Dictionary<string, TextTally> _textCounts = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TextTally>.AlternateLookup<ReadOnlySpan<char>> _textLookup;
    private readonly List<string> _textById = [];
    private bool _distinctCapped;

    public ColumnAccumulator(string name, int index, int chunkCapacity, int maxDistinct)
    {
        Name = name;
        Index = index;
        _maxDistinct = maxDistinct;
        _numbers = new double[chunkCapacity];
        _textLookup = _textCounts.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public string Name { get; }
    public int Index { get; }
    public int Rows { get; private set; }

    /// <summary>Adds one cell (already unquoted).</summary>
    public void Add(ReadOnlySpan<char> cell)
    {
        int row = Rows++;
        if (CellValues.TryNumber(cell, out double number))
        {
            // A chunk keeps no text while all its cells are numbers: BeginText writes it if a text cell turns up.
            _numbers[row] = number;
            if (!_chunkNumeric)
            {
                AppendText(row, cell);
            }
            _chunkCoded = false;
            _count++;
            if (_allNumeric)
            {
                _moments.Add(number);
                _min = Math.Min(_min, number);
                _max = Math.Max(_max, number);
                _allIntegral &= number == Math.Floor(number);
            }
            Count(_numberCounts, number);
            return;
        }
        _numbers[row] = double.NaN;
        if (CellValues.IsMissing(cell))
        {
            _missing++;
            if (!_chunkNumeric)
            {
                _lengths[row] = -1;
                _codes[row] = -1;
            }
            return;
        }
        if (_chunkNumeric)
        {
            BeginText(row);
        }
        AppendText(row, cell);
        _count++;
        _allNumeric = false;
        _allBoolean &= CellValues.TryBoolean(cell, out _);
        _allDates &= CellValues.IsDate(cell);
        _codes[row] = -1;
        if (!_distinctCapped)
        {
            ref var tally = ref CollectionsMarshal.GetValueRefOrNullRef(_textLookup, cell);
            if (!Unsafe.IsNullRef(ref tally))
            {
                tally.Count++;
                _codes[row] = tally.Id;
            }
            else
            {
                _codes[row] = AddCategory(cell);
            }
        }
        _chunkCoded &= _codes[row] >= 0;
    }

    /// <summary>
    /// A text value not seen before: its code, or −1 once the distinct bound is reached. Runs at most once per distinct
    /// value, so it is kept out of line: the per-cell <see cref="Add"/> stays small for the JIT.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int AddCategory(ReadOnlySpan<char> cell)
    {
        if (Full())
        {
            return -1;
        }
        string text = cell.ToString();
        int id = _textById.Count;
        _textCounts[text] = new TextTally { Count = 1, Id = id };
        _textById.Add(text);
        return id;
    }

    /// <summary>
    /// The chunk's first text cell is at <paramref name="row"/>: writes the text of the rows before it, numbers in their
    /// canonical form (the readers key numeric cells of a text chunk by that form, so nothing is lost) and missing as −1.
    /// </summary>
    private void BeginText(int row)
    {
        _chunkNumeric = false;
        if (_lengths.Length == 0)
        {
            _starts = new int[_numbers.Length];
            _lengths = new int[_numbers.Length];
            _codes = new int[_numbers.Length];
        }
        Span<char> buffer = stackalloc char[32];
        for (int r = 0; r < row; r++)
        {
            _codes[r] = -1;
            if (double.IsNaN(_numbers[r]))
            {
                _lengths[r] = -1;
            }
            else
            {
                AppendText(r, CellValues.Canonical(_numbers[r], buffer));
            }
        }
    }

    /// <summary>Encodes and clears the current chunk, in the most compact of <see cref="ChunkCodec"/>'s forms that fits it.</summary>
    public (short Encoding, byte[] Data) Flush()
    {
        var encoded = _chunkNumeric ? ChunkCodec.EncodeNumbers(_numbers.AsSpan(0, Rows))
            : _chunkCoded && _textById.Count <= Rows ? (ChunkCodec.Utf8Dictionary, ChunkCodec.EncodeDictionary(_textById, _codes.AsSpan(0, Rows)))
            : (ChunkCodec.Utf8Text, ChunkCodec.EncodeText(_text.AsSpan(0, _textLength), _starts.AsSpan(0, Rows), _lengths.AsSpan(0, Rows)));
        Rows = 0;
        _textLength = 0;
        _chunkNumeric = true;
        _chunkCoded = true;
        return encoded;
    }

    /// <summary>The column's inferred type and statistics once every row is in.</summary>
    public ColumnSchema Finish()
    {
        int distinct = _numberCounts.Count + _textCounts.Count;
        string type;
        string? note = null;
        if (_count == 0)
        {
            type = ColumnType.Numeric;
            note = "Every cell is missing.";
        }
        else if (_allNumeric)
        {
            type = ColumnType.Numeric;
        }
        else if (_allBoolean && _numberCounts.Count == 0)
        {
            type = ColumnType.Boolean;
        }
        else if (_allDates && _numberCounts.Count == 0)
        {
            type = ColumnType.Datetime;
            note = "Dates are not used as features; derive numeric columns (year, day of week, …) before uploading.";
        }
        else if (!_distinctCapped)
        {
            type = ColumnType.Categorical;
        }
        else
        {
            type = ColumnType.Text;
            note = $"More than {_maxDistinct} distinct values: free text is not used as a feature.";
        }
        IReadOnlyList<CategoryCount>? values = null;
        if (!_distinctCapped)
        {
            var all = _numberCounts.OrderBy(p => p.Key).Select(p => new CategoryCount(CellValues.Canonical(p.Key), p.Value))
                .Concat(_textCounts.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => new CategoryCount(p.Key, p.Value.Count)));
            values = all.OrderByDescending(v => v.Count).ToList();
        }
        return new ColumnSchema
        {
            Name = Name,
            Index = Index,
            Type = type,
            Usable = _count > 0 && type is ColumnType.Numeric or ColumnType.Boolean or ColumnType.Categorical,
            Missing = _missing,
            Distinct = distinct,
            DistinctCapped = _distinctCapped,
            Stats = type == ColumnType.Numeric && _count > 0
                ? new NumericStats(_min, _max, _moments.Mean, Math.Sqrt(_moments.SampleVariance))
                : null,
            Integral = type == ColumnType.Numeric && _count > 0 ? _allIntegral : null,
            Values = values,
            Note = note,
        };
    }

    private void Count(Dictionary<double, long> counts, double number)
    {
        if (_distinctCapped)
        {
            return;
        }
        ref long seen = ref CollectionsMarshal.GetValueRefOrNullRef(counts, number);
        if (!Unsafe.IsNullRef(ref seen))
        {
            seen++;
        }
        else if (!Full())
        {
            counts[number] = 1;
        }
    }

    /// <summary>True once one more distinct value would pass the bound; counting stops there.</summary>
    private bool Full()
    {
        if (_numberCounts.Count + _textCounts.Count < _maxDistinct)
        {
            return false;
        }
        _distinctCapped = true;
        return true;
    }

    private void AppendText(int row, ReadOnlySpan<char> cell)
    {
        if (_textLength + cell.Length > _text.Length)
        {
            Array.Resize(ref _text, Math.Max(_text.Length * 2, _textLength + cell.Length));
        }
        cell.CopyTo(_text.AsSpan(_textLength));
        _starts[row] = _textLength;
        _lengths[row] = cell.Length;
        _textLength += cell.Length;
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Name} ({Rows} rows buffered)");
}

/// <summary>A distinct text value's count over the file and its code in the dictionary chunks.</summary>
internal struct TextTally
{
    public long Count;
    public int Id;
}
