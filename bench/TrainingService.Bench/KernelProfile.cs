using System.Diagnostics;
using ILGPU;
using ILGPU.Runtime;
using TrainingService.Compute.Devices;
using TrainingService.Compute.Losses;
using TrainingService.Compute.Models;
using TrainingService.Compute.Optimizers;

namespace TrainingService.Bench;

internal static class KernelProfile
{
    private static void EmptyKernel(ArrayView<float> a, int n) { }

    public static int Run()
    {
        using var device = ComputeDevice.Create(DeviceKind.Cpu);
        var layout = new NetworkLayout(64, [128], 10, Activation.Relu);
        using var exec = new NetworkExecutor(device, layout, 256);
        var acc = device.Accelerator;
        using var x = acc.Allocate1D<float>(256 * 64);
        using var y = acc.Allocate1D<float>(256);
        using var p = acc.Allocate1D(layout.Initialize(1));
        using var g = acc.Allocate1D<float>(layout.ParameterCount);
        using var mask = acc.Allocate1D(layout.RegularizationMask(false));
        using var partials = device.AllocateZeroed<double>(64);
        y.MemSetToZero(); x.MemSetToZero();
        var loss = CombinedLoss.Bind([new LossTermSpec("cross_entropy")], new LossBinding(TargetLayout.ClassIndex, 10, true));
        var opt = new Optimizer(device, new OptimizerSpec(OptimizerKind.Adam, 1e-3), layout.ParameterCount);
        void Time(string name, Action a) {
            for (int i = 0; i < 50; i++) a();
            var sw = Stopwatch.StartNew(); for (int i = 0; i < 391; i++) a(); acc.Synchronize();
            Console.WriteLine($"{name,-28} {sw.Elapsed.TotalMilliseconds,8:F1} ms / 391");
        }
        Time("forward (2 layers)", () => exec.Forward(x.View, 256, p.View, 1u));
        var empty = device.Load<ArrayView<float>, int>(EmptyKernel);
        Time("empty launch", () => empty(device.GridStride(1), x.View, 0));
        var fwd = device.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, DenseArgs>(DenseKernels.Forward);
        using var z = acc.Allocate1D<float>(256 * 128); using var a = acc.Allocate1D<float>(256 * 128);
        var cfg = device.GridStride(64 * 32);
        Time("L1 identity, no preact", () => fwd(cfg, x.View, p.View.SubView(0, 65 * 128), ArrayView<float>.Empty, a.View, new DenseArgs { Rows = 256, In = 64, Out = 128 }));
        Time("L1 relu + preact", () => fwd(cfg, x.View, p.View.SubView(0, 65 * 128), z.View, a.View, new DenseArgs { Rows = 256, In = 64, Out = 128, Activation = 1 }));
        Time("L2 128->10", () => fwd(cfg, a.View, p.View.SubView(65 * 128, 129 * 10), ArrayView<float>.Empty, z.View.SubView(0, 2560), new DenseArgs { Rows = 256, In = 128, Out = 10 }));
        Time("L2 128->8 (no edge)", () => fwd(cfg, a.View, p.View.SubView(65 * 128, 129 * 8), ArrayView<float>.Empty, z.View.SubView(0, 2048), new DenseArgs { Rows = 256, In = 128, Out = 8 }));
        var logits = exec.Forward(x.View, 256, p.View, 1u);
        var views = new LossViews { Predictions = logits, Targets = y.View, Weights = ArrayView<float>.Empty, Aux = ArrayView<float>.Empty, ClassWeights = ArrayView<float>.Empty, Gradient = exec.OutputGradient(256), PerItem = ArrayView<float>.Empty, Partials = partials.View };
        Time("loss", () => loss.Terms[0].Launch(device, views, new LossLaunchArgs { Scale = 1.0 / 256, Classes = 10 }, 256));
        Time("backward (2 layers)", () => exec.Backward(x.View, 256, p.View, g.View, 1u));
        var bw = device.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, DenseArgs>(DenseKernels.BackwardWeights);
        var bi = device.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, DenseArgs>(DenseKernels.BackwardInput);
        using var dz2 = acc.Allocate1D<float>(2560); using var dz1 = acc.Allocate1D<float>(256 * 128);
        Time("bw L2 (129x10, k=256)", () => bw(cfg, a.View, dz2.View, g.View.SubView(65 * 128, 1290), new DenseArgs { Rows = 256, In = 128, Out = 10 }));
        Time("bi L2->L1 (256x128, k=10)", () => bi(cfg, dz2.View, p.View.SubView(65 * 128, 1290), z.View, dz1.View, new DenseArgs { Rows = 256, In = 128, Out = 10, Activation = 1 }));
        Time("bi identity", () => bi(cfg, dz2.View, p.View.SubView(65 * 128, 1290), z.View, dz1.View, new DenseArgs { Rows = 256, In = 128, Out = 10, Activation = 0 }));
        Time("bw L1 (65x128, k=256)", () => bw(cfg, x.View, dz1.View, g.View.SubView(0, 65 * 128), new DenseArgs { Rows = 256, In = 64, Out = 128 }));
        Time("adam step (fused)", () => opt.Step(p.View, g.View, mask.View, partials.View, 0, Regularization.None, 1e-3));
        return 0;
    }
}
