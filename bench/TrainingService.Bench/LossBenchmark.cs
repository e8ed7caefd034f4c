using System.Diagnostics;
using System.Numerics;
using ILGPU;
using ILGPU.Runtime;
using TrainingService.Compute.Devices;
using TrainingService.Compute.Losses;

namespace TrainingService.Bench;

/// <summary>
/// <c>losses</c>: loss + gradient throughput of every catalogue loss through the trainer's kernels
/// (<see cref="LossTerm.Launch"/>), against a hand-written parallel C# version of the same math (SIMD where natural),
/// the same C# without SIMD, and a memory-copy floor, all on the same data in one run.
/// </summary>
/// <remarks>
/// The scalar column is there because ILGPU 1.5's CPU accelerator runs a kernel as ordinary scalar .NET code: a plain
/// scalar loop over spans is about the best such code can do, so it shows how much of a gap is SIMD and how much is
/// the kernel's own overhead.
/// </remarks>
/// <remarks>
/// The memory-copy floor moves exactly the bytes the kernel must touch: per core chunk,
/// <c>Span.CopyTo</c> (memmove) of the predictions into a gradient-sized destination, plus a SIMD
/// read-only pass over the targets. It computes nothing, so no loss can beat it by much.
/// </remarks>
internal static class LossBenchmark
{
    private const double ElementwiseGoal = 1.5, CrossEntropyGoal = 2.0, NoGoal = double.NaN;
    private const double Tolerance = 1e-5;
    private const int WarmUpRuns = 40, WarmUpItems = 4096;
    private static readonly TimeSpan WarmUpPause = TimeSpan.FromMilliseconds(300);

    /// <summary>One row of the catalogue as benchmarked: inputs valid for its domain and the C# baseline.</summary>
    private sealed record LossCase(string Label, string Name, bool IsRowLoss, Func<Random, float> Prediction,
        Func<Random, float> Target, LossChunk Baseline, double Goal, LossChunk? ScalarBaseline = null);

    private sealed record Measurement(LossCase Case, int Elements, double KernelSeconds, double BaselineSeconds,
        double ScalarSeconds, double CopySeconds, double KernelLoss, double BaselineLoss, double GradientError)
    {
        /// <summary>The accelerator's own copy of the same bytes (on a GPU, its memory bandwidth; on the CPU accelerator, its copy).</summary>
        public double DeviceCopySeconds { get; init; }
        public double DeviceCopyRatio => KernelSeconds / DeviceCopySeconds;
        public double LossError => Math.Abs(KernelLoss - BaselineLoss) / Math.Max(Math.Abs(BaselineLoss), double.Epsilon);
        public bool Matches => LossError <= Tolerance && GradientError <= Tolerance;
        public double BaselineRatio => KernelSeconds / BaselineSeconds;
        public double CopyRatio => KernelSeconds / CopySeconds;
    }

    public static int Run(string[] args)
    {
        int[] sizes = CommandLine.Options(args, "--sizes", [1_000_000, 10_000_000]);
        int classes = CommandLine.Option(args, "--classes", 10), repeats = CommandLine.Option(args, "--repeats", 5);
        using var device = ComputeDevice.Create(DeviceKind.Auto);
        Console.WriteLine($"device: {device.Description}; C# baseline and memcpy: Parallel.For, {Environment.ProcessorCount} chunks, Vector<float>.Count = {Vector<float>.Count}");
        Console.WriteLine($"goals (issue): every elementwise loss within {ElementwiseGoal}x of the C# baseline, cross-entropy within {CrossEntropyGoal}x");
        Console.WriteLine($"timing: median of {repeats} interleaved runs after a warm-up ({WarmUpRuns} runs on {WarmUpItems} items, " +
            $"{WarmUpPause.TotalMilliseconds} ms pause, 2 full runs); kernel = term.Launch + Accelerator.Synchronize; " +
            "memcpy = predictions copied into a gradient-sized array + targets read (the bytes the kernel must move)");

        using var workspace = new LossWorkspace(device, sizes.Max(), classes);
        var results = new List<Measurement>();
        foreach (int n in sizes)
        {
            foreach (var lossCase in Cases(classes))
            {
                var result = Measure(device, workspace, lossCase, n, classes, repeats);
                Console.Error.WriteLine($"  {lossCase.Label,-16} N={n,-9} kernel {result.KernelSeconds * 1e3,8:F2} ms, " +
                    $"C# {result.BaselineSeconds * 1e3,8:F2} ms, memcpy {result.CopySeconds * 1e3,7:F2} ms");
                results.Add(result);
            }
        }
        PrintTable(results);
        return ReportMismatches(results) ? 1 : 0;
    }

