using TrainingService.Server.Configuration;

namespace TrainingService.Server.Jobs;

/// <summary>
/// Worker pools. A job asks for a device (<c>compute.device</c>): <c>cuda</c> jobs wait on the cuda queue, which only GPU
/// workers serve; <c>cpu</c> jobs on the cpu queue, which only CPU workers serve; <c>any</c> jobs on the shared queue,
/// which every worker serves. The job row keeps the device (<c>compute_device</c>), which routing, scheduling and
/// autoscalers read.
/// </summary>
public static class ComputePools
{
    public const string Cuda = "cuda";
    public const string Cpu = "cpu";
    public const string Any = "any";

    /// <summary>What a spec may ask for.</summary>
    public static readonly IReadOnlySet<string> Devices = new HashSet<string> { Cuda, Cpu, Any };

    /// <summary>The queues a worker of <paramref name="pool"/> serves: its own pool's, then the shared one.</summary>
    public static string[] QueuesOf(WorkerPool pool) => [QueueOf(pool == WorkerPool.Cuda ? Cuda : Cpu), QueueOf(Any)];

    /// <summary>The pool a worker serves: as configured, or by its device when Auto.</summary>
    public static WorkerPool PoolOf(WorkerPool configured, bool cpuDevice) =>
        configured != WorkerPool.Auto ? configured : cpuDevice ? WorkerPool.Cpu : WorkerPool.Cuda;

    /// <summary>The Hangfire queue of jobs asking for <paramref name="device"/>.</summary>
    public static string QueueOf(string device) => device switch
    {
        Cuda => "training_cuda",
        Cpu => "training_cpu",
        _ => "training",
    };
}
