using ILGPU.Runtime;
using TrainingService.Compute.Devices;

namespace TrainingService.Compute.Models;

/// <summary>Runs a trained network forward on the device (no dropout) for rows of encoded inputs.</summary>
public static class Predictor
{
    private const int Chunk = 4096;

    /// <summary>Raw outputs [rows × outputs] for <paramref name="inputs"/> [rows × inputs].</summary>
    public static async Task<float[]> PredictAsync(ComputeDevice device, NetworkLayout layout, float[] parameters, float[] inputs, int rows,
        CancellationToken cancellationToken = default)
    {
        var outputs = new float[(long)rows * layout.Outputs];
        using var _ = await device.AcquireAsync(cancellationToken).ConfigureAwait(false);
        using var executor = new NetworkExecutor(device, layout, Math.Min(rows, Chunk));
        using var p = device.Accelerator.Allocate1D(parameters);
        using var x = device.Accelerator.Allocate1D(inputs);
        for (int start = 0; start < rows; start += Chunk)
        {
            int count = Math.Min(Chunk, rows - start);
            var logits = executor.Forward(x.View.SubView((long)start * layout.Inputs, (long)count * layout.Inputs), count, p.View, dropoutSeed: null);
            logits.CopyToCPU(outputs.AsSpan(start * layout.Outputs, count * layout.Outputs));
        }
        return outputs;
    }
}
