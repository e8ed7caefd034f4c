using System.Buffers;

namespace TrainingService.Server.Losses;

/// <summary>
/// A growing list of floats in fixed chunks rented from the shared array pool: a streamed array costs 4 bytes a value
/// while it is read, with no doubling and copying as it grows, and its chunks go back to the pool when it is cleared.
/// </summary>
internal sealed class PooledFloats : IDisposable
{
    /// <summary>64 KiB: under the large object heap's threshold, so the chunks are ordinary short-lived arrays.</summary>
    private const int ChunkLength = 16_384;

    private readonly List<float[]> _chunks = [];
    private float[]? _current;
    private int _used = ChunkLength;

    public int Count { get; private set; }

    public void Add(float value)
    {
        if (_used == ChunkLength)
        {
            _current = ArrayPool<float>.Shared.Rent(ChunkLength);
            _chunks.Add(_current);
            _used = 0;
        }
        _current![_used++] = value;
        Count++;
    }

    /// <summary>The values in one array of exactly <see cref="Count"/>, the shape the kernels take.</summary>
    public float[] ToArray()
    {
        var values = GC.AllocateUninitializedArray<float>(Count);
        int offset = 0;
        foreach (var chunk in _chunks)
        {
            int length = Math.Min(ChunkLength, Count - offset);
            chunk.AsSpan(0, length).CopyTo(values.AsSpan(offset));
            offset += length;
        }
        return values;
    }

    /// <summary>Returns the chunks to the pool and starts empty.</summary>
    public void Clear()
    {
        foreach (var chunk in _chunks)
        {
            ArrayPool<float>.Shared.Return(chunk);
        }
        _chunks.Clear();
        _current = null;
        _used = ChunkLength;
        Count = 0;
    }

    public void Dispose() => Clear();
}
