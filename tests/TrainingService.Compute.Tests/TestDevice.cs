using TrainingService.Compute.Devices;

namespace TrainingService.Compute.Tests;

/// <summary>One CPU accelerator for the whole test assembly (each costs threads and a compiler warm-up).</summary>
public static class TestDevice
{
    private static readonly Lazy<ComputeDevice> Shared = new(() => ComputeDevice.Create(DeviceKind.Cpu));

    public static ComputeDevice Instance => Shared.Value;
}
