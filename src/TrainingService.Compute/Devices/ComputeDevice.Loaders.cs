using ILGPU;
using ILGPU.Runtime;

namespace TrainingService.Compute.Devices;

// Typed, cached kernel loaders: one overload per kernel arity, each loading the kernel at most once per process.
public sealed partial class ComputeDevice
{
    /// <summary>Loads (once) an explicitly grouped kernel with 1 parameter.</summary>
    public Action<KernelConfig, T1> Load<T1>(Action<T1> kernel)
        where T1 : struct =>
        Cached(kernel, a => a.LoadStreamKernel(kernel));

    /// <summary>Loads (once) an explicitly grouped kernel with 2 parameters.</summary>
    public Action<KernelConfig, T1, T2> Load<T1, T2>(Action<T1, T2> kernel)
        where T1 : struct where T2 : struct =>
        Cached(kernel, a => a.LoadStreamKernel(kernel));

    /// <summary>Loads (once) an explicitly grouped kernel with 3 parameters.</summary>
    public Action<KernelConfig, T1, T2, T3> Load<T1, T2, T3>(Action<T1, T2, T3> kernel)
        where T1 : struct where T2 : struct where T3 : struct =>
        Cached(kernel, a => a.LoadStreamKernel(kernel));

    /// <summary>Loads (once) an explicitly grouped kernel with 4 parameters.</summary>
    public Action<KernelConfig, T1, T2, T3, T4> Load<T1, T2, T3, T4>(Action<T1, T2, T3, T4> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct =>
        Cached(kernel, a => a.LoadStreamKernel(kernel));

    /// <summary>Loads (once) an explicitly grouped kernel with 5 parameters.</summary>
    public Action<KernelConfig, T1, T2, T3, T4, T5> Load<T1, T2, T3, T4, T5>(Action<T1, T2, T3, T4, T5> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct =>
        Cached(kernel, a => a.LoadStreamKernel(kernel));

    /// <summary>Loads (once) an explicitly grouped kernel with 6 parameters.</summary>
    public Action<KernelConfig, T1, T2, T3, T4, T5, T6> Load<T1, T2, T3, T4, T5, T6>(Action<T1, T2, T3, T4, T5, T6> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct =>
        Cached(kernel, a => a.LoadStreamKernel(kernel));

    /// <summary>Loads (once) an explicitly grouped kernel with 7 parameters.</summary>
    public Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7> Load<T1, T2, T3, T4, T5, T6, T7>(Action<T1, T2, T3, T4, T5, T6, T7> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct =>
        Cached(kernel, a => a.LoadStreamKernel(kernel));

    /// <summary>Loads (once) an explicitly grouped kernel with 8 parameters.</summary>
    public Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8> Load<T1, T2, T3, T4, T5, T6, T7, T8>(Action<T1, T2, T3, T4, T5, T6, T7, T8> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct =>
        Cached(kernel, a => a.LoadStreamKernel(kernel));

    /// <summary>Loads (once) an explicitly grouped kernel with 9 parameters.</summary>
    public Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9> Load<T1, T2, T3, T4, T5, T6, T7, T8, T9>(Action<T1, T2, T3, T4, T5, T6, T7, T8, T9> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct =>
        Cached(kernel, a => a.LoadStreamKernel(kernel));

    /// <summary>Loads (once) an explicitly grouped kernel with 10 parameters.</summary>
    public Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10> Load<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>(Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct =>
        Cached(kernel, a => a.LoadStreamKernel(kernel));

    /// <summary>Loads (once) an explicitly grouped kernel with 11 parameters.</summary>
    public Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11> Load<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11>(Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct =>
        Cached(kernel, a => a.LoadStreamKernel(kernel));

    /// <summary>Loads (once) an explicitly grouped kernel with 12 parameters.</summary>
    public Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12> Load<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12>(Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct where T12 : struct =>
        Cached(kernel, a => a.LoadStreamKernel(kernel));

    /// <summary>Loads (once) an explicitly grouped kernel with 13 parameters.</summary>
    public Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13> Load<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13>(Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct where T12 : struct where T13 : struct =>
        Cached(kernel, a => a.LoadStreamKernel(kernel));

    /// <summary>Loads (once) an explicitly grouped kernel with 14 parameters.</summary>
    public Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14> Load<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14>(Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct where T12 : struct where T13 : struct where T14 : struct =>
        Cached(kernel, a => a.LoadStreamKernel(kernel));
}
