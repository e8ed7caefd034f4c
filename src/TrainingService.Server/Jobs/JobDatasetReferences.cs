using Npgsql;
using TrainingService.Server.Datasets;

namespace TrainingService.Server.Jobs;

/// <summary>
/// Stand-in for the Jobs side of <see cref="IDatasetReferences"/> until <see cref="JobStore"/> implements it: the two
/// statements dataset deletion ran itself before.
/// </summary>
public sealed class JobDatasetReferences : IDatasetReferences
{
    public async Task<Guid?> FindUnfinishedJobAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid datasetId,
        CancellationToken cancellationToken)
    {
        await using var busy = new NpgsqlCommand(
            "SELECT id FROM jobs WHERE dataset_id = @id AND status = ANY(@unfinished) LIMIT 1", connection, transaction);
        busy.Parameters.AddWithValue("id", datasetId);
        busy.Parameters.AddWithValue("unfinished", JobStatus.Unfinished);
        return await busy.ExecuteScalarAsync(cancellationToken) as Guid?;
    }

    // Finished jobs lose their link to the data (ON DELETE SET NULL would do it silently): bump their versions and
    // tell every process, so cached states and ETags move on.
    public async Task DetachAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid datasetId, CancellationToken cancellationToken)
    {
        var detached = new List<Guid>();
        await using (var detach = new NpgsqlCommand(
            "UPDATE jobs SET dataset_id = NULL, version = version + 1, updated_at = now() WHERE dataset_id = @id RETURNING id", connection, transaction))
        {
            detach.Parameters.AddWithValue("id", datasetId);
            await using var reader = await detach.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                detached.Add(reader.GetGuid(0));
            }
        }
        foreach (var jobId in detached)
        {
            await JobStore.NotifyAsync(connection, transaction, new JobEvent(jobId, "dataset"), cancellationToken);
        }
    }
}
