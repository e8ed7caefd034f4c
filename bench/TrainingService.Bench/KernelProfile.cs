using System.Diagnostics;
using ILGPU;
using ILGPU.Runtime;
using TrainingService.Compute.Devices;
using TrainingService.Compute.Losses;
using TrainingService.Compute.Models;
using TrainingService.Compute.Optimizers;

namespace TrainingService.Bench;

/// <summary>
/// <c>profile</c>: one training step of the reference MLP (batch 256, 64→128→10 ReLU, cross-entropy, Adam) on ILGPU's CPU
/// accelerator, kernel by kernel, as time per epoch (391 steps), and each dense product beside a plain scalar C#
/// <c>Parallel.For</c> GEMM of the same M × N × K measured in the same run.
/// </summary>
internal static class KernelProfile
{
    private const int Steps = 391, Batch = 256;

    private static void EmptyKernel(ArrayView<float> a, int n) { }

    public static int Run()
    {
        using var device = ComputeDevice.Create(DeviceKind.Cpu);
        var layout = new NetworkLayout(64, [128], 10, Activation.Relu);
        using var exec = new NetworkExecutor(device, layout, Batch);
        var acc = device.Accelerator;
        var random = new Random(1);
        using var x = acc.Allocate1D(Enumerable.Range(0, Batch * 64).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray());
        using var y = acc.Allocate1D(Enumerable.Range(0, Batch).Select(_ => (float)random.Next(10)).ToArray());
        using var p = acc.Allocate1D(layout.Initialize(1));
        using var g = acc.Allocate1D<float>(layout.ParameterCount);
        using var mask = acc.Allocate1D(layout.RegularizationMask(false));
        using var partials = device.AllocateZeroed<double>(64);
        var loss = CombinedLoss.Bind([new LossTermSpec("cross_entropy")], new LossBinding(TargetLayout.ClassIndex, 10, true));
        var opt = new Optimizer(device, new OptimizerSpec(OptimizerKind.Adam, 1e-3), layout.ParameterCount);
        Console.WriteLine($"{device.Description}; times are per epoch ({Steps} steps of batch {Batch}); load: {File.ReadAllText("/proc/loadavg").Trim()}");
        Console.WriteLine();
        Console.WriteLine("| phase | ms / epoch |");
        Console.WriteLine("|---|---:|");
        var logits = exec.Forward(x.View, Batch, p.View, 1u);
        var views = new LossViews { Predictions = logits, Targets = y.View, Weights = ArrayView<float>.Empty, Aux = ArrayView<float>.Empty, ClassWeights = ArrayView<float>.Empty, Gradient = exec.OutputGradient(Batch), PerItem = ArrayView<float>.Empty, Partials = partials.View };
        var empty = device.Load<ArrayView<float>, int>(EmptyKernel);
        PrintPhase("empty launch", Time(acc, () => empty(device.GridStride(1), x.View, 0)));
        PrintPhase("forward (both layers)", Time(acc, () => exec.Forward(x.View, Batch, p.View, 1u)));
        PrintPhase("loss (cross-entropy + gradient)", Time(acc, () => loss.Terms[0].Launch(device, views, new LossLaunchArgs { Scale = 1.0 / Batch, Classes = 10 }, Batch)));
        PrintPhase("backward (both layers)", Time(acc, () => exec.Backward(x.View, Batch, p.View, g.View, 1u)));
        PrintPhase("adam step (fused)", Time(acc, () => opt.Step(p.View, g.View, mask.View, partials.View, 0, Regularization.None, 1e-3)));
        PrintPhase("whole step", Time(acc, () =>
        {
            exec.Forward(x.View, Batch, p.View, 1u);
            loss.Terms[0].Launch(device, views, new LossLaunchArgs { Scale = 1.0 / Batch, Classes = 10 }, Batch);
            exec.Backward(x.View, Batch, p.View, g.View, 1u);
            opt.Step(p.View, g.View, mask.View, partials.View, 0, Regularization.None, 1e-3);
        }));
        IrisStep(device);
        Console.WriteLine();
        DenseProducts(device, x.View, p.View, g.View);
        return 0;
    }

