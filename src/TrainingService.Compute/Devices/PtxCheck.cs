using System.Reflection;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace TrainingService.Compute.Devices;

/// <summary>
/// Compiles kernels for CUDA with ILGPU's PTX backend, which needs no GPU, for the oldest and the newest architecture
/// this service supports. A device made by <see cref="ComputeDevice.CreateCudaChecked"/> runs every kernel it loads
/// through it, as the compute tests' device does: kernel code that only the CPU accelerator accepts then fails the test
/// that launched it, in CI, not a user's first GPU job.
/// </summary>
internal sealed class PtxCheck : IDisposable
{
    /// <summary>Maxwell (sm_50, PTX ISA 6.3, CUDA 10) and Hopper (sm_90, as in an H100/H200; PTX ISA 8.0, CUDA 12).</summary>
    private static readonly (CudaArchitecture Architecture, CudaInstructionSet InstructionSet)[] Targets =
        [(CudaArchitecture.SM_50, CudaInstructionSet.ISA_63), (CudaArchitecture.SM_90, CudaInstructionSet.ISA_80)];

    private readonly Context _context;
    private readonly PTXBackend[] _backends;
    private readonly Lock _lock = new();

    private PtxCheck()
    {
        _context = Context.Create(builder => builder.Cuda().EnableAlgorithms().Optimize(OptimizationLevel.O2));
        // No NVVM: ILGPU emits PTX itself; NVVM is only for its optional libdevice math.
        _backends = Targets.Select(t => new PTXBackend(_context, t.Architecture, t.InstructionSet, nvvmAPI: null!)).ToArray();
    }

    public static PtxCheck Create() => new();

    /// <summary>Compiles an explicitly grouped kernel for every target; throws, naming the kernel and target, if one refuses it.</summary>
    public void Compile(MethodInfo kernel)
    {
        lock (_lock)
        {
            for (int i = 0; i < _backends.Length; i++)
            {
                try
                {
                    _backends[i].Compile(EntryPointDescription.FromExplicitlyGroupedKernel(kernel), default(KernelSpecialization));
                }
                catch (Exception e)
                {
                    throw new InvalidOperationException(
                        $"Kernel {kernel.DeclaringType?.Name}.{kernel.Name} does not compile for CUDA {Targets[i].Architecture}: {e.Message}", e);
                }
            }
            Compiled++;
        }
    }

    /// <summary>Kernels compiled so far (each for every target).</summary>
    public int Compiled { get; private set; }

    public void Dispose()
    {
        foreach (var backend in _backends)
        {
            backend.Dispose();
        }
        _context.Dispose();
    }
}
