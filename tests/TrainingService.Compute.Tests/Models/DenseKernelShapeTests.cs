using ILGPU;
using ILGPU.Runtime;
using TrainingService.Compute.Models;

namespace TrainingService.Compute.Tests.Models;

/// <summary>
/// The dense kernels' tiling against a double-precision host product, one layer at a time: shapes that do not divide
/// into tiles or between threads, single rows and columns, a shared dimension of 1; forward with and without bias
/// and ReLU, both backward products; each tile split as on the CPU (a contiguous run per thread) and as on a GPU
/// (one tile at a time).
/// </summary>
public sealed class DenseKernelShapeTests
{
    public static TheoryData<int, int, int> Shapes => new()
    {
        { 1, 1, 1 }, { 1, 13, 7 }, { 13, 1, 7 }, { 13, 7, 1 }, { 9, 1, 6 }, { 1, 6, 1 }, { 5, 3, 2 }, { 17, 9, 11 },
        { 33, 64, 10 }, { 256, 64, 128 }, { 255, 129, 10 }, { 6, 5, 3 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_matches_a_double_precision_product_with_and_without_bias_and_relu(int rows, int inputs, int outputs)
    {
        var random = new Random(rows * 1000 + inputs * 10 + outputs);
        float[] x = Uniform(random, rows * inputs);
        float[] parameters = Uniform(random, (inputs + 1) * outputs);
        foreach (bool bias in new[] { true, false })
        {
            if (!bias)
            {
                Array.Clear(parameters, inputs * outputs, outputs);
            }
            foreach (var activation in new[] { Activation.Identity, Activation.Relu })
            {
                foreach (bool cpuRuns in new[] { true, false })
                {
                    var (z, output) = DeviceForward(x, parameters, rows, inputs, outputs, activation, cpuRuns);
                    for (int r = 0; r < rows; r++)
                    {
                        for (int j = 0; j < outputs; j++)
                        {
                            double sum = parameters[inputs * outputs + j], scale = Math.Abs(sum);
                            for (int k = 0; k < inputs; k++)
                            {
                                sum += (double)x[r * inputs + k] * parameters[k * outputs + j];
                                scale += Math.Abs((double)x[r * inputs + k] * parameters[k * outputs + j]);
                            }
                            string where = $"{rows}x{inputs}x{outputs} {activation} bias {bias} cpu {cpuRuns} at ({r}, {j})";
                            AssertClose(sum, z[r * outputs + j], scale, where);
                            AssertClose(activation == Activation.Relu ? Math.Max(sum, 0) : sum, output[r * outputs + j], scale, where);
                        }
                    }
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Backward_matches_double_precision_products_for_weights_bias_and_input(int rows, int inputs, int outputs)
    {
        var random = new Random(rows * 1000 + inputs * 10 + outputs + 1);
        float[] x = Uniform(random, rows * inputs);
        float[] gradOut = Uniform(random, rows * outputs);
        float[] parameters = Uniform(random, (inputs + 1) * outputs);
        float[] previousZ = Uniform(random, rows * inputs); // both signs, so the ReLU mask zeroes some
        foreach (var activation in new[] { Activation.Identity, Activation.Relu, (Activation?)null })
        {
            foreach (bool cpuRuns in new[] { true, false })
            {
                var (gradParameters, gradIn) = DeviceBackward(x, gradOut, parameters, previousZ, rows, inputs, outputs, activation, cpuRuns);
                string where = $"{rows}x{inputs}x{outputs} {activation?.ToString() ?? "first layer"} cpu {cpuRuns}";
                AssertWeightGradient(x, gradOut, gradParameters, rows, inputs, outputs, where);
                if (activation is null)
                {
                    Assert.All(gradIn, v => Assert.Equal(-7f, v)); // the first layer has no input gradient: left untouched
                    continue;
                }
                for (int r = 0; r < rows; r++)
                {
                    for (int k = 0; k < inputs; k++)
                    {
                        double sum = 0, scale = 0;
                        for (int j = 0; j < outputs; j++)
                        {
                            sum += (double)gradOut[r * outputs + j] * parameters[k * outputs + j];
                            scale += Math.Abs((double)gradOut[r * outputs + j] * parameters[k * outputs + j]);
                        }
                        double expected = activation == Activation.Relu && previousZ[r * inputs + k] <= 0 ? 0 : sum;
                        AssertClose(expected, gradIn[r * inputs + k], scale, $"{where} ∂input ({r}, {k})");
                    }
                }
            }
        }
    }

    private static void AssertWeightGradient(float[] x, float[] gradOut, float[] gradParameters, int rows, int inputs, int outputs, string where)
    {
        for (int j = 0; j < outputs; j++)
        {
            for (int k = 0; k <= inputs; k++)
            {
                double sum = 0, scale = 0;
                for (int r = 0; r < rows; r++)
                {
                    double term = (k < inputs ? x[r * inputs + k] : 1.0) * gradOut[r * outputs + j];
                    sum += term;
                    scale += Math.Abs(term);
                }
                AssertClose(sum, gradParameters[k * outputs + j], scale, $"{where} {(k < inputs ? "∂W" : "∂b")} ({k}, {j})");
            }
        }
    }

    private static (float[] Z, float[] Output) DeviceForward(float[] x, float[] parameters, int rows, int inputs, int outputs,
        Activation activation, bool cpuRuns)
    {
        var device = TestDevice.Instance;
        var forward = device.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, DenseArgs>(DenseKernels.Forward);
        using var gate = device.Acquire();
        using var xs = device.Accelerator.Allocate1D(x);
        using var ps = device.Accelerator.Allocate1D(parameters);
        using var z = device.Accelerator.Allocate1D<float>(rows * outputs);
        using var output = device.Accelerator.Allocate1D<float>(rows * outputs);
        long tiles = DenseKernels.Tiles(rows, outputs);
        var args = new DenseArgs { Rows = rows, In = inputs, Out = outputs, Activation = (int)activation, TilesPerPass = Runs(cpuRuns, tiles) };
        forward(device.GridStride(tiles), xs.View, ps.View, z.View, output.View, args);
        return (z.GetAsArray1D(), output.GetAsArray1D());
    }

    private static (float[] GradParameters, float[] GradIn) DeviceBackward(float[] x, float[] gradOut, float[] parameters, float[] previousZ,
        int rows, int inputs, int outputs, Activation? previousActivation, bool cpuRuns)
    {
        var device = TestDevice.Instance;
        var backward = device.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, DenseArgs>(
            DenseKernels.Backward);
        using var gate = device.Acquire();
        using var xs = device.Accelerator.Allocate1D(x);
        using var gs = device.Accelerator.Allocate1D(gradOut);
        using var ps = device.Accelerator.Allocate1D(parameters);
        using var zs = device.Accelerator.Allocate1D(previousZ);
        using var dp = device.Accelerator.Allocate1D(Enumerable.Repeat(-7f, parameters.Length).ToArray());
        using var dx = device.Accelerator.Allocate1D(Enumerable.Repeat(-7f, rows * inputs).ToArray());
        bool first = previousActivation is null;
        long weightTiles = DenseKernels.WeightTiles(inputs, outputs), inputTiles = first ? 0 : DenseKernels.Tiles(rows, inputs);
        var args = new DenseArgs
        {
            Rows = rows, In = inputs, Out = outputs, Activation = (int)(previousActivation ?? Activation.Identity),
            TilesPerPass = Runs(cpuRuns, weightTiles), InputTilesPerPass = Runs(cpuRuns, inputTiles),
        };
        backward(device.GridStride(Math.Max(weightTiles, inputTiles)), xs.View, gs.View, ps.View, first ? ArrayView<float>.Empty : zs.View,
            dp.View, first ? ArrayView<float>.Empty : dx.View, args);
        return (dp.GetAsArray1D(), dx.GetAsArray1D());
    }

    private static int Runs(bool cpuRuns, long tiles) =>
        DenseKernels.TilesPerPass(cpuRuns, tiles, TestDevice.Instance.MaxGroups * TestDevice.Instance.GroupSize);

    private static float[] Uniform(Random random, int count) =>
        Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();

    /// <summary>Float accumulation of n terms: error within a few ulps of the sum of magnitudes.</summary>
    private static void AssertClose(double expected, float actual, double scale, string where) =>
        Assert.True(Math.Abs(actual - expected) <= 1e-5 * scale + 1e-6, $"{where}: device {actual:R}, double {expected:R}");
}
