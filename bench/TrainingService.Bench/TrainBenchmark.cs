using System.Diagnostics;
using TrainingService.Compute.Devices;
using TrainingService.Compute.Losses;
using TrainingService.Compute.Models;
using TrainingService.Compute.Optimizers;
using TrainingService.Compute.Training;

namespace TrainingService.Bench;

/// <summary>
/// The reference workload of the training-engine issue: 100,000 rows × 64 features, MLP 64→128→10 (ReLU),
/// cross-entropy, Adam (lr 1e−3), batch 256, through the same Trainer the worker runs.
/// </summary>
internal static class TrainBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        int epochs = Option(args, "--epochs", 3), rows = Option(args, "--rows", 100_000);
        const int features = 64, classes = 10;
        var random = new Random(42);
        var x = new float[rows * features];
        var y = new float[rows];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (float)(random.NextDouble() * 2 - 1);
        }
        for (int r = 0; r < rows; r++)
        {
            y[r] = random.Next(classes);
        }
        int? cpuGroups = args.Contains("--cpu-groups") ? Option(args, "--cpu-groups", 2) : null;
        using var device = ComputeDevice.Create(DeviceKind.Auto, cpuGroups);
        Console.WriteLine($"device: {device.Description}");
        var network = new NetworkLayout(features, [128], classes, Activation.Relu);
        var loss = CombinedLoss.Bind([new LossTermSpec("cross_entropy")], new LossBinding(TargetLayout.ClassIndex, classes, OnLogits: true));
        var spec = new TrainerSpec(network, loss, new OptimizerSpec(OptimizerKind.Adam, 1e-3), epochs, 256, 1,
            OutputKind.Multiclass, OutputTransform.Softmax);
        using var trainer = new Trainer(device, spec, new TrainingSet(x, y, rows, features, 1), validation: null);
        var observer = new Printer();
        var clock = Stopwatch.StartNew();
        await trainer.RunAsync(observer, null, CancellationToken.None);
        Console.WriteLine($"total {clock.Elapsed.TotalSeconds:F2} s");
        return 0;
    }

    private sealed class Printer : ITrainingObserver
    {
        public ValueTask OnEpochAsync(EpochRecord r, TrainingCheckpoint? checkpoint)
        {
            Console.WriteLine($"epoch {r.Epoch}: {r.DurationMs:F0} ms total, {r.SamplesPerSecond:F0} samples/s (training pass), loss {r.TrainLoss:F4}");
            return ValueTask.CompletedTask;
        }
    }

    private static int Option(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
    }
}
