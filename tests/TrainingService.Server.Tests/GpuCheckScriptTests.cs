using System.Diagnostics;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>scripts/gpu-check.sh on a machine without CUDA: one line that says so, a non-zero exit, nothing run.</summary>
public sealed class GpuCheckScriptTests
{
    [Fact]
    public async Task Without_cuda_the_gpu_check_says_so_in_one_line_and_exits_non_zero()
    {
        string root = new KubernetesManifests().Root;
        // A PATH with dirname alone: no nvidia-smi, whatever this machine has.
        string bin = Directory.CreateTempSubdirectory("gpu-check-path").FullName;
        try
        {
            File.CreateSymbolicLink(Path.Combine(bin, "dirname"), "/usr/bin/dirname");
            var start = new ProcessStartInfo("/bin/bash", [Path.Combine(root, "scripts", "gpu-check.sh"), Path.Combine(bin, "no-bundle")])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            start.Environment["PATH"] = bin;
            using var process = Process.Start(start)!;
            string output = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();

            Assert.Equal(3, process.ExitCode);
            Assert.Equal(["gpu-check: no CUDA here (nvidia-smi not found); nothing was run"], output.TrimEnd('\n').Split('\n'));
        }
        finally
        {
            Directory.Delete(bin, recursive: true);
        }
    }
}
