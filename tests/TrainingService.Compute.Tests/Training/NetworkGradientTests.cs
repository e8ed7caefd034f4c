using ILGPU;
using ILGPU.Runtime;
using TrainingService.Compute.Losses;
using TrainingService.Compute.Models;
using TrainingService.Compute.Tests.Losses;

namespace TrainingService.Compute.Tests.Training;

/// <summary>
/// Whole-model gradients: the device's backward pass through every layer of a small MLP, for every activation and
/// with dropout, equals central finite differences of a double-precision host forward pass.
/// </summary>
public sealed class NetworkGradientTests
{
    [Theory]
    [InlineData(Activation.Relu, 0.0)]
    [InlineData(Activation.Tanh, 0.0)]
    [InlineData(Activation.Sigmoid, 0.0)]
    [InlineData(Activation.Gelu, 0.0)]
    [InlineData(Activation.Relu, 0.3)]
    [InlineData(Activation.Gelu, 0.5)]
    public void Mlp_parameter_gradients_match_finite_differences(Activation activation, double dropout)
    {
        const int rows = 7, inputs = 5, classes = 3;
        var layout = new NetworkLayout(inputs, [6, 5], classes, activation, dropout);
        var random = new Random(11);
        double[] x = Enumerable.Range(0, rows * inputs).Select(_ => (double)(float)(random.NextDouble() * 2 - 1)).ToArray();
        double[] y = Enumerable.Range(0, rows).Select(_ => (double)random.Next(classes)).ToArray();
        float[] parameters = layout.Initialize(5);
        for (int i = 0; i < parameters.Length; i++)
        {
            parameters[i] += (float)(random.NextDouble() * 0.2 - 0.1); // non-zero biases exercise every path
        }
        const uint seed = 12345;

        float[] gradient = DeviceGradient(layout, x, y, parameters, seed, rows);

        var reference = ReferenceLosses.CrossEntropy(y, classes, null, 0);
        double Loss(double[] p) => reference(HostForward(layout, x, rows, p, seed));
        double[] p = parameters.Select(v => (double)v).ToArray();
        double largest = 0;
        var numeric = new double[p.Length];
        for (int i = 0; i < p.Length; i++)
        {
            double saved = p[i], h = 1e-5;
            p[i] = saved + h;
            double up = Loss(p);
            p[i] = saved - h;
            double down = Loss(p);
            p[i] = saved;
            numeric[i] = (up - down) / (2 * h);
            largest = Math.Max(largest, Math.Abs(numeric[i]));
        }
        for (int i = 0; i < p.Length; i++)
        {
            double bound = 2e-3 * Math.Abs(numeric[i]) + 2e-4 * largest;
            Assert.True(Math.Abs(gradient[i] - numeric[i]) <= bound,
                $"parameter {i}: device {gradient[i]:R}, finite difference {numeric[i]:R}");
        }
    }

    private static float[] DeviceGradient(NetworkLayout layout, double[] x, double[] y, float[] parameters, uint seed, int rows)
    {
        var device = TestDevice.Instance;
        var accelerator = device.Accelerator;
        using var executor = new NetworkExecutor(device, layout, rows);
        using var input = accelerator.Allocate1D(Evaluate.F(x));
        using var targets = accelerator.Allocate1D(Evaluate.F(y));
        using var p = accelerator.Allocate1D(parameters);
        using var g = accelerator.Allocate1D<float>(parameters.Length);
        using var partials = device.AllocateZeroed<double>(device.MaxGroups);
        var loss = CombinedLoss.Bind([new LossTermSpec("cross_entropy")], new LossBinding(TargetLayout.ClassIndex, layout.Outputs, true));
        using (device.AcquireAsync().GetAwaiter().GetResult())
        {
            var logits = executor.Forward(input.View, rows, p.View, seed);
            loss.Terms[0].Launch(device, new LossViews
            {
                Predictions = logits,
                Targets = targets.View,
                Weights = ArrayView<float>.Empty,
                Aux = ArrayView<float>.Empty,
                ClassWeights = ArrayView<float>.Empty,
                Gradient = executor.OutputGradient(rows),
                PerItem = ArrayView<float>.Empty,
                Partials = partials.View,
            }, new LossLaunchArgs { Scale = 1.0 / rows, Classes = layout.Outputs }, rows);
            executor.Backward(input.View, rows, p.View, g.View, seed);
            return g.GetAsArray1D();
        }
    }

    /// <summary>The same network in double on the host, with the kernels' dropout masks.</summary>
    private static double[] HostForward(NetworkLayout layout, double[] x, int rows, double[] p, uint seed)
    {
        double[] activations = x;
        for (int l = 0; l < layout.Layers.Count; l++)
        {
            var layer = layout.Layers[l];
            bool hidden = l < layout.Layers.Count - 1;
            uint layerSeed = NetworkExecutor.LayerSeed(seed, l);
            var next = new double[rows * layer.Outputs];
            for (int r = 0; r < rows; r++)
            {
                for (int j = 0; j < layer.Outputs; j++)
                {
                    double z = p[layer.Offset + layer.WeightCount + j];
                    for (int k = 0; k < layer.Inputs; k++)
                    {
                        z += activations[r * layer.Inputs + k] * p[layer.Offset + k * layer.Outputs + j];
                    }
                    double a = Apply(layer.Activation, z);
                    if (hidden && layout.Dropout > 0)
                    {
                        a = DenseKernels.DropoutUniform(layerSeed, r * layer.Outputs + j) < (float)layout.Dropout ? 0 : a / (1 - (float)layout.Dropout);
                    }
                    next[r * layer.Outputs + j] = a;
                }
            }
            activations = next;
        }
        return activations;
    }

    private static double Apply(Activation activation, double z) => activation switch
    {
        Activation.Relu => Math.Max(z, 0),
        Activation.Tanh => Math.Tanh(z),
        Activation.Sigmoid => 1 / (1 + Math.Exp(-z)),
        Activation.Gelu => z * 0.5 * Erfc(-z / Math.Sqrt(2)),
        _ => z,
    };

    /// <summary>The same Chebyshev erfc as the kernel, in double.</summary>
    private static double Erfc(double x)
    {
        double z = Math.Abs(x), t = 1 / (1 + 0.5 * z);
        double r = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
            + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? r : 2 - r;
    }
}
