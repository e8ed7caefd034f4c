using ILGPU;

namespace TrainingService.Compute.Devices;

/// <summary>
/// Raw pointers into views, for kernels' inner loops. On ILGPU's CPU accelerator every <c>ArrayView</c> index runs two
/// <c>Trace.Assert</c> checks (ILGPU is built with TRACE); a pointer taken once per launch runs none. The PTX backend
/// compiles the same code to plain global loads and stores (docs/decisions/010-cpu-dense-kernels.md).
/// </summary>
public static class ViewPointers
{
    /// <summary>The address of a view's first element, or null for an empty view (kernels test null for "not given").</summary>
    public static unsafe T* Address<T>(ArrayView<T> view)
        where T : unmanaged
    {
        if (view.Length == 0)
        {
            return null;
        }
        // CPU buffers are unmanaged memory, so the pointer stays valid after the fixed scope; a GPU ignores pinning.
        fixed (T* p = &view[0])
        {
            return p;
        }
    }

    /// <summary>
    /// Elements each thread takes in one contiguous run: on a CPU, an even share rounded up to whole cache lines (threads
    /// writing neighbouring elements would share lines); on a GPU, 1 (neighbouring threads, neighbouring elements).
    /// </summary>
    public static int RunLength(bool isCpu, long elements, int threads) =>
        isCpu ? (int)Math.Max(16, ((elements + threads - 1) / threads + 15) / 16 * 16) : 1;
}
