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
/// TensorFlow.js (WebAssembly backend) and in PyTorch eager (Debian's python3-torch, 1 and 2 threads) in the same run,
/// and the ratios of epoch times. Also an iris-sized job (150 × 4, MLP 4→16→3, batch 16), which is launch-bound.
/// </summary>
internal static class TrainBenchmark
{
    private const int IrisEpochs = 200;

    public static async Task<int> RunAsync(string[] args)
    {
        int epochs = CommandLine.Option(args, "--epochs", 3), rows = CommandLine.Option(args, "--rows", 100_000);
        int? cpuGroups = args.Contains("--cpu-groups") ? CommandLine.Option(args, "--cpu-groups", 2) : null;
        using var device = ComputeDevice.Create(DeviceKind.Auto, cpuGroups);
        Console.WriteLine($"workload: {rows:N0} rows x 64 features, MLP 64->128->10 relu, cross_entropy, adam 1e-3, batch 256, {epochs} epochs");
        Console.WriteLine($"TrainingService: {device.Description}");
        var ours = await TrainOursAsync(device, rows, 64, 128, 10, 256, epochs);
        Print(ours.Select(r => (r.Epoch, r.DurationMs, r.TrainLoss)), rows);
        var oursIris = await TrainOursAsync(device, 150, 4, 16, 3, 16, IrisEpochs);

        var runs = new List<(string Name, double Ms, double? IrisMs)>
        {
            ($"TrainingService, ILGPU {(device.IsCpu ? "CPU accelerator" : device.Description)}", MedianAfterFirst(ours.Select(r => r.DurationMs)),
                MedianAfterFirst(oursIris.Select(r => r.DurationMs))),
        };
        var rowArgs = new[] { "--epochs", epochs.ToString(CultureInfo.InvariantCulture), "--rows", rows.ToString(CultureInfo.InvariantCulture) };
        var tfjs = RunExternal("node", Path.Combine("bench", "tfjs", "train.js"), rowArgs, "node_modules");
        if (tfjs is not null)
        {
            Console.WriteLine($"TensorFlow.js: {tfjs.Value.Backend}");
            Print(tfjs.Value.Epochs, rows);
            runs.Add(($"TensorFlow.js {tfjs.Value.Backend}", MedianAfterFirst(tfjs.Value.Epochs.Select(e => e.Ms)), null));
        }
        // Debian's interpreter: python3-torch is installed for it, not for a pyenv or venv python3 earlier on PATH.
        foreach (int threads in new[] { 1, 2 })
        {
            var thread = new[] { "--threads", threads.ToString(CultureInfo.InvariantCulture) };
            var torch = RunExternal("/usr/bin/python3", Path.Combine("bench", "torch", "train.py"), [.. rowArgs, .. thread], null);
            var torchIris = RunExternal("/usr/bin/python3", Path.Combine("bench", "torch", "train.py"),
                ["--iris", "--epochs", IrisEpochs.ToString(CultureInfo.InvariantCulture), .. thread], null);
            if (torch is null || torchIris is null)
            {
                break;
            }
            Console.WriteLine($"PyTorch eager: {torch.Value.Backend}");
            Print(torch.Value.Epochs, rows);
            runs.Add(($"PyTorch eager, {torch.Value.Backend}", MedianAfterFirst(torch.Value.Epochs.Select(e => e.Ms)),
                MedianAfterFirst(torchIris.Value.Epochs.Select(e => e.Ms))));
        }
        PrintTable(runs, rows);
        return 0;
    }

    private static async Task<List<EpochRecord>> TrainOursAsync(ComputeDevice device, int rows, int features, int hidden, int classes,
        int batch, int epochs)
    {
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
        var network = new NetworkLayout(features, [hidden], classes, Activation.Relu);
        var loss = CombinedLoss.Bind([new LossTermSpec("cross_entropy")], new LossBinding(TargetLayout.ClassIndex, classes, OnLogits: true));
        var spec = new TrainerSpec(network, loss, new OptimizerSpec(OptimizerKind.Adam, 1e-3), epochs, batch, 1,
            OutputKind.Multiclass, OutputTransform.Softmax) { TrainingSetMetrics = false };
        var records = new List<EpochRecord>();
        using var trainer = new Trainer(device, spec, new TrainingSet(x, y, rows, features, 1), validation: null);
        await trainer.RunAsync(new Recorder(records), null, CancellationToken.None);
        return records;
    }

