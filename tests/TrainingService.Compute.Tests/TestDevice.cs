using TrainingService.Compute.Devices;

namespace TrainingService.Compute.Tests;

/// <summary>
/// One accelerator for the whole test assembly (each costs threads and a compiler warm-up). By default the CPU
/// accelerator, which also compiles every kernel it loads for CUDA (PTX, no GPU needed): every kernel instantiation any
/// test launches. <c>TRAININGSERVICE_TEST_DEVICE=cuda</c> runs the tests on the GPU instead (scripts/gpu-check.sh).
/// </summary>
public static class TestDevice
{
    public const string Variable = "TRAININGSERVICE_TEST_DEVICE";

    private static readonly Lazy<ComputeDevice> Shared = new(() =>
        string.Equals(Environment.GetEnvironmentVariable(Variable), "cuda", StringComparison.OrdinalIgnoreCase)
            ? ComputeDevice.Create(DeviceKind.Cuda)
            : ComputeDevice.CreateCudaChecked());

    public static ComputeDevice Instance => Shared.Value;
}
