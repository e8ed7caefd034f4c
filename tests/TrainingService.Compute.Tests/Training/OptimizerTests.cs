using ILGPU.Runtime;
using TrainingService.Compute.Losses;
using TrainingService.Compute.Optimizers;

namespace TrainingService.Compute.Tests.Training;

/// <summary>Each optimizer's first three steps on the device equal PyTorch's update rules computed by hand in double.</summary>
public sealed class OptimizerTests
{
    private static readonly double[] Start = [0.5, -1.0, 2.0];
    private static readonly double[][] Gradients = [[0.1, -0.2, 0.3], [0.05, 0.4, -0.1], [-0.3, 0.1, 0.2]];

    private static double[][] DeviceSteps(OptimizerSpec spec, Regularization? regularization = null)
    {
        var device = TestDevice.Instance;
        using var optimizer = new Optimizer(device, spec, Start.Length);
        using var parameters = device.Accelerator.Allocate1D(Start.Select(v => (float)v).ToArray());
        using var gradients = device.Accelerator.Allocate1D<float>(Start.Length);
        using var mask = device.Accelerator.Allocate1D(new float[] { 1, 1, 1 });
        using var partials = device.AllocateZeroed<double>(2 * device.MaxGroups);
        var after = new double[3][];
        for (int step = 0; step < 3; step++)
        {
            gradients.CopyFromCPU(Gradients[step].Select(v => (float)v).ToArray());
            optimizer.Step(parameters.View, gradients.View, mask.View, partials.View, 0, regularization ?? Regularization.None, spec.LearningRate);
            after[step] = parameters.GetAsArray1D().Select(v => (double)v).ToArray();
        }
        return after;
    }

    private static void AssertSteps(double[][] expected, double[][] actual)
    {
        for (int step = 0; step < 3; step++)
        {
            for (int i = 0; i < Start.Length; i++)
            {
                Assert.True(Math.Abs(expected[step][i] - actual[step][i]) <= 1e-6 * Math.Max(1, Math.Abs(expected[step][i])),
                    $"step {step + 1}, parameter {i}: expected {expected[step][i]:R}, got {actual[step][i]:R}");
            }
        }
    }

    [Fact]
    public void Sgd_with_nesterov_momentum_and_weight_decay_matches_pytorch()
    {
        double lr = 0.1, mu = 0.9, decay = 0.01;
        var w = (double[])Start.Clone();
        var buffer = new double[3];
        var expected = new double[3][];
        for (int step = 0; step < 3; step++)
        {
            for (int i = 0; i < 3; i++)
            {
                double g = Gradients[step][i] + decay * w[i];
                buffer[i] = step == 0 ? g : mu * buffer[i] + g;
                w[i] -= lr * (g + mu * buffer[i]);
            }
            expected[step] = (double[])w.Clone();
        }

        AssertSteps(expected, DeviceSteps(new OptimizerSpec(OptimizerKind.Sgd, lr, Momentum: mu, Nesterov: true, WeightDecay: decay)));
    }

    [Fact]
    public void Plain_sgd_matches_pytorch()
    {
        var w = (double[])Start.Clone();
        var expected = new double[3][];
        for (int step = 0; step < 3; step++)
        {
            for (int i = 0; i < 3; i++)
            {
                w[i] -= 0.5 * Gradients[step][i];
            }
            expected[step] = (double[])w.Clone();
        }

        AssertSteps(expected, DeviceSteps(new OptimizerSpec(OptimizerKind.Sgd, 0.5)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Adam_and_adamw_match_pytorch(bool decoupled)
    {
        double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, decay = 0.1;
        var w = (double[])Start.Clone();
        var m = new double[3];
        var v = new double[3];
        var expected = new double[3][];
        for (int t = 1; t <= 3; t++)
        {
            for (int i = 0; i < 3; i++)
            {
                double g = Gradients[t - 1][i];
                if (decoupled)
                {
                    w[i] *= 1 - lr * decay;
                }
                else
                {
                    g += decay * w[i];
                }
                m[i] = b1 * m[i] + (1 - b1) * g;
                v[i] = b2 * v[i] + (1 - b2) * g * g;
                double mHat = m[i] / (1 - Math.Pow(b1, t)), vHat = v[i] / (1 - Math.Pow(b2, t));
                w[i] -= lr * mHat / (Math.Sqrt(vHat) + eps);
            }
            expected[t - 1] = (double[])w.Clone();
        }

        var kind = decoupled ? OptimizerKind.AdamW : OptimizerKind.Adam;
        AssertSteps(expected, DeviceSteps(new OptimizerSpec(kind, lr, WeightDecay: decay)));
    }

    [Theory]
    [InlineData(false, 0.0)]
    [InlineData(true, 0.5)]
    public void Rmsprop_plain_and_centered_with_momentum_match_pytorch(bool centered, double momentum)
    {
        double lr = 0.01, alpha = 0.99, eps = 1e-8;
        var w = (double[])Start.Clone();
        var square = new double[3];
        var mean = new double[3];
        var buffer = new double[3];
        var expected = new double[3][];
        for (int step = 0; step < 3; step++)
        {
            for (int i = 0; i < 3; i++)
            {
                double g = Gradients[step][i];
                square[i] = alpha * square[i] + (1 - alpha) * g * g;
                double average;
                if (centered)
                {
                    mean[i] = alpha * mean[i] + (1 - alpha) * g;
                    average = Math.Sqrt(square[i] - mean[i] * mean[i]) + eps;
                }
                else
                {
                    average = Math.Sqrt(square[i]) + eps;
                }
                if (momentum > 0)
                {
                    buffer[i] = momentum * buffer[i] + g / average;
                    w[i] -= lr * buffer[i];
                }
                else
                {
                    w[i] -= lr * g / average;
                }
            }
            expected[step] = (double[])w.Clone();
        }

        AssertSteps(expected, DeviceSteps(new OptimizerSpec(OptimizerKind.RmsProp, lr, Momentum: momentum, Centered: centered)));
    }

    [Fact]
    public void Clipping_scales_the_gradient_to_the_maximum_global_norm()
    {
        // ‖g₁‖ = √0.14 ≈ 0.374; clipping at 0.1 scales it by 0.1/(0.374 + 1e−6).
        double scale = 0.1 / (Math.Sqrt(0.14) + 1e-6);
        var expected = Start.Select((w, i) => w - 1.0 * Gradients[0][i] * scale).ToArray();

        var actual = DeviceSteps(new OptimizerSpec(OptimizerKind.Sgd, 1.0, GradientClipNorm: 0.1))[0];

        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(expected[i], actual[i], 6);
        }
    }

    [Fact]
    public void Keras_l2_penalty_adds_twice_l2_times_w_to_the_gradient()
    {
        var expected = Start.Select((w, i) => w - 0.1 * (Gradients[0][i] + 2 * 0.05 * w + 0.01 * Math.Sign(w))).ToArray();

        var actual = DeviceSteps(new OptimizerSpec(OptimizerKind.Sgd, 0.1), new Regularization(0.01, 0.05))[0];

        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(expected[i], actual[i], 6);
        }
    }
}
