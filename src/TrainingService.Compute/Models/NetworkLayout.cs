namespace TrainingService.Compute.Models;

/// <summary>One dense layer: <c>out = f(in · W + b)</c>, stored as the block [W (in × out, row-major); b (out)].</summary>
/// <param name="Inputs">Input width.</param>
/// <param name="Outputs">Output width.</param>
/// <param name="Activation">f; identity for the output layer.</param>
/// <param name="Offset">Where the layer's block starts in the flat parameter vector.</param>
public sealed record DenseLayer(int Inputs, int Outputs, Activation Activation, int Offset)
{
    /// <summary>Number of weights (excluding the bias).</summary>
    public int WeightCount => Inputs * Outputs;

    /// <summary>Number of parameters: weights and biases.</summary>
    public int ParameterCount => (Inputs + 1) * Outputs;
}

/// <summary>
/// A multilayer perceptron (a linear model is one with no hidden layers) laid out in one flat parameter vector,
/// so an optimizer step is one kernel launch over every parameter.
/// </summary>
public sealed class NetworkLayout
{
    /// <summary>Builds the layout for <paramref name="inputs"/> → hidden… → <paramref name="outputs"/>.</summary>
    public NetworkLayout(int inputs, IReadOnlyList<int> hidden, int outputs, Activation activation, double dropout = 0.0)
    {
        if (inputs < 1 || outputs < 1 || hidden.Any(h => h < 1))
        {
            throw new ArgumentException("Every layer needs at least one unit.");
        }
        if (dropout is < 0 or >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(dropout), "Dropout must be in [0, 1).");
        }
        var layers = new List<DenseLayer>();
        int width = inputs, offset = 0;
        foreach (var units in hidden.Append(outputs))
        {
            bool last = layers.Count == hidden.Count;
            var layer = new DenseLayer(width, units, last ? Activation.Identity : activation, offset);
            layers.Add(layer);
            offset += layer.ParameterCount;
            width = units;
        }
        Layers = layers;
        ParameterCount = offset;
        HiddenActivation = activation;
        Dropout = dropout;
    }

    /// <summary>Layers from input to output.</summary>
    public IReadOnlyList<DenseLayer> Layers { get; }
    /// <summary>Total parameters.</summary>
    public int ParameterCount { get; }
    /// <summary>Activation of the hidden layers.</summary>
    public Activation HiddenActivation { get; }
    /// <summary>Dropout rate after each hidden activation (training only).</summary>
    public double Dropout { get; }
    /// <summary>Input width.</summary>
    public int Inputs => Layers[0].Inputs;
    /// <summary>Output width.</summary>
    public int Outputs => Layers[^1].Outputs;
    /// <summary>The widest layer output (sizes activation scratch buffers).</summary>
    public int WidestLayer => Layers.Max(l => l.Outputs);

    /// <summary>
    /// Seeded initial parameters: He-uniform (relu, gelu) or Glorot-uniform (tanh, sigmoid, and linear models)
    /// weights, zero biases.
    /// </summary>
    public float[] Initialize(int seed)
    {
        var random = new Random(seed);
        var parameters = new float[ParameterCount];
        foreach (var layer in Layers)
        {
            bool he = layer.Activation is Activation.Relu or Activation.Gelu;
            double limit = he
                ? Math.Sqrt(6.0 / layer.Inputs)
                : Math.Sqrt(6.0 / (layer.Inputs + layer.Outputs));
            for (int i = 0; i < layer.WeightCount; i++)
            {
                parameters[layer.Offset + i] = (float)((random.NextDouble() * 2 - 1) * limit);
            }
        }
        return parameters;
    }

    /// <summary>1 for weights, 0 for biases (or 1 everywhere when <paramref name="includeBias"/>): what L1/L2 penalise.</summary>
    public float[] RegularizationMask(bool includeBias)
    {
        var mask = new float[ParameterCount];
        foreach (var layer in Layers)
        {
            int count = includeBias ? layer.ParameterCount : layer.WeightCount;
            Array.Fill(mask, 1f, layer.Offset, count);
        }
        return mask;
    }
}