    private static IReadOnlyList<LossCase> Cases(int classes)
    {
        Func<Random, float> classIndex = r => r.Next(classes);
        // The bench binds every loss with its catalogue defaults; the baselines hard-code the same values.
        return
        [
            Vectorised<LossBaselines.Mse>("mse", Real, Real),
            Vectorised<LossBaselines.L1>("l1", Real, Real),
            Vectorised<LossBaselines.Huber>("huber", Real, Real),
            Vectorised<LossBaselines.SmoothL1>("smooth_l1", Real, Real),
            Elementwise("log_cosh", Real, Real, LossBaselines.Scalar<LossBaselines.LogCosh>),
            Elementwise("poisson_nll", LogRate, Count, LossBaselines.Scalar<LossBaselines.PoissonLogInput>),
            Vectorised<LossBaselines.GaussianFixedVariance>("gaussian_nll", Real, Real),
            Elementwise("bce", Probability, Label, LossBaselines.Scalar<LossBaselines.Bce>),
            Elementwise("bce_with_logits", Logit, Label, LossBaselines.Scalar<LossBaselines.BceWithLogits>),
            Vectorised<LossBaselines.Hinge>("hinge", Real, Label),
            Vectorised<LossBaselines.SquaredHinge>("squared_hinge", Real, Label),
            Elementwise("focal", Logit, Label, LossBaselines.Scalar<LossBaselines.SigmoidFocal>, "focal (binary)"),
            new("cross_entropy", "cross_entropy", true, Logit, classIndex,
                (x, y, g, s) => LossBaselines.CrossEntropy(x, y, g, s, classes), CrossEntropyGoal),
            new("multi_margin", "multi_margin", true, Real, classIndex,
                (x, y, g, s) => LossBaselines.MultiMargin(x, y, g, s, classes), NoGoal),
            new("focal (softmax)", "focal", true, Logit, classIndex,
                (x, y, g, s) => LossBaselines.SoftmaxFocal(x, y, g, s, classes), NoGoal),
            new("nll", "nll", true, LogProbability, classIndex,
                (x, y, g, s) => LossBaselines.Nll(x, y, g, s, classes), NoGoal),
        ];
    }

    private static LossCase Elementwise(string name, Func<Random, float> prediction, Func<Random, float> target,
        LossChunk baseline, string? label = null) =>
        new(label ?? name, name, false, prediction, target, baseline, ElementwiseGoal);

    /// <summary>An elementwise loss whose baseline is SIMD, timed also as scalar C#.</summary>
    private static LossCase Vectorised<TLoss>(string name, Func<Random, float> prediction, Func<Random, float> target)
        where TLoss : LossBaselines.IVectorLoss =>
        new(name, name, false, prediction, target, LossBaselines.Simd<TLoss>, ElementwiseGoal, LossBaselines.Scalar<TLoss>);

    // Input generators, one per domain. Real and logit ranges cover both branches of every kinked loss.
    private static float Real(Random r) => Uniform(r, -2, 2);
    private static float Logit(Random r) => Uniform(r, -4, 4);
    private static float LogRate(Random r) => Uniform(r, -2, 2);
    private static float Count(Random r) => r.Next(6);
    private static float Probability(Random r) => Uniform(r, 1e-3, 1 - 1e-3);
    private static float Label(Random r) => r.Next(2);
    private static float LogProbability(Random r) => Uniform(r, -6, 0);
    private static float Uniform(Random r, double low, double high) => (float)(low + (high - low) * r.NextDouble());

