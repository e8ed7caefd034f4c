using ILGPU;
using ILGPU.Runtime;
using TrainingService.Compute.Devices;

namespace TrainingService.Compute.Models;

/// <summary>
/// Runs a <see cref="NetworkLayout"/> on the device for batches of up to <c>maxRows</c> rows: forward (with dropout
/// when training) and backward into a flat gradient vector. Owns the per-layer activation buffers, so a trainer
/// or predictor allocates once and launches only kernels per batch.
/// </summary>
public sealed class NetworkExecutor : IDisposable
{
    private readonly ComputeDevice _device;
    private readonly NetworkLayout _layout;
    private readonly MemoryBuffer1D<float, Stride1D.Dense>[] _preActivations;
    private readonly MemoryBuffer1D<float, Stride1D.Dense>[] _outputs;
    private readonly MemoryBuffer1D<float, Stride1D.Dense>[] _gradients;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, DenseArgs> _forward;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, DenseArgs> _backward;

    /// <summary>Allocates activation buffers for batches of at most <paramref name="maxRows"/> rows.</summary>
    public NetworkExecutor(ComputeDevice device, NetworkLayout layout, int maxRows)
    {
        _device = device;
        _layout = layout;
        MaxRows = maxRows;
        int layers = layout.Layers.Count;
        _preActivations = new MemoryBuffer1D<float, Stride1D.Dense>[layers];
        _outputs = new MemoryBuffer1D<float, Stride1D.Dense>[layers];
        _gradients = new MemoryBuffer1D<float, Stride1D.Dense>[layers];
        for (int l = 0; l < layers; l++)
        {
            long size = (long)maxRows * layout.Layers[l].Outputs;
            _preActivations[l] = device.Accelerator.Allocate1D<float>(size);
            _outputs[l] = device.Accelerator.Allocate1D<float>(size);
            _gradients[l] = device.Accelerator.Allocate1D<float>(size);
        }
        _forward = device.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, DenseArgs>(DenseKernels.Forward);
        _backward = device.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, DenseArgs>(
            DenseKernels.Backward);
    }

    /// <summary>The largest batch this executor accepts.</summary>
    public int MaxRows { get; }

    /// <summary>The output layer's gradient buffer for <paramref name="rows"/> rows: the loss kernel writes ∂L/∂logits here.</summary>
    public ArrayView<float> OutputGradient(int rows) => _gradients[^1].View.SubView(0, (long)rows * _layout.Outputs);

    /// <summary>
    /// Forward pass of <paramref name="rows"/> rows of <paramref name="input"/>; returns the logits view [rows × outputs].
    /// <paramref name="dropoutSeed"/> null means evaluation (no dropout); otherwise it seeds this batch's masks.
    /// </summary>
    public ArrayView<float> Forward(ArrayView<float> input, int rows, ArrayView<float> parameters, uint? dropoutSeed)
    {
        ArrayView<float> x = input;
        for (int l = 0; l < _layout.Layers.Count; l++)
        {
            var layer = _layout.Layers[l];
            bool hidden = l < _layout.Layers.Count - 1;
            var args = new DenseArgs
            {
                Rows = rows,
                In = layer.Inputs,
                Out = layer.Outputs,
                Activation = (int)layer.Activation,
                DropoutRate = hidden && dropoutSeed is not null ? (float)_layout.Dropout : 0f,
                DropoutSeed = LayerSeed(dropoutSeed, l),
                TilesPerPass = TilesPerPass(DenseKernels.Tiles(rows, layer.Outputs)),
            };
            long size = (long)rows * layer.Outputs;
            // Pre-activations are kept only where backward needs them: hidden layers during training.
            ArrayView<float> preActivation = hidden && dropoutSeed is not null ? _preActivations[l].View.SubView(0, size) : ArrayView<float>.Empty;
            var output = _outputs[l].View.SubView(0, size);
            _forward(Launch(DenseKernels.Tiles(rows, layer.Outputs)), x, Block(parameters, layer), preActivation, output, args);
            x = output;
        }
        return x;
    }

    /// <summary>
    /// Backward pass after <see cref="Forward"/> with the same arguments and the loss gradient in
    /// <see cref="OutputGradient"/>: writes ∂L/∂parameters over <paramref name="gradients"/>.
    /// </summary>
    public void Backward(ArrayView<float> input, int rows, ArrayView<float> parameters, ArrayView<float> gradients, uint dropoutSeed)
    {
        // One launch per layer: its weight and bias gradient and, above the first layer, the gradient to its input.
        for (int l = _layout.Layers.Count - 1; l >= 0; l--)
        {
            var layer = _layout.Layers[l];
            ArrayView<float> layerInput = l == 0 ? input : _outputs[l - 1].View.SubView(0, (long)rows * layer.Inputs);
            var gradOut = _gradients[l].View.SubView(0, (long)rows * layer.Outputs);
            long weightTiles = DenseKernels.WeightTiles(layer.Inputs, layer.Outputs);
            long inputTiles = l > 0 ? DenseKernels.Tiles(rows, layer.Inputs) : 0;
            var args = new DenseArgs
            {
                Rows = rows, In = layer.Inputs, Out = layer.Outputs,
                TilesPerPass = TilesPerPass(weightTiles), InputTilesPerPass = TilesPerPass(inputTiles),
            };
            ArrayView<float> previousPreActivation = ArrayView<float>.Empty, gradIn = ArrayView<float>.Empty;
            if (l > 0)
            {
                var previous = _layout.Layers[l - 1];
                args.Activation = (int)previous.Activation;
                args.DropoutRate = (float)_layout.Dropout;
                args.DropoutSeed = LayerSeed(dropoutSeed, l - 1);
                previousPreActivation = _preActivations[l - 1].View.SubView(0, (long)rows * previous.Outputs);
                gradIn = _gradients[l - 1].View.SubView(0, (long)rows * previous.Outputs);
            }
            _backward(Launch(Math.Max(weightTiles, inputTiles)), layerInput, gradOut, Block(parameters, layer), previousPreActivation,
                Block(gradients, layer), gradIn, args);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var buffer in _preActivations.Concat(_outputs).Concat(_gradients))
        {
            buffer.Dispose();
        }
    }

    private static ArrayView<float> Block(ArrayView<float> flat, DenseLayer layer) => flat.SubView(layer.Offset, layer.ParameterCount);

    private KernelConfig Launch(long tiles) => _device.GridStride(tiles);

    private int TilesPerPass(long tiles) => DenseKernels.TilesPerPass(_device.IsCpu, tiles, _device.MaxGroups * _device.GroupSize);

    internal static uint LayerSeed(uint? batchSeed, int layer) =>
        batchSeed is uint seed ? seed ^ (0x85EBCA6Bu * (uint)(layer + 1)) : 0u;
}
