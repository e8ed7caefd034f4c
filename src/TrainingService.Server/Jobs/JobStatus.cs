namespace TrainingService.Server.Jobs;

/// <summary>Job states: queued → running → succeeded | failed | cancelled, with cancelling between running and cancelled.</summary>
public static class JobStatus
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Cancelling = "cancelling";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";

    public static readonly IReadOnlyList<string> All = [Queued, Running, Cancelling, Succeeded, Failed, Cancelled];

    /// <summary>The states a job can still leave (an SQL parameter for <c>status = ANY(@unfinished)</c>).</summary>
    public static readonly string[] Unfinished = [Queued, Running, Cancelling];

    public static bool IsTerminal(string status) => status is Succeeded or Failed or Cancelled;
}

/// <summary>Why a job ended.</summary>
public static class StopReasons
{
    public const string Completed = "completed";
    public const string EarlyStopped = "early_stopped";
    public const string Cancelled = "cancelled";
    public const string Diverged = "diverged";
    public const string Timeout = "timeout";
    public const string Error = "error";
    /// <summary>A sweep's early termination stopped the trial; it succeeded with the model of the epochs it trained.</summary>
    public const string Pruned = "pruned";
}