    private static Measurement Measure(ComputeDevice device, LossWorkspace workspace, LossCase lossCase, int n, int classes,
        int repeats)
    {
        int perItem = lossCase.IsRowLoss ? classes : 1;
        int items = n / perItem, elements = items * perItem;
        var term = CombinedLoss.Bind([new LossTermSpec(lossCase.Name)],
            new LossBinding(lossCase.IsRowLoss ? TargetLayout.ClassIndex : TargetLayout.Elementwise, perItem, OnLogits: false)).Terms[0];
        workspace.Fill(lossCase, elements, items);
        var sample = new LossSample(workspace.Predictions.AsSpan(0, elements), workspace.Targets.AsSpan(0, items), items, perItem);
        term.Validate(sample);
        double scale = term.ReductionScale(Reduction.Mean, sample);
        workspace.Upload(term, elements, items);
        var args = new LossLaunchArgs { Scale = term.Weight * scale, Classes = perItem };
        // Every loss here divides its mean by the number of items (no class weights, no ignored rows).
        double baselineScale = 1.0 / items, baselineSum = 0.0;

        // Each workload takes the number of items (rows, or elements) to process from the start of the data.
        var workloads = new List<Action<int>>
        {
            count =>
            {
                term.Launch(device, workspace.Views(count * perItem, count), args, count);
                device.Accelerator.Synchronize();
            },
            count => baselineSum = workspace.RunBaseline(lossCase.Baseline, count, perItem, baselineScale),
            count => workspace.CopyFloor(count * perItem, count),
            count =>
            {
                workspace.DeviceCopy(count * perItem, count);
                device.Accelerator.Synchronize();
            },
        };
        if (lossCase.ScalarBaseline is { } scalar)
        {
            // It writes the same gradient as the SIMD baseline, so the gradient check below is unaffected.
            workloads.Add(count => workspace.RunBaseline(scalar, count, perItem, baselineScale));
        }
        double[] medians = Medians(repeats, items, workloads);
        double kernel = medians[0], baseline = medians[1], copy = medians[2];
        double scalarSeconds = medians.Length > 4 ? medians[4] : baseline; // the baseline is scalar already

        double kernelLoss = workspace.Partials.GetAsArray1D().Sum() * scale;
        return new Measurement(lossCase, elements, kernel, baseline, scalarSeconds, copy, kernelLoss, baselineSum * baselineScale,
            workspace.GradientError(elements)) { DeviceCopySeconds = medians[3] };
    }

    /// <summary>Median seconds of each workload over <paramref name="items"/>, after <see cref="WarmUp"/>; runs are interleaved.</summary>
    private static double[] Medians(int repeats, int items, IReadOnlyList<Action<int>> workloads)
    {
        foreach (var workload in workloads)
        {
            WarmUp(workload, items);
        }
        var times = workloads.Select(_ => new double[repeats]).ToArray();
        // Interleaved so that a slow spell of the VM hits every workload alike.
        for (int i = 0; i < repeats; i++)
        {
            for (int w = 0; w < workloads.Count; w++)
            {
                long start = Stopwatch.GetTimestamp();
                workloads[w](items);
                times[w][i] = Stopwatch.GetElapsedTime(start).TotalSeconds;
            }
        }
        return times.Select(Statistics.Median).ToArray();
    }

    /// <summary>
    /// ILGPU's CPU kernels are emitted IL, so .NET tiers them like any code: the first ~30 calls of a method run
    /// unoptimised (tier 0, then on-stack replacement), and the optimised version is installed after ~100 ms
    /// without new tier-0 work. With only two full-size warm-up runs, row-loss kernels at N = 10⁶ measured
    /// 10–30× slower in their first timed runs than in their last. So: many small runs (ILGPU compiles on the
    /// first), a quiet pause for the tier-1 JIT, then two full-size runs (caches, page faults).
    /// </summary>
    private static void WarmUp(Action<int> workload, int items)
    {
        int small = Math.Min(items, WarmUpItems);
        for (int i = 0; i < WarmUpRuns; i++)
        {
            workload(small);
        }
        Thread.Sleep(WarmUpPause);
        workload(items);
        workload(items);
    }