    /// <summary>Each dense kernel of the step alone, beside the scalar C# GEMM of its shape (the sum, for a fused launch).</summary>
    private static void DenseProducts(ComputeDevice device, ArrayView<float> x, ArrayView<float> p, ArrayView<float> g)
    {
        var acc = device.Accelerator;
        var fwd = device.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, DenseArgs>(DenseKernels.Forward);
        var bw = device.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, DenseArgs>(
            DenseKernels.Backward);
        using var z = acc.Allocate1D<float>(Batch * 128);
        using var a = acc.Allocate1D<float>(Batch * 128);
        using var out2 = acc.Allocate1D<float>(Batch * 10);
        using var dz2 = acc.Allocate1D(Enumerable.Range(0, Batch * 10).Select(i => (i % 7 - 3) * 0.01f).ToArray());
        using var dz1 = acc.Allocate1D<float>(Batch * 128);
        var cfg = device.GridStride(Batch * 128);
        var l1 = p.SubView(0, 65 * 128);
        var l2 = p.SubView(65 * 128, 129 * 10);
        var none = ArrayView<float>.Empty;
        fwd(cfg, x, l1, z.View, a.View, Args(device, Batch, 64, 128, 1, DenseKernels.Tiles(Batch, 128)));
        Console.WriteLine("| dense kernel (one launch each) | M × N × K | ms / epoch | GFLOP/s | scalar C# Parallel.For GEMM, GFLOP/s | kernel / C# |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|");
        PrintProduct("forward L1 (+bias, ReLU, keeps Z)", [(Batch, 128, 64)],
            Time(acc, () => fwd(cfg, x, l1, z.View, a.View, Args(device, Batch, 64, 128, 1, DenseKernels.Tiles(Batch, 128)))));
        PrintProduct("forward L2 (+bias)", [(Batch, 10, 128)],
            Time(acc, () => fwd(cfg, a.View, l2, none, out2.View, Args(device, Batch, 128, 10, 0, DenseKernels.Tiles(Batch, 10)))));
        var l2Args = Args(device, Batch, 128, 10, 1, DenseKernels.WeightTiles(128, 10)) with { InputTilesPerPass = Args(device, Batch, 128, 10, 1, DenseKernels.Tiles(Batch, 128)).TilesPerPass };
        PrintProduct("backward L2: ∂W, ∂b and ∂input (ReLU mask)", [(129, 10, Batch), (Batch, 128, 10)],
            Time(acc, () => bw(cfg, a.View, dz2.View, l2, z.View, g.SubView(65 * 128, 129 * 10), dz1.View, l2Args)));
        PrintProduct("backward L1: ∂W, ∂b", [(65, 128, Batch)],
            Time(acc, () => bw(cfg, x, dz1.View, l1, none, g.SubView(0, 65 * 128), none, Args(device, Batch, 64, 128, 0, DenseKernels.WeightTiles(64, 128)))));
    }

    /// <summary>A dense launch's arguments as NetworkExecutor makes them, for <paramref name="tiles"/> tiles.</summary>
    private static DenseArgs Args(ComputeDevice device, int rows, int inputs, int outputs, int activation, long tiles) => new()
    {
        Rows = rows, In = inputs, Out = outputs, Activation = activation,
        TilesPerPass = DenseKernels.TilesPerPass(device.IsCpu, tiles, device.MaxGroups * device.GroupSize),
    };

