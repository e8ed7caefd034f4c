namespace TrainingService.Compute.Training;

/// <summary>
/// Everything needed to continue a run after epoch <see cref="Epoch"/> and end bit-identical to an uninterrupted run:
/// parameters, optimizer state and step count, schedule and early-stopping state. Shuffles and dropout masks are
/// derived from (seed, epoch, batch), so no random-generator state needs saving beyond the seed.
/// </summary>
public sealed class TrainingCheckpoint
{
    private const int FormatVersion = 1;

    /// <summary>Epochs completed.</summary>
    public required int Epoch { get; init; }
    /// <summary>The run's seed (checked on resume).</summary>
    public required int Seed { get; init; }
    /// <summary>Optimizer steps taken.</summary>
    public required long Steps { get; init; }
    /// <summary>Parameters after <see cref="Epoch"/>.</summary>
    public required float[] Parameters { get; init; }
    /// <summary>Optimizer state slots.</summary>
    public required float[][] OptimizerState { get; init; }
    /// <summary>Learning rate of the next epoch.</summary>
    public required double LearningRate { get; init; }
    /// <summary>Plateau schedule: best value (NaN if none).</summary>
    public required double PlateauBest { get; init; }
    /// <summary>Plateau schedule: epochs without improvement.</summary>
    public required int PlateauBadEpochs { get; init; }
    /// <summary>Early stopping: best monitored value (NaN if none).</summary>
    public required double BestValue { get; init; }
    /// <summary>Early stopping: epoch of the best value (0 if none).</summary>
    public required int BestEpoch { get; init; }
    /// <summary>Early stopping: epochs since the best.</summary>
    public required int Wait { get; init; }
    /// <summary>Parameters at the best epoch, when they are to be restored.</summary>
    public float[]? BestParameters { get; init; }

    /// <summary>A compact binary form for storage.</summary>
    public byte[] Serialize()
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream))
        {
            writer.Write(FormatVersion);
            writer.Write(Epoch);
            writer.Write(Seed);
            writer.Write(Steps);
            WriteArray(writer, Parameters);
            writer.Write(OptimizerState.Length);
            foreach (var slot in OptimizerState)
            {
                WriteArray(writer, slot);
            }
            writer.Write(LearningRate);
            writer.Write(PlateauBest);
            writer.Write(PlateauBadEpochs);
            writer.Write(BestValue);
            writer.Write(BestEpoch);
            writer.Write(Wait);
            writer.Write(BestParameters is not null);
            if (BestParameters is not null)
            {
                WriteArray(writer, BestParameters);
            }
        }
        return stream.ToArray();
    }

    /// <summary>Reads what <see cref="Serialize"/> wrote.</summary>
    public static TrainingCheckpoint Deserialize(byte[] data)
    {
        using var reader = new BinaryReader(new MemoryStream(data));
        int version = reader.ReadInt32();
        if (version != FormatVersion)
        {
            throw new InvalidDataException($"Checkpoint format {version} is not supported (expected {FormatVersion}).");
        }
        int epoch = reader.ReadInt32();
        int seed = reader.ReadInt32();
        long steps = reader.ReadInt64();
        var parameters = ReadArray(reader);
        var state = new float[reader.ReadInt32()][];
        for (int i = 0; i < state.Length; i++)
        {
            state[i] = ReadArray(reader);
        }
        return new TrainingCheckpoint
        {
            Epoch = epoch,
            Seed = seed,
            Steps = steps,
            Parameters = parameters,
            OptimizerState = state,
            LearningRate = reader.ReadDouble(),
            PlateauBest = reader.ReadDouble(),
            PlateauBadEpochs = reader.ReadInt32(),
            BestValue = reader.ReadDouble(),
            BestEpoch = reader.ReadInt32(),
            Wait = reader.ReadInt32(),
            BestParameters = reader.ReadBoolean() ? ReadArray(reader) : null,
        };
    }

    private static void WriteArray(BinaryWriter writer, float[] values)
    {
        writer.Write(values.Length);
        writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
    }

    private static float[] ReadArray(BinaryReader reader)
    {
        var values = new float[reader.ReadInt32()];
        reader.BaseStream.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }
}
