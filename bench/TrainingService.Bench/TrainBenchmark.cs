using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using TrainingService.Compute.Devices;
using TrainingService.Compute.Losses;
using TrainingService.Compute.Models;
using TrainingService.Compute.Optimizers;
using TrainingService.Compute.Training;

namespace TrainingService.Bench;

/// <summary>
/// <c>train</c>: the training-engine issue's reference workload (100,000 rows × 64 features, MLP 64→128→10 with ReLU,
/// cross-entropy, Adam lr 1e−3, batch 256) through the same Trainer the worker runs, then the same workload in
/// TensorFlow.js (WebAssembly backend) in the same run, and the ratio of epoch times.
/// </summary>
internal static class TrainBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        int epochs = CommandLine.Option(args, "--epochs", 3), rows = CommandLine.Option(args, "--rows", 100_000);
        int? cpuGroups = args.Contains("--cpu-groups") ? CommandLine.Option(args, "--cpu-groups", 2) : null;
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
        using var device = ComputeDevice.Create(DeviceKind.Auto, cpuGroups);
        Console.WriteLine($"workload: {rows:N0} rows x {features} features, MLP {features}->128->{classes} relu, cross_entropy, adam 1e-3, batch 256, {epochs} epochs");
        Console.WriteLine($"TrainingService: {device.Description}");
        var network = new NetworkLayout(features, [128], classes, Activation.Relu);
        var loss = CombinedLoss.Bind([new LossTermSpec("cross_entropy")], new LossBinding(TargetLayout.ClassIndex, classes, OnLogits: true));
        var spec = new TrainerSpec(network, loss, new OptimizerSpec(OptimizerKind.Adam, 1e-3), epochs, 256, 1,
            OutputKind.Multiclass, OutputTransform.Softmax) { TrainingSetMetrics = false };
        var ours = new List<EpochRecord>();
        using (var trainer = new Trainer(device, spec, new TrainingSet(x, y, rows, features, 1), validation: null))
        {
            await trainer.RunAsync(new Recorder(ours), null, CancellationToken.None);
        }
        foreach (var r in ours)
        {
            Console.WriteLine($"  epoch {r.Epoch}: {r.DurationMs,7:F0} ms, {r.SamplesPerSecond,9:N0} samples/s, loss {r.TrainLoss:F4}");
        }

        var tfjs = RunTensorFlowJs(epochs, rows);
        if (tfjs is null)
        {
            return 0;
        }
        Console.WriteLine($"TensorFlow.js: {tfjs.Value.Backend}");
        foreach (var (epoch, ms, loss_) in tfjs.Value.Epochs)
        {
            Console.WriteLine($"  epoch {epoch}: {ms,7:F0} ms, {rows / ms * 1000,9:N0} samples/s, loss {loss_:F4}");
        }
        // The first epoch of each includes compilation (ILGPU kernels and .NET tiering; WebAssembly); compare the rest.
        double ourTime = Statistics.Median(ours.Skip(1).Select(r => r.DurationMs).DefaultIfEmpty(ours[0].DurationMs));
        double theirTime = Statistics.Median(tfjs.Value.Epochs.Skip(1).Select(e => e.Ms).DefaultIfEmpty(tfjs.Value.Epochs[0].Ms));
        Console.WriteLine();
        Console.WriteLine("| | epoch time (median after the first) | samples/s |");
        Console.WriteLine("|---|---:|---:|");
        Console.WriteLine($"| TrainingService, ILGPU {(device.IsCpu ? "CPU accelerator" : device.Description)} | {ourTime:F0} ms | {rows / ourTime * 1000:N0} |");
        Console.WriteLine($"| TensorFlow.js {tfjs.Value.Backend} | {theirTime:F0} ms | {rows / theirTime * 1000:N0} |");
        Console.WriteLine($"ratio (ours / TF.js epoch time): {ourTime / theirTime:F2} (goal: at most 1.00)");
        return 0;
    }

    private sealed class Recorder(List<EpochRecord> epochs) : ITrainingObserver
    {
        public ValueTask OnEpochAsync(EpochRecord record, TrainingCheckpoint? checkpoint)
        {
            epochs.Add(record);
            return ValueTask.CompletedTask;
        }
    }

    private readonly record struct TfjsRun(string Backend, List<(int Epoch, double Ms, double Loss)> Epochs);

    /// <summary>Runs bench/tfjs/train.js with node (after <c>npm ci --prefix bench/tfjs</c>) and reads its JSON lines.</summary>
    private static TfjsRun? RunTensorFlowJs(int epochs, int rows)
    {
        string? script = FindUp(Path.Combine("bench", "tfjs", "train.js"));
        if (script is null || !Directory.Exists(Path.Combine(Path.GetDirectoryName(script)!, "node_modules")))
        {
            Console.WriteLine("TensorFlow.js baseline skipped: run `npm ci --prefix bench/tfjs` first (scripts/bench.sh does).");
            return null;
        }
        var start = new ProcessStartInfo("node", [script, "--epochs", epochs.ToString(CultureInfo.InvariantCulture),
            "--rows", rows.ToString(CultureInfo.InvariantCulture)]) { RedirectStandardOutput = true };
        using var process = Process.Start(start)!;
        string backend = "";
        var results = new List<(int, double, double)>();
        while (process.StandardOutput.ReadLine() is { } line)
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            if (root.TryGetProperty("backend", out var name))
            {
                backend = $"{name.GetString()} (SIMD {root.GetProperty("simd").GetBoolean()}, threads {root.GetProperty("threads").GetBoolean()})";
                continue;
            }
            results.Add((root.GetProperty("epoch").GetInt32(), root.GetProperty("ms").GetDouble(), root.GetProperty("loss").GetDouble()));
        }
        process.WaitForExit();
        return new TfjsRun(backend, results);
    }

    private static string? FindUp(string relative)
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            string candidate = Path.Combine(directory.FullName, relative);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

}
