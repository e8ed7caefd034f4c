using System.Collections.Concurrent;
using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace TrainingService.Compute.Devices;

/// <summary>Which accelerator a process should use.</summary>
public enum DeviceKind
{
    /// <summary>CUDA when an NVIDIA GPU is present, otherwise the CPU accelerator.</summary>
    Auto,
    /// <summary>ILGPU's CPU accelerator, shaped for throughput (see <see cref="ComputeDevice"/>).</summary>
    Cpu,
    /// <summary>The first CUDA device; start-up fails when there is none.</summary>
    Cuda,
}

/// <summary>
/// The process-wide ILGPU context and accelerator, plus the cache of loaded kernels.
/// </summary>
/// <remarks>
/// One instance per process: a context costs ~100 ms, each CPU accelerator owns OS threads, and
/// ILGPU's own kernel cache holds only weak references, so loaded kernels are kept here.
/// The CPU accelerator is created as <c>CPUDevice(2, 1, cores / 2)</c>, one thread per core: on ILGPU 1.5.3 a few
/// two-thread groups that loop over the data (grid-stride) run ~150× faster than one logical thread per element, and
/// with no more threads than cores each of a training step's many small launches synchronises fewer threads.
/// Launches on one accelerator are not safe to interleave from several threads, so every caller
/// takes <see cref="AcquireAsync"/> around a launch sequence.
/// </remarks>
public sealed partial class ComputeDevice : IDisposable
{
    /// <summary>Threads per group on a GPU; a multiple of every NVIDIA warp size.</summary>
    private const int GpuGroupSize = 256;

    private readonly Context _context;
    private readonly ConcurrentDictionary<MethodInfo, Delegate> _kernels = new();
    private readonly SemaphoreSlim _gate = new(1, 1);
    private PtxCheck? _ptx;

    private ComputeDevice(Context context, Accelerator accelerator)
    {
        _context = context;
        Accelerator = accelerator;
        IsCpu = accelerator.AcceleratorType == AcceleratorType.CPU;
        GroupSize = IsCpu ? accelerator.MaxNumThreadsPerGroup : GpuGroupSize;
        // CPU: one group per multiprocessor (one per core). GPU: enough groups to fill every SM.
        MaxGroups = IsCpu ? accelerator.NumMultiprocessors : accelerator.NumMultiprocessors * 4;
    }

    /// <summary>The ILGPU accelerator all kernels run on.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>True for ILGPU's CPU accelerator.</summary>
    public bool IsCpu { get; }

    /// <summary>Threads per group used by grid-stride launches.</summary>
    public int GroupSize { get; }

    /// <summary>The largest number of groups a grid-stride launch uses; also the size of a partial-sum slot.</summary>
    public int MaxGroups { get; }

    /// <summary>A one-line description, e.g. "CPU accelerator (2 cores)" or "CUDA: NVIDIA H100".</summary>
    public string Description => IsCpu
        ? $"ILGPU CPU accelerator ({Accelerator.NumMultiprocessors} groups x {GroupSize} threads)"
        : $"ILGPU {Accelerator.AcceleratorType}: {Accelerator.Name}";