    /// <summary>The first epoch of each includes compilation (ILGPU kernels and .NET tiering; WebAssembly); compare the rest.</summary>
    private static double MedianAfterFirst(IEnumerable<double> epochMs)
    {
        var all = epochMs.ToList();
        return Statistics.Median(all.Skip(1).DefaultIfEmpty(all[0]));
    }

    private static void Print(IEnumerable<(int Epoch, double Ms, double Loss)> epochs, int rows)
    {
        foreach (var (epoch, ms, loss) in epochs)
        {
            Console.WriteLine($"  epoch {epoch}: {ms,7:F0} ms, {rows / ms * 1000,9:N0} samples/s, loss {loss:F4}");
        }
    }

    private static void PrintTable(List<(string Name, double Ms, double? IrisMs)> runs, int rows)
    {
        var torch = runs.Where(r => r.Name.StartsWith("PyTorch", StringComparison.Ordinal)).ToList();
        double? best = torch.Count > 0 ? torch.Min(r => r.Ms) : null;
        double? bestIris = torch.Count > 0 ? torch.Min(r => r.IrisMs) : null;
        Console.WriteLine();
        Console.WriteLine($"| | epoch time (median after the first) | samples/s | / PyTorch best | iris-sized epoch (150 x 4, batch 16, median of {IrisEpochs - 1}) |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        foreach (var (name, ms, iris) in runs)
        {
            string ratio = best is double b ? $"{ms / b:F2}" : "–";
            string irisText = iris is double i ? $"{i:F2} ms" + (bestIris is double bi ? $" ({i / bi:F2}×)" : "") : "–";
            Console.WriteLine($"| {name} | {ms:F0} ms | {rows / ms * 1000:N0} | {ratio} | {irisText} |");
        }
        if (best is double pytorch)
        {
            Console.WriteLine($"ratio (ours / PyTorch eager at its best thread count): {runs[0].Ms / pytorch:F2} (goal: at most 1.00)");
        }
        Console.WriteLine($"uptime: {File.ReadAllText("/proc/loadavg").Trim()}");
    }

    private sealed class Recorder(List<EpochRecord> epochs) : ITrainingObserver
    {
        public ValueTask OnEpochAsync(EpochRecord record, TrainingCheckpoint? checkpoint)
        {
            epochs.Add(record);
            return ValueTask.CompletedTask;
        }
    }

    private readonly record struct ExternalRun(string Backend, List<(int Epoch, double Ms, double Loss)> Epochs);

    /// <summary>
    /// Runs a baseline script (bench/tfjs/train.js with node, bench/torch/train.py with Debian's python3) and reads its JSON
    /// lines: one describing the backend, then one per epoch. Null, with a line saying why, when it cannot run.
    /// </summary>
    private static ExternalRun? RunExternal(string program, string relativeScript, string[] arguments, string? requiredFolder)
    {
        string? script = FindUp(relativeScript);
        if (script is null || (Path.IsPathRooted(program) && !File.Exists(program)) || (requiredFolder is not null && !Directory.Exists(Path.Combine(Path.GetDirectoryName(script)!, requiredFolder))))
        {
            Console.WriteLine($"{relativeScript} skipped: its dependencies are missing (scripts/bench.sh train installs them).");
            return null;
        }
        var start = new ProcessStartInfo(program, [script, .. arguments]) { RedirectStandardOutput = true };
        using var process = Process.Start(start)!;
        string backend = "";
        var results = new List<(int, double, double)>();
        while (process.StandardOutput.ReadLine() is { } line)
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            if (!root.TryGetProperty("epoch", out var epoch))
            {
                backend = string.Join(", ", root.EnumerateObject().Select(p => p.Name == "backend" ? p.Value.ToString() : $"{p.Name} {p.Value}"));
                continue;
            }
            results.Add((epoch.GetInt32(), root.GetProperty("ms").GetDouble(), root.GetProperty("loss").GetDouble()));
        }
        process.WaitForExit();
        return process.ExitCode == 0 && results.Count > 0 ? new ExternalRun(backend, results) : null;
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
