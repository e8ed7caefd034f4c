using Npgsql;

namespace TrainingService.Server.Datasets;

/// <summary>
/// The jobs that reference datasets, as a dataset deletion needs to see them. Implemented by the Jobs folder
/// (<c>JobStore</c>, the one writer of job rows), so Datasets never calls into Jobs: the dependency runs Jobs → Datasets.
/// Both calls run inside the deletion's transaction, after the dataset row is locked.
/// </summary>
public interface IDatasetReferences
{
    /// <summary>A queued, running or cancelling job that uses the dataset, if any.</summary>
    Task<Guid?> FindUnfinishedJobAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid datasetId,
        CancellationToken cancellationToken);

    /// <summary>
    /// Unlinks finished jobs from the dataset, bumping their versions and notifying, as every job write does. Returns what
    /// to run once the transaction has committed (telling this process's caches at once).
    /// </summary>
    Task<Action> DetachAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid datasetId, CancellationToken cancellationToken);
}