    private static void PrintTable(List<Measurement> results)
    {
        Console.WriteLine();
        Console.WriteLine("| loss | N | kernel elements/s | C# baseline elements/s | scalar C# elements/s | memcpy elements/s | device copy elements/s | kernel/C# time ratio | scalar C#/C# time ratio | kernel/memcpy time ratio | kernel/device copy time ratio | goal | loss check |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
        foreach (var r in results)
        {
            Console.WriteLine($"| {r.Case.Label} | {r.Elements:N0} | {Rate(r.Elements, r.KernelSeconds)} | {Rate(r.Elements, r.BaselineSeconds)} | " +
                $"{Rate(r.Elements, r.ScalarSeconds)} | {Rate(r.Elements, r.CopySeconds)} | {Rate(r.Elements, r.DeviceCopySeconds)} | {r.BaselineRatio:F2}x | " +
                $"{r.ScalarSeconds / r.BaselineSeconds:F2}x | {r.CopyRatio:F2}x | {r.DeviceCopyRatio:F2}x | {Verdict(r)} | {(r.Matches ? "ok" : "MISMATCH")} |");
        }
    }

    private static string Rate(int elements, double seconds) => $"{elements / seconds / 1e6:F1} M";

    private static string Verdict(Measurement r) => double.IsNaN(r.Case.Goal)
        ? "– (no goal)"
        : $"{(r.BaselineRatio <= r.Case.Goal ? "OK" : "MISS")} (≤{r.Case.Goal}x)";

    private static bool ReportMismatches(List<Measurement> results)
    {
        var mismatches = results.Where(r => !r.Matches).ToList();
        Console.WriteLine();
        Console.WriteLine(mismatches.Count == 0
            ? $"loss check: kernel and C# baseline agree within {Tolerance:0e0} relative on every row (loss value and max gradient difference)."
            : $"!!! {mismatches.Count} MISMATCH(ES) between kernel and C# baseline (tolerance {Tolerance:0e0} relative):");
        foreach (var r in mismatches)
        {
            Console.WriteLine($"!!! MISMATCH {r.Case.Label} N={r.Elements}: kernel loss {r.KernelLoss:R}, C# loss {r.BaselineLoss:R} " +
                $"(relative {r.LossError:E2}); max gradient difference {r.GradientError:E2} of the largest gradient");
        }
        return mismatches.Count > 0;
    }

    /// <summary>
    /// Host arrays and device buffers for the largest size, allocated once; each case uses a prefix of them.
    /// On the CPU accelerator the device buffers are ordinary native memory, so the kernel and the C# code read
    /// the same kind of memory.
    /// </summary>
    private sealed class LossWorkspace : IDisposable
    {
        private readonly MemoryBuffer1D<float, Stride1D.Dense> _predictions, _targets, _gradient, _classWeights, _deviceTargetCopy,
            _devicePredictionCopy;
        private readonly float[] _baselineGradient, _kernelGradient, _copyDestination;
        private readonly double[] _chunkSums = new double[Environment.ProcessorCount];
        private readonly float[] _copySink = new float[Environment.ProcessorCount];
        private int _classWeightCount;

        public LossWorkspace(ComputeDevice device, int elements, int classes)
        {
            var accelerator = device.Accelerator;
            _predictions = accelerator.Allocate1D<float>(elements);
            _targets = accelerator.Allocate1D<float>(elements);
            _gradient = accelerator.Allocate1D<float>(elements);
            _deviceTargetCopy = accelerator.Allocate1D<float>(elements);
            _devicePredictionCopy = accelerator.Allocate1D<float>(elements);
            _classWeights = accelerator.Allocate1D<float>(classes);
            Partials = device.AllocateZeroed<double>(device.MaxGroups);
            Predictions = new float[elements];
            Targets = new float[elements];
            _baselineGradient = new float[elements];
            _kernelGradient = new float[elements];
            _copyDestination = new float[elements];
        }

        public float[] Predictions { get; }
        public float[] Targets { get; }
        public MemoryBuffer1D<double, Stride1D.Dense> Partials { get; }

        /// <summary>Fresh inputs from a fixed seed, so every size and run sees the same distribution.</summary>
        public void Fill(LossCase lossCase, int elements, int targets)
        {
            var random = new Random(42);
            for (int i = 0; i < elements; i++)
            {
                Predictions[i] = lossCase.Prediction(random);
            }
            for (int i = 0; i < targets; i++)
            {
                Targets[i] = lossCase.Target(random);
            }
        }

        /// <summary>Copies the inputs (and the term's class weights) to the device.</summary>
        public void Upload(LossTerm term, int elements, int targets)
        {
            Prefix(_predictions, elements).CopyFromCPU<float, ArrayView<float>>(Predictions.AsSpan(0, elements));
            Prefix(_targets, targets).CopyFromCPU<float, ArrayView<float>>(Targets.AsSpan(0, targets));
            _classWeightCount = 0;
            if (term.IsRowLoss && term.ClassWeights is { } weights)
            {
                _classWeightCount = weights.Length;
                Prefix(_classWeights, weights.Length).CopyFromCPU<float, ArrayView<float>>(Array.ConvertAll(weights, w => (float)w));
            }
        }

        /// <summary>The kernel's views over the first <paramref name="elements"/> predictions and <paramref name="targets"/> targets.</summary>
        public LossViews Views(int elements, int targets) => new()
        {
            Predictions = Prefix(_predictions, elements),
            Targets = Prefix(_targets, targets),
            Weights = ArrayView<float>.Empty,
            Aux = ArrayView<float>.Empty,
            ClassWeights = _classWeightCount > 0 ? Prefix(_classWeights, _classWeightCount) : ArrayView<float>.Empty,
            Gradient = Prefix(_gradient, elements),
            PerItem = ArrayView<float>.Empty,
            Partials = Partials.View,
        };

        /// <summary>Runs <paramref name="chunk"/> on one contiguous range of items per core; returns the loss sum.</summary>
        public double RunBaseline(LossChunk chunk, int items, int perItem, double scale)
        {
            Parallel.For(0, _chunkSums.Length, p =>
            {
                var (start, count) = Split(items, _chunkSums.Length, p);
                _chunkSums[p] = chunk(Predictions.AsSpan(start * perItem, count * perItem), Targets.AsSpan(start, count),
                    _baselineGradient.AsSpan(start * perItem, count * perItem), scale);
            });
            return _chunkSums.Sum();
        }

        /// <summary>The memory floor: predictions → gradient-sized destination, plus one read of the targets.</summary>
        /// <summary>
        /// The accelerator copies the predictions and the targets into buffers of their own: the bytes the kernel
        /// must read and write, moved by the device (its memory bandwidth on a GPU). Call <c>Synchronize</c> after.
        /// </summary>
        public void DeviceCopy(int elements, int targets)
        {
            Prefix(_predictions, elements).CopyTo(Prefix(_devicePredictionCopy, elements)); // not the gradient: the gradient check reads it
            Prefix(_targets, targets).CopyTo(Prefix(_deviceTargetCopy, targets));
        }

        public void CopyFloor(int elements, int targets)
        {
            Parallel.For(0, _copySink.Length, p =>
            {
                var (start, count) = Split(elements, _copySink.Length, p);
                Predictions.AsSpan(start, count).CopyTo(_copyDestination.AsSpan(start, count));
                var (targetStart, targetCount) = Split(targets, _copySink.Length, p);
                _copySink[p] = LossBaselines.ReadAll(Targets.AsSpan(targetStart, targetCount));
            });
        }

        /// <summary>max |kernel − C#| over the gradient, relative to the largest C# gradient element.</summary>
        public double GradientError(int elements)
        {
            Prefix(_gradient, elements).CopyToCPU<float, ArrayView<float>>(_kernelGradient.AsSpan(0, elements));
            double worst = 0.0, largest = 0.0;
            for (int i = 0; i < elements; i++)
            {
                worst = Math.Max(worst, Math.Abs((double)_kernelGradient[i] - _baselineGradient[i]));
                largest = Math.Max(largest, Math.Abs(_baselineGradient[i]));
            }
            return worst / Math.Max(largest, double.Epsilon);
        }

        private static ArrayView<float> Prefix(MemoryBuffer1D<float, Stride1D.Dense> buffer, int length) =>
            buffer.View.SubView(0, length);

        private static (int Start, int Count) Split(int total, int parts, int part)
        {
            int start = (int)((long)total * part / parts), end = (int)((long)total * (part + 1) / parts);
            return (start, end - start);
        }

        public void Dispose()
        {
            _predictions.Dispose();
            _targets.Dispose();
            _gradient.Dispose();
            _classWeights.Dispose();
            _deviceTargetCopy.Dispose();
            _devicePredictionCopy.Dispose();
            Partials.Dispose();
        }
    }
}
