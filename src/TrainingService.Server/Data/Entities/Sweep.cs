namespace TrainingService.Server.Data.Entities;

/// <summary>
/// A hyperparameter sweep: a search over job specs whose trials are ordinary jobs (<c>jobs.sweep_id</c>). The row is the
/// sweep's durable state; the trials themselves say what ran, so a restart re-derives everything else from them.
/// </summary>
public sealed class Sweep
{
    public Guid Id { get; set; }
    public required string Tenant { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>running, completed or cancelled (<c>Sweeps.SweepStatus</c>).</summary>
    public required string Status { get; set; }
    /// <summary>Why it ended: max_trials, grid_exhausted, max_runtime or cancelled.</summary>
    public string? StopReason { get; set; }
    /// <summary>The submitted sweep, normalised (defaults filled in, seed resolved), as JSON.</summary>
    public required string Spec { get; set; }
    /// <summary>The index the next trial gets: trials are numbered from 0 without gaps.</summary>
    public int NextTrial { get; set; }
    /// <summary>No assignment is left (a grid is exhausted), so no trial follows the ones created.</summary>
    public bool Exhausted { get; set; }
    /// <summary>When it stops creating trials and cancels those still running (its maxRuntime), if it has one.</summary>
    public DateTimeOffset? Deadline { get; set; }
    public DateTimeOffset? FinishedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}