    /// <summary>
    /// A launch-bound job: the same step for an iris-sized MLP (4→16→3 ReLU, batch 16), as time per epoch of 150 rows
    /// (10 steps), from the best of three rounds of <see cref="Steps"/> steps.
    /// </summary>
    private static void IrisStep(ComputeDevice device)
    {
        var acc = device.Accelerator;
        var layout = new NetworkLayout(4, [16], 3, Activation.Relu);
        using var exec = new NetworkExecutor(device, layout, 16);
        var random = new Random(3);
        using var x = acc.Allocate1D(Enumerable.Range(0, 16 * 4).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray());
        using var y = acc.Allocate1D(Enumerable.Range(0, 16).Select(_ => (float)random.Next(3)).ToArray());
        using var p = acc.Allocate1D(layout.Initialize(1));
        using var g = acc.Allocate1D<float>(layout.ParameterCount);
        using var mask = acc.Allocate1D(layout.RegularizationMask(false));
        using var partials = device.AllocateZeroed<double>(64);
        var loss = CombinedLoss.Bind([new LossTermSpec("cross_entropy")], new LossBinding(TargetLayout.ClassIndex, 3, true));
        var opt = new Optimizer(device, new OptimizerSpec(OptimizerKind.Adam, 1e-3), layout.ParameterCount);
        var logits = exec.Forward(x.View, 16, p.View, 1u);
        var views = new LossViews { Predictions = logits, Targets = y.View, Weights = ArrayView<float>.Empty, Aux = ArrayView<float>.Empty, ClassWeights = ArrayView<float>.Empty, Gradient = exec.OutputGradient(16), PerItem = ArrayView<float>.Empty, Partials = partials.View };
        double ms = Time(acc, () =>
        {
            exec.Forward(x.View, 16, p.View, 1u);
            loss.Terms[0].Launch(device, views, new LossLaunchArgs { Scale = 1.0 / 16, Classes = 3 }, 16);
            exec.Backward(x.View, 16, p.View, g.View, 1u);
            opt.Step(p.View, g.View, mask.View, partials.View, 0, Regularization.None, 1e-3);
        });
        PrintPhase("iris-sized step (4→16→3, batch 16), per epoch of 10 steps", ms / Steps * 10);
    }

    /// <summary>Milliseconds per epoch: <see cref="Steps"/> calls after 50 warm-up calls, best of three.</summary>
    private static double Time(Accelerator acc, Action action)
    {
        for (int i = 0; i < 50; i++)
        {
            action();
        }
        acc.Synchronize();
        double best = double.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            var watch = Stopwatch.StartNew();
            for (int i = 0; i < Steps; i++)
            {
                action();
            }
            acc.Synchronize();
            best = Math.Min(best, watch.Elapsed.TotalMilliseconds);
        }
        return best;
    }

    private static void PrintPhase(string name, double ms) => Console.WriteLine($"| {name} | {ms:F1} |");

    private static void PrintProduct(string name, (int M, int N, int K)[] shapes, double ms)
    {
        double gflop = shapes.Sum(s => 2.0 * s.M * s.N * s.K) * Steps / 1e9;
        double scalar = gflop / (shapes.Sum(s => ScalarGemmMs(s.M, s.N, s.K)) / 1e3);
        double ours = gflop / (ms / 1e3);
        string shape = string.Join(" + ", shapes.Select(s => $"{s.M} × {s.N} × {s.K}"));
        Console.WriteLine($"| {name} | {shape} | {ms:F1} | {ours:F2} | {scalar:F2} | {ours / scalar:F2} |");
    }

    /// <summary>
    /// C[m × n] = A[m × k] · B[k × n], row-major, plain scalar C# (no explicit SIMD): <c>Parallel.For</c> over blocks of
    /// 4 rows of C, i-k-j order so the inner loop streams a row of B. Milliseconds for <see cref="Steps"/> products, best of three.
    /// </summary>
    private static double ScalarGemmMs(int m, int n, int k)
    {
        var random = new Random(2);
        float[] a = Enumerable.Range(0, m * k).Select(_ => (float)random.NextDouble()).ToArray();
        float[] b = Enumerable.Range(0, k * n).Select(_ => (float)random.NextDouble()).ToArray();
        float[] c = new float[m * n];
        void Product()
        {
            Parallel.For(0, (m + 3) / 4, block =>
            {
                for (int i = block * 4; i < Math.Min(m, block * 4 + 4); i++)
                {
                    var row = c.AsSpan(i * n, n);
                    row.Clear();
                    for (int kk = 0; kk < k; kk++)
                    {
                        float v = a[i * k + kk];
                        var bRow = b.AsSpan(kk * n, n);
                        for (int j = 0; j < n; j++)
                        {
                            row[j] += v * bRow[j];
                        }
                    }
                }
            });
        }
        for (int i = 0; i < 50; i++)
        {
            Product();
        }
        double best = double.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            var watch = Stopwatch.StartNew();
            for (int i = 0; i < Steps; i++)
            {
                Product();
            }
            best = Math.Min(best, watch.Elapsed.TotalMilliseconds);
        }
        return best;
    }
}