    /// <summary>Creates the context and accelerator for <paramref name="kind"/>.</summary>
    /// <param name="kind">The accelerator to use.</param>
    /// <param name="cpuGroups">Two-thread groups of the CPU accelerator; defaults to half the processor count (at least 1).</param>
    public static ComputeDevice Create(DeviceKind kind = DeviceKind.Auto, int? cpuGroups = null)
    {
        var cpu = new CPUDevice(numThreadsPerWarp: 2, numWarpsPerMultiprocessor: 1,
            numMultiprocessors: cpuGroups ?? Math.Max(1, Environment.ProcessorCount / 2));
        var context = Context.Create(builder =>
        {
            builder.CPU(cpu).EnableAlgorithms().Optimize(OptimizationLevel.O2);
            if (kind != DeviceKind.Cpu)
            {
                builder.Cuda();
            }
        });
        try
        {
            var cuda = context.GetCudaDevices();
            Accelerator accelerator = kind switch
            {
                DeviceKind.Cpu => context.CreateCPUAccelerator(0, CPUAcceleratorMode.Parallel),
                DeviceKind.Cuda when cuda.Count == 0 =>
                    throw new InvalidOperationException("Compute:Device is 'cuda' but no CUDA device was found."),
                _ when cuda.Count > 0 => context.CreateCudaAccelerator(0),
                _ => context.CreateCPUAccelerator(0, CPUAcceleratorMode.Parallel),
            };
            return new ComputeDevice(context, accelerator);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>The launch shape of a grid-stride kernel over <paramref name="elements"/> work items.</summary>
    public KernelConfig GridStride(long elements)
    {
        if (IsCpu)
        {
            return new KernelConfig(MaxGroups, GroupSize);
        }
        long groups = (elements + GroupSize - 1) / GroupSize;
        return new KernelConfig((int)Math.Clamp(groups, 1, MaxGroups), GroupSize);
    }

    /// <summary>Waits for exclusive use of the accelerator; dispose the result to release it.</summary>
    public async Task<IDisposable> AcquireAsync(CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        return new Releaser(_gate);
    }

    /// <summary>Blocking form of <see cref="AcquireAsync"/>, for constructors and Dispose.</summary>
    public IDisposable Acquire()
    {
        _gate.Wait();
        return new Releaser(_gate);
    }

    /// <summary>Allocates a zero-filled buffer (ILGPU does not clear fresh allocations).</summary>
    public MemoryBuffer1D<T, Stride1D.Dense> AllocateZeroed<T>(long length) where T : unmanaged
    {
        var buffer = Accelerator.Allocate1D<T>(Math.Max(length, 1));
        buffer.MemSetToZero();
        return buffer;
    }

    /// <summary>Copies <paramref name="data"/> to the device; null or empty gives no buffer (see <see cref="DeviceBuffers.ViewOrEmpty{T}"/>).</summary>
    public MemoryBuffer1D<T, Stride1D.Dense>? Upload<T>(T[]? data) where T : unmanaged =>
        data is { Length: > 0 } ? Accelerator.Allocate1D(data) : null;

    private TLauncher Cached<TLauncher>(Delegate kernel, Func<Accelerator, TLauncher> loader) where TLauncher : Delegate =>
        (TLauncher)_kernels.GetOrAdd(kernel.Method, method =>
        {
            _ptx?.Compile(method); // a CUDA-checked device: the kernel must compile for CUDA too
            return loader(Accelerator);
        });

    /// <summary>
    /// A CPU device that also compiles every kernel it loads for CUDA (<see cref="PtxCheck"/>), so kernel code only the CPU
    /// accelerator accepts fails where it is first launched. The compute tests run on one.
    /// </summary>
    internal static ComputeDevice CreateCudaChecked(int? cpuGroups = null)
    {
        var device = Create(DeviceKind.Cpu, cpuGroups);
        device._ptx = PtxCheck.Create();
        return device;
    }

    /// <summary>The kernel methods loaded so far (constructed generic methods included).</summary>
    internal IReadOnlyCollection<MethodInfo> LoadedKernels => (IReadOnlyCollection<MethodInfo>)_kernels.Keys;

    /// <summary>Kernels also compiled for CUDA by the PTX check; null when the check is off.</summary>
    internal int? PtxCheckedKernels => _ptx?.Compiled;

    /// <summary>Number of kernels loaded so far.</summary>
    public int LoadedKernelCount => _kernels.Count;

    /// <inheritdoc />
    public void Dispose()
    {
        _kernels.Clear();
        _ptx?.Dispose();
        Accelerator.Dispose();
        _context.Dispose();
        _gate.Dispose();
    }

    private sealed class Releaser(SemaphoreSlim gate) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                gate.Release();
            }
        }
    }
}

/// <summary>Helpers for optional device buffers: kernels read an empty view as "not given".</summary>
public static class DeviceBuffers
{
    /// <summary>The buffer's view, or <see cref="ArrayView{T}.Empty"/> when there is no buffer.</summary>
    public static ArrayView<T> ViewOrEmpty<T>(this MemoryBuffer1D<T, Stride1D.Dense>? buffer) where T : unmanaged =>
        buffer is null ? ArrayView<T>.Empty : buffer.View;
}
