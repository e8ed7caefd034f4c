using TrainingService.Compute.Devices;

namespace TrainingService.Compute.Tests;

/// <summary>One CPU accelerator for the whole test assembly (each costs threads and a compiler warm-up).</summary>
public static class TestDevice
{
    // It also compiles every kernel it loads for CUDA (PTX, no GPU needed): every kernel instantiation any test launches.
    private static readonly Lazy<ComputeDevice> Shared = new(() => ComputeDevice.CreateCudaChecked());

    public static ComputeDevice Instance => Shared.Value;
}
